#pragma once
// What every module implements, after nginx's module hooks: register its routes on a
// listener, start with the worker, and drain on a graceful stop. Its YAML section is read
// before any of that by its schema: each module class has a
//   static common::ModuleSchema schema();
// listed next to it in modules/registry.cpp, whose parse() returns the module's own
// common::ModuleSettings; start() gets them back with
// worker.config().settings<TheirType>(name()).
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace sluice::worker {

class Router;
class Worker;

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string_view name() const = 0;  // the same as its schema's name
  virtual void add_routes(Router& router) = 0;
  virtual common::Result<void> start(Worker& worker) = 0;
  // Stop taking new work; the worker exits once its requests in flight are answered.
  virtual void drain() {}
  // Entries for /stats "connections" (statelessd's per vhost:user AMQP connections).
  virtual void report_connections(common::JsonWriter& w) const {}
};

}  // namespace sluice::worker
