#pragma once
// stats: GET /stats answers statelessd's document for this worker (getrusage, request
// counters, AMQP connections) plus a "worker" object; GET /stats/fleet answers from the
// shared stats segment with every live worker's figures and their sums.
#include "common/config.h"
#include "worker/modules/module.h"

namespace sluice::worker {
class RequestCtx;
}  // namespace sluice::worker

namespace sluice::worker::stats {

class StatsModule : public Module {
 public:
  // stats takes no settings: any key in a stats section is an unknown key.
  static common::ModuleSchema schema();
  std::string_view name() const override { return "stats"; }
  void add_routes(Router& router) override;
  common::Result<void> start(Worker& worker) override;

 private:
  void serve_stats(RequestCtx& ctx);
  void serve_fleet(RequestCtx& ctx);

  Worker* worker_ = nullptr;
};

}  // namespace sluice::worker::stats
