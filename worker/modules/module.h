#pragma once
// What every module implements, after nginx's module hooks: register its routes on a
// listener, start with the worker, and drain on a graceful stop. Its YAML section is read
// before any of that by its schema: each module class has a
//   static common::ModuleSchema schema();
// listed next to it in modules/registry.cpp, whose parse() returns the module's own
// common::ModuleSettings; start() gets them back with
// worker.config().settings<TheirType>(name()). Its counters are named by
//   static CounterNames declared_counters();
// (module_counters.h; none unless it declares its own).
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
  virtual std::string_view name() const = 0;  // the same as its schema's name
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
  // worker before start(); a module with counters hides this with its own name list.
  static CounterNames declared_counters() { return {}; }
  void bind_counters(ModuleCounters counters) { counters_ = counters; }

 protected:
  ModuleCounters counters_;
};

}  // namespace sluice::worker
