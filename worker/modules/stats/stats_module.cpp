#include "worker/modules/stats/stats_module.h"

#include <unistd.h>

#include <array>
#include <ctime>
#include <string>

#include "common/stats_segment.h"
#include "worker/modules/registry.h"
#include "worker/request.h"
#include "worker/router.h"
#include "worker/worker.h"

namespace sluice::worker::stats {
namespace {

using common::JsonWriter;
constexpr auto kRelaxed = std::memory_order_relaxed;

// The figures of one slot, or the sums over several: the same shape serves both.
struct Figures {
  std::array<uint64_t, common::kStatsMethodSlots> methods{};
  std::array<uint64_t, common::kStatsLastStatus - common::kStatsFirstStatus + 1> responses{};
  uint64_t processing_time_us = 0;
  uint64_t user_us = 0, system_us = 0, max_rss_kb = 0, current_rss_kb = 0;
  uint64_t minor_faults = 0, major_faults = 0, block_in = 0, block_out = 0;
  uint64_t context_switches = 0, signals = 0, swaps = 0;
  uint64_t connections_accepted = 0, connections_open = 0;
  std::array<uint64_t, common::kStatsModuleCounters> modules{};

  static Figures load(const common::WorkerSlot& s);
  // Sums another worker's figures, read once, so totals always match the rows shown.
  void merge(const Figures& o);
};

// Every scalar figure and the slot counter it is read from: load() and merge() walk this one
// list, so a new figure is added in one place.
struct Scalar {
  uint64_t Figures::*field;
  const common::Counter& (*source)(const common::WorkerSlot&);
};

template <const common::Counter common::WorkerSlot::*Member>
const common::Counter& slot_field(const common::WorkerSlot& s) {
  return s.*Member;
}

template <const common::Counter common::RusageSnapshot::*Member>
const common::Counter& usage_field(const common::WorkerSlot& s) {
  return s.usage.*Member;
}

using common::RusageSnapshot;
using common::WorkerSlot;
const Scalar kScalars[] = {
    {&Figures::processing_time_us, slot_field<&WorkerSlot::processing_time_us>},
    {&Figures::connections_accepted, slot_field<&WorkerSlot::connections_accepted>},
    {&Figures::connections_open, slot_field<&WorkerSlot::connections_open>},
    {&Figures::user_us, usage_field<&RusageSnapshot::user_us>},
    {&Figures::system_us, usage_field<&RusageSnapshot::system_us>},
    {&Figures::max_rss_kb, usage_field<&RusageSnapshot::max_rss_kb>},
    {&Figures::current_rss_kb, usage_field<&RusageSnapshot::current_rss_kb>},
    {&Figures::minor_faults, usage_field<&RusageSnapshot::minor_faults>},
    {&Figures::major_faults, usage_field<&RusageSnapshot::major_faults>},
    {&Figures::block_in, usage_field<&RusageSnapshot::block_in>},
    {&Figures::block_out, usage_field<&RusageSnapshot::block_out>},
    {&Figures::context_switches, usage_field<&RusageSnapshot::context_switches>},
    {&Figures::signals, usage_field<&RusageSnapshot::signals>},
    {&Figures::swaps, usage_field<&RusageSnapshot::swaps>},
};

Figures Figures::load(const common::WorkerSlot& s) {
  Figures f;
  for (size_t i = 0; i < f.methods.size(); ++i)
    f.methods[i] = s.methods[i].load(kRelaxed);
  for (size_t i = 0; i < f.responses.size(); ++i)
    f.responses[i] = s.responses[i].load(kRelaxed);
  for (size_t i = 0; i < f.modules.size(); ++i)
    f.modules[i] = s.module_counters[i].load(kRelaxed);
  for (const Scalar& x : kScalars)
    f.*x.field = x.source(s).load(kRelaxed);
  return f;
}

void Figures::merge(const Figures& o) {
  for (size_t i = 0; i < methods.size(); ++i)
    methods[i] += o.methods[i];
  for (size_t i = 0; i < responses.size(); ++i)
    responses[i] += o.responses[i];
  for (size_t i = 0; i < modules.size(); ++i)
    modules[i] += o.modules[i];
  for (const Scalar& x : kScalars)
    this->*x.field += o.*x.field;
}

// "requests" as statelessd has it: keys appear once used; processing_time in seconds.
void write_requests(JsonWriter& w, const Figures& f) {
  w.StartObject();
  for (size_t m = 0; m < f.methods.size(); ++m) {
    if (f.methods[m] == 0) continue;
    const char* verb = m < static_cast<size_t>(htp_method_UNKNOWN)
                           ? htparser_get_methodstr_m(static_cast<htp_method>(m))
                           : "UNKNOWN";
    common::json_key(w, std::string("method.") + verb);
    w.Uint64(f.methods[m]);
  }
  for (size_t i = 0; i < f.responses.size(); ++i) {
    if (f.responses[i] == 0) continue;
    common::json_key(w, "response." + std::to_string(i + common::kStatsFirstStatus));
    w.Uint64(f.responses[i]);
  }
  w.Key("processing_time");
  w.Double(static_cast<double>(f.processing_time_us) / 1e6);
  w.EndObject();
}

// Every module's counters, "<module>.<name>", whichever modules this worker serves.
void write_counters(JsonWriter& w, const Figures& f) {
  w.Key("counters");
  w.StartObject();
  for (const CounterGroup& g : counter_layout()) {
    for (size_t i = 0; i < g.names.count; ++i) {
      common::json_key(w, std::string(g.module) + "." + g.names.names[i]);
      w.Uint64(f.modules[g.first + i]);
    }
  }
  w.EndObject();
}

// statelessd's getrusage keys, in its units.
void write_rusage(JsonWriter& w, const Figures& f) {
  w.Key("block");
  common::json_pair(w, "input", f.block_in, "output", f.block_out);
  w.Key("context_switches");
  w.Uint64(f.context_switches);
  w.Key("cpu_time");
  w.StartObject();
  w.Key("user");
  w.Double(static_cast<double>(f.user_us) / 1e6);
  w.Key("system");
  w.Double(static_cast<double>(f.system_us) / 1e6);
  w.EndObject();
  w.Key("memory_usage");
  w.Uint64(f.max_rss_kb);
  w.Key("page_faults");
  common::json_pair(w, "minor", f.minor_faults, "major", f.major_faults);
  w.Key("page_size");
  w.Int64(static_cast<int64_t>(sysconf(_SC_PAGESIZE)));
  w.Key("signals_received");
  w.Uint64(f.signals);
  w.Key("swap_outs");
  w.Uint64(f.swaps);
}

// What a worker (or the fleet) holds: memory and connections.
void write_holdings(JsonWriter& w, const Figures& f) {
  w.Key("memory_rss");
  w.Uint64(f.current_rss_kb);
  w.Key("connections_accepted");
  w.Uint64(f.connections_accepted);
  w.Key("connections_open");
  w.Uint64(f.connections_open);
}

// Our additions, kept out of statelessd's keys: who the worker is and what it holds open.
void write_worker(JsonWriter& w, const common::WorkerSlot& s, const Figures& f) {
  w.StartObject();
  w.Key("pid");
  w.Int(s.pid.load(kRelaxed));
  w.Key("port");
  w.Uint(s.port.load(kRelaxed));
  w.Key("started");
  w.Int64(s.started.load(kRelaxed));
  w.Key("respawns");
  w.Uint(s.respawns.load(kRelaxed));
  write_holdings(w, f);
}

void write_header(JsonWriter& w, const Worker& worker) {
  w.Key("host");
  common::json_string(w, worker.hostname());
  w.Key("port");
  w.Uint(worker.listen().port);
  w.Key("timestamp");
  w.Int64(static_cast<int64_t>(time(nullptr)));
}

}  // namespace

common::ModuleSchema StatsModule::schema() {
  auto parse = [](common::ConfigReader& reader, const YAML::Node& section) {
    reader.walk(section, "stats", true, {});
    return std::shared_ptr<const common::ModuleSettings>();
  };
  return {"stats", parse, nullptr};
}

void StatsModule::add_routes(Router& router) {
  MethodSet get = method_bit(htp_method_GET) | method_bit(htp_method_HEAD);
  router.add(
      "/stats", get, [this](RequestCtx& ctx) { serve_stats(ctx); }, "stats");
  router.add(
      "/stats/fleet", get, [this](RequestCtx& ctx) { serve_fleet(ctx); }, "stats");
}

common::Result<void> StatsModule::start(Worker& worker) {
  worker_ = &worker;
  return {};
}

void StatsModule::serve_stats(RequestCtx& ctx) {
  common::WorkerSlot& own = worker_->slot();
  own.publish_rusage();
  Figures f = Figures::load(own);
  common::JsonBuffer out;
  JsonWriter w(out);
  w.StartObject();
  write_header(w, *worker_);
  w.Key("requests");
  write_requests(w, f);
  write_rusage(w, f);
  bool publishes = false;
  for (const auto& m : worker_->modules()) {
    m->report(w);
    publishes = publishes || m->name() == "publish";
  }
  // statelessd's document always has "connections" (publish fills it where it is served).
  if (!publishes) {
    w.Key("connections");
    w.StartObject();
    w.EndObject();
  }
  write_counters(w, f);
  w.Key("worker");
  write_worker(w, own, f);
  if (RedisConnection* redis = worker_->redis()) {
    w.Key("redis");
    w.StartObject();
    w.Key("connected");
    w.Bool(redis->up());
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  send_json(ctx, 200, common::json_text(out));
}

void StatsModule::serve_fleet(RequestCtx& ctx) {
  worker_->slot().publish_rusage();
  const common::StatsSegment& segment = worker_->stats();
  common::JsonBuffer out;
  JsonWriter w(out);
  Figures totals;
  unsigned live = 0;
  w.StartObject();
  write_header(w, *worker_);
  w.Key("workers");
  w.StartArray();
  for (size_t i = 0; i < segment.size(); ++i) {
    const common::WorkerSlot& s = segment.slot(i);
    if (s.pid.load(kRelaxed) == 0) continue;
    Figures f = Figures::load(s);
    totals.merge(f);
    ++live;
    write_worker(w, s, f);
    w.Key("requests");
    write_requests(w, f);
    write_rusage(w, f);
    write_counters(w, f);
    w.EndObject();
  }
  w.EndArray();
  w.Key("totals");
  w.StartObject();
  w.Key("workers");
  w.Uint(live);
  w.Key("requests");
  write_requests(w, totals);
  write_rusage(w, totals);
  write_holdings(w, totals);
  write_counters(w, totals);
  w.EndObject();
  w.EndObject();
  send_json(ctx, 200, common::json_text(out));
}

}  // namespace sluice::worker::stats
