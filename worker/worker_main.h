#pragma once
// The only worker header the supervisor includes: what a freshly forked worker is given,
// and the config loader that knows this build's modules (for start, SIGHUP and -t).
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/stats_segment.h"

namespace sluice::worker {

struct WorkerLaunch {
  std::shared_ptr<const common::Config> config;
  size_t listener_index = 0;  // into config->listeners
  int listen_fd = -1;         // bound and listening, inherited from the supervisor
  common::StatsSegment* stats = nullptr;
  int slot = -1;
  sigset_t signal_mask{};  // restored once the worker's own signal events exist
};

// Runs a worker to completion and returns its exit code: 0 after a clean stop, 1 on a
// runtime failure, 2 when it cannot start at all (the supervisor will not respawn it).
int worker_main(const WorkerLaunch& launch);

// common::load_config() with every module's schema (modules/registry.h): the core sections
// and each module's own, all problems together. Never throws.
common::ConfigLoad load_config_with_modules(const std::string& path);

}  // namespace sluice::worker
