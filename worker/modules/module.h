#pragma once
// What every module implements, after nginx's module hooks: validate its YAML section,
// register its routes on a listener, start with the worker, and drain on a graceful stop.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "worker/module_counters.h"

namespace sluice::worker {

class Router;
class Worker;

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string_view name() const = 0;
  // The module's top-level YAML section (a null node when absent). Called by `sluiced -t`,
  // by the supervisor on start and reload, and by each worker.
  virtual common::Result<void> configure(const YAML::Node& section) = 0;
  virtual void add_routes(Router& router) = 0;
  virtual common::Result<void> start(Worker& worker) = 0;
  // A graceful stop (SIGTERM, reload): stop taking new work and answer held requests before
  // `deadline`. Requests still held shortly before it get their timeout answer from the
  // HTTP server; the worker exits once requests and work_in_flight() are done, or at it.
  virtual void drain(std::chrono::steady_clock::time_point deadline) {}
  // Work no HTTP request counts any more that the worker should finish before it exits
  // (publish: messages whose clients left, still waiting for their confirm).
  virtual size_t work_in_flight() const { return 0; }
  // The module's own keys in this worker's /stats document (publish: statelessd's
  // "connections").
  virtual void report(common::JsonWriter& w) const {}

  // The module's counters (module_counters.h) in this worker's stats slot, bound by the
  // worker before start().
  void bind_counters(ModuleCounters counters) { counters_ = counters; }

 protected:
  ModuleCounters counters_;
};

}  // namespace sluice::worker
