#pragma once
// The list of modules this build has, in route order: modules with fixed routes first,
// publish's three-segment catch-all last (the router also sorts by pattern tier). Each
// entry pairs a module class with its config schema.
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "worker/modules/module.h"

namespace sluice::worker {

// Every module's config schema, in route order: what parse_config() needs to read their
// sections and to check listen[].modules.
const std::vector<common::ModuleSchema>& module_schemas();

// The module names, in route order.
std::vector<std::string> known_modules();

// New instances of the modules a listener serves (all known ones when the list is empty).
std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names);

}  // namespace sluice::worker
