#pragma once
// The list of modules this build has, in route order: modules with fixed routes first,
// publish's three-segment catch-all last (the router also sorts by pattern tier).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "worker/module_counters.h"
#include "worker/modules/module.h"
#include "worker/worker_main.h"  // known_modules(), check_module_config()

namespace sluice::worker {

// New instances of the modules a listener serves (all known ones when the list is empty).
std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names);

// Where each module's counters sit in a stats slot: every module of the build, in registry
// order, whichever modules a listener serves, so all workers share one layout.
struct CounterGroup {
  const char* module;
  CounterNames names;
  size_t first;  // index into WorkerSlot::module_counters
};
const std::vector<CounterGroup>& counter_layout();
// The module's counters in `slot`.
ModuleCounters counters_in(common::WorkerSlot& slot, std::string_view module);

}  // namespace sluice::worker
