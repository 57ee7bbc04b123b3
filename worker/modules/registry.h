#pragma once
// The list of modules this build has, in route order: modules with fixed routes first,
// publish's three-segment catch-all last (the router also sorts by pattern tier).
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "worker/modules/module.h"
#include "worker/worker_main.h"  // known_modules(), check_module_config()

namespace sluice::worker {

// New instances of the modules a listener serves (all known ones when the list is empty).
std::vector<std::unique_ptr<Module>> make_modules(const std::vector<std::string>& names);

}  // namespace sluice::worker
