#pragma once
// Opening an AMQP connection takes several blocking round trips in rabbitmq-c (TCP connect,
// login, channel.open, confirm.select): no asynchronous login exists. So the handshake runs
// on a short-lived thread and its result is handed to the event loop through an eventfd;
// after that the loop alone owns the connection and reads its socket. The thread never
// touches libevent or the logger.
#include <amqp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/handles/amqp.h"
#include "common/handles/fd_event.h"

namespace sluice::worker {

struct AmqpCredentials {
  std::string vhost;
  std::string user;
  std::string password;  // never logged
};

enum class ConnectFailure {
  none,
  unreachable,    // no host of rabbitmq.hosts answered, or the handshake broke off
  refused_login,  // ACCESS_REFUSED at login: wrong user or password
  refused_vhost,  // NOT_ALLOWED at connection.open: no access to the vhost, or none such
};

struct ConnectResult {
  common::AmqpConnPtr conn;  // set when failure is none
  ConnectFailure failure = ConnectFailure::none;
  std::string detail;  // broker's reply text or the socket error (no credentials)
  std::string host;    // "host:port" that answered or was tried last
};

// One handshake in flight. `done` runs on the loop when the thread has finished. Destroying
// the attempt before that abandons it: the thread finishes on its own and frees the
// connection it made.
class AmqpConnectAttempt {
 public:
  using Done = std::function<void(ConnectResult)>;
  AmqpConnectAttempt(event_base* base, const common::RabbitmqConfig& config,
                     AmqpCredentials credentials, Done done);
  ~AmqpConnectAttempt();
  AmqpConnectAttempt(const AmqpConnectAttempt&) = delete;
  AmqpConnectAttempt& operator=(const AmqpConnectAttempt&) = delete;

  // Channels the connection is handed over with, both in confirm mode: the shared publishing
  // channel and the trial channel (first publishes to an exchange, see amqp.h).
  static constexpr amqp_channel_t kPublishChannel = 1;
  static constexpr amqp_channel_t kTrialChannel = 2;

 private:
  struct Shared;
  void ready();

  std::shared_ptr<Shared> shared_;
  std::optional<common::FdEvent> ready_event_;
  Done done_;
};

// The blocking handshake itself, also used by tests: every host in order until one answers.
ConnectResult connect_blocking(const common::RabbitmqConfig& config,
                               const AmqpCredentials& credentials);

}  // namespace sluice::worker
