#pragma once
// What every module implements, after nginx's module hooks: validate its YAML section,
// register its routes on a listener, start with the worker, and drain on a graceful stop.
#include <yaml-cpp/yaml.h>

#include <string_view>

#include "common/json.h"
#include "common/result.h"

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
  // Stop taking new work; the worker exits once its requests in flight are answered.
  virtual void drain() {}
  // Entries for /stats "connections" (statelessd's per vhost:user AMQP connections).
  virtual void report_connections(common::JsonWriter& w) const {}
};

}  // namespace sluice::worker
