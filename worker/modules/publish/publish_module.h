#pragma once
// publish: statelessd's API. POST /<vhost>/<exchange>/<routing-key> with HTTP Basic
// credentials (the AMQP login) and the message as form fields (urlencoded, multipart or the
// query string). 204 only once the broker has confirmed the message; 503 with Retry-After
// whenever that is not known. The default exchange is spelled `amq.default`, RabbitMQ's own
// name for it.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "common/config.h"
#include "common/form.h"
#include "common/handles/timer.h"
#include "worker/backends/amqp.h"
#include "worker/modules/module.h"
#include "worker/modules/publish/logins.h"
#include "worker/modules/publish/message_fields.h"

namespace sluice::worker {
class RequestCtx;
}  // namespace sluice::worker

namespace sluice::worker::publish {

class PublishModule : public Module {
 public:
  // The publish section's reader (publish_config.h); start() takes its PublishSettings.
  static common::ModuleSchema schema();
  std::string_view name() const override { return "publish"; }
  void add_routes(Router& router) override;
  common::Result<void> start(Worker& worker) override;
  size_t work_in_flight() const override;
  void report(common::JsonWriter& w) const override;

  static constexpr const char* kDefaultExchangeAlias = "amq.default";

  // What became of the messages sent to the broker, in the shared stats segment
  // ("publish.<name>" in /stats and summed in /stats/fleet): confirmed, nacked, not known to
  // be safe (answered 503: nacked, timed out, connection lost, blocked), returned as
  // unroutable; and clients gone before their answer.
  enum Counter : size_t { kConfirms, kNacks, kUnavailable, kUnroutable, kClientGone };
  static constexpr const char* kCounterNames[] = {"confirms", "nacks", "unavailable", "unroutable",
                                                  "client_gone"};
  static CounterNames declared_counters() { return counter_names(kCounterNames); }

 private:
  // Connections are keyed by every credential: a wrong password never rides on a
  // connection someone else opened with the right one.
  using Key = std::tuple<std::string, std::string, std::string>;  // vhost, user, password
  using KeyView = std::tuple<std::string_view, std::string_view, std::string_view>;

  void serve(RequestCtx& ctx);
  void count(PublishOutcome outcome);
  common::Result<void> check_head(RequestCtx& ctx);
  // The request's Basic credentials, or null when missing or unusable (see the .cpp).
  const common::BasicCredentials* credentials_of(RequestCtx& ctx);
  // The connection for `key`, made if needed; an error when a new broker login is not to be
  // tried now (a refusal remembered, too many logins, a full table).
  common::Result<AmqpConnection*> connection_for(const KeyView& key);
  AmqpConnection* add_connection(const KeyView& key, const LoginGuard::Digest& password);
  void forget_connections(bool all_refused);
  void sweep();

  event_base* base_ = nullptr;
  common::RabbitmqConfig rabbitmq_;
  MessageDefaults defaults_;  // from the publish section's settings, set by start()
  LoginGuard logins_;
  std::optional<std::string> last_authorization_;
  std::optional<common::BasicCredentials> last_credentials_;
  std::map<Key, std::unique_ptr<AmqpConnection>, std::less<>> connections_;
  std::optional<common::Timer> sweep_;
};

}  // namespace sluice::worker::publish
