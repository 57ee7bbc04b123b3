#include "worker/modules/registry.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <utility>

#include "worker/modules/publish/publish_module.h"
#include "worker/modules/stats/stats_module.h"

namespace sluice::worker {
namespace {

struct Entry {
  common::ModuleSchema schema;
  std::function<std::unique_ptr<Module>()> make;
  CounterNames counters;
};

template <class M>
Entry entry() {
  return {M::schema(), [] { return std::make_unique<M>(); }, M::declared_counters()};
}

// Route order lives here (STYLE.md): fixed routes first, catch-alls last.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> kEntries = {
      entry<stats::StatsModule>(),
      entry<publish::PublishModule>(),  // the catch-all: last
  };
  return kEntries;
}

}  // namespace

const std::vector<common::ModuleSchema>& module_schemas() {
  static const std::vector<common::ModuleSchema> kSchemas = [] {
    std::vector<common::ModuleSchema> schemas;
    for (const auto& e : entries())
      schemas.push_back(e.schema);
    return schemas;
  }();
  return kSchemas;
}

std::vector<std::string> known_modules() {
  std::vector<std::string> names;
  for (const auto& e : entries())
    names.push_back(e.schema.name);
  return names;
}

std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Module>> modules;
  for (const auto& e : entries()) {
    if (names.empty() || std::find(names.begin(), names.end(), e.schema.name) != names.end()) {
      modules.push_back(e.make());
    }
  }
  return modules;
}

const std::vector<CounterGroup>& counter_layout() {
  static const std::vector<CounterGroup> kLayout = [] {
    std::vector<CounterGroup> layout;
    size_t next = 0;
    for (const auto& e : entries()) {
      layout.push_back({e.schema.name.c_str(), e.counters, next});
      next += e.counters.count;
    }
    // A build that declares more counters than a slot holds is a programming error.
    if (next > common::kStatsModuleCounters) std::abort();
    return layout;
  }();
  return kLayout;
}

ModuleCounters counters_in(common::WorkerSlot& slot, std::string_view module) {
  for (const auto& g : counter_layout()) {
    if (module == g.module) return ModuleCounters(slot.module_counters + g.first, g.names.count);
  }
  return {};
}

}  // namespace sluice::worker
