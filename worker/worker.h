#pragma once
// One worker process: one event_base and everything on it, each behind a RAII member.
// Declaration order is destruction order reversed: the base first (destroyed last), then the
// HTTP server, which must outlive the modules (a backend callback dropped by a module's
// destructor releases its RequestCtx, which still refers to the server), then the modules,
// then Redis (its destructor fails pending commands into the modules).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/handles/event.h"
#include "common/handles/timer.h"
#include "common/result.h"
#include "common/stats_segment.h"
#include "worker/backends/redis.h"
#include "worker/http_server.h"
#include "worker/modules/module.h"
#include "worker/router.h"
#include "worker/worker_main.h"

namespace sluice::worker {

class Worker {
 public:
  explicit Worker(const WorkerLaunch& launch);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  common::Result<void> init();
  int run();

  event_base* base() const { return base_.get(); }
  const common::Config& config() const { return *launch_.config; }
  const common::ListenConfig& listen() const;
  common::WorkerSlot& slot() { return launch_.stats->slot(launch_.slot); }
  const common::StatsSegment& stats() const { return *launch_.stats; }
  RedisConnection* redis() const { return redis_.get(); }
  const std::vector<std::unique_ptr<Module>>& modules() const { return modules_; }
  const std::string& hostname() const { return hostname_; }

 private:
  void on_signal(int signo);
  void begin_drain();
  void check_drained();
  size_t module_work() const;
  void publish_rusage();
  void add_signal(common::EventPtr& ev, int signo);

  common::EventBasePtr base_;
  WorkerLaunch launch_;
  std::string hostname_;
  Router router_;
  std::unique_ptr<HttpServer> http_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::unique_ptr<RedisConnection> redis_;
  common::EventPtr sigterm_;
  common::EventPtr sigquit_;
  common::EventPtr sigusr1_;
  std::optional<common::Timer> stats_timer_;
  std::optional<common::Timer> drain_timer_;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::chrono::steady_clock::time_point drain_fresh_deadline_;
  std::chrono::steady_clock::time_point drain_answer_held_;
  bool held_answered_ = false;
};

}  // namespace sluice::worker
