#include "worker/worker_main.h"

#include "common/log.h"
#include "worker/modules/registry.h"
#include "worker/worker.h"

namespace sluice::worker {

int worker_main(const WorkerLaunch& launch) {
  Worker worker(launch);
  if (auto ready = worker.init(); !ready) {
    SLOG_ERROR("worker", "cannot start: %s", ready.error().message.c_str());
    return 2;
  }
  return worker.run();
}

common::ConfigLoad load_config_with_modules(const std::string& path) {
  return common::load_config(path, module_schemas());
}

}  // namespace sluice::worker
