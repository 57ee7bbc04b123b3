#include "worker/modules/registry.h"

#include <cstdlib>
#include <functional>
#include <utility>

#include "worker/modules/publish/publish_module.h"
#include "worker/modules/stats/stats_module.h"

namespace sluice::worker {
namespace {

struct Entry {
  const char* name;
  std::function<std::unique_ptr<Module>()> make;
  CounterNames counters;
};

// Route order lives here (STYLE.md): fixed routes first, catch-alls last.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> kEntries = {
      {"stats", [] { return std::make_unique<stats::StatsModule>(); }, {}},
      // The catch-all: last.
      {"publish", [] { return std::make_unique<publish::PublishModule>(); },
       counter_names(publish::PublishModule::kCounterNames)},
  };
  return kEntries;
}

}  // namespace

std::vector<std::string> known_modules() {
  std::vector<std::string> names;
  for (const auto& e : entries())
    names.emplace_back(e.name);
  return names;
}

std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Module>> modules;
  for (const auto& e : entries()) {
    bool wanted = names.empty();
    for (const auto& n : names)
      wanted = wanted || n == e.name;
    if (wanted) modules.push_back(e.make());
  }
  return modules;
}

const std::vector<CounterGroup>& counter_layout() {
  static const std::vector<CounterGroup> kLayout = [] {
    std::vector<CounterGroup> layout;
    size_t next = 0;
    for (const auto& e : entries()) {
      layout.push_back({e.name, e.counters, next});
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

std::vector<common::ConfigProblem> check_module_config(const common::Config& config) {
  std::vector<common::ConfigProblem> problems;
  for (const auto& e : entries()) {
    auto it = config.module_sections.find(e.name);
    YAML::Node section = it != config.module_sections.end() ? it->second : YAML::Node();
    auto result = e.make()->configure(section);
    if (result.ok()) continue;
    common::ConfigProblem p;
    p.file = config.path;
    if (section.IsDefined() && !section.IsNull()) {
      p.line = section.Mark().line + 1;
      p.column = section.Mark().column + 1;
    }
    p.key = result.error().short_code.empty() ? e.name : result.error().short_code;
    p.reason = result.error().message;
    problems.push_back(std::move(p));
  }
  return problems;
}

}  // namespace sluice::worker
