#pragma once
// The list of modules this build has, in route order: modules with fixed routes first,
// publish's three-segment catch-all last (the router also sorts by pattern tier). Each
// entry pairs a module class with its config schema.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "worker/module_counters.h"
#include "worker/modules/module.h"

namespace sluice::worker {

// Every module's config schema, in route order: what parse_config() needs to read their
// sections and to check listen[].modules.
const std::vector<common::ModuleSchema>& module_schemas();

// The module names, in route order.
std::vector<std::string> known_modules();

// New instances of the modules a listener serves (all known ones when the list is empty).
std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names);

// Where each module's counters sit in a stats slot: every module of the build, in registry
// order, whichever modules a listener serves, so all workers share one layout.
struct CounterGroup {
  const char* module;  // its schema's name, which lives as long as the registry
  CounterNames names;
  size_t first;  // index into WorkerSlot::module_counters
};
const std::vector<CounterGroup>& counter_layout();
// The module's counters in `slot`.
ModuleCounters counters_in(common::WorkerSlot& slot, std::string_view module);

}  // namespace sluice::worker
