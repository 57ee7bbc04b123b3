#pragma once
// One AMQP connection of a worker, for one (vhost, user, password): opened lazily on first
// use, kept, and reopened with backoff and jitter whenever it drops, without ever giving up.
// Its socket is read by the event loop, so confirms, connection.blocked and closes are seen
// as they arrive. Many publishes are in flight on one confirm-mode channel at once; each
// caller is told the outcome of its own message: confirmed, or one of the reasons it is not
// known to be safe.
//
// Exchanges are checked once with a passive declare on a second channel before the first
// publish to them: a missing exchange then fails that one request with 404 instead of
// closing the publishing channel under everybody else's unconfirmed messages.
#include <amqp.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/backoff.h"
#include "common/config.h"
#include "common/handles/event.h"
#include "worker/backends/amqp_connect.h"
#include "worker/backends/amqp_writer.h"
#include "worker/modules/publish_message.h"

namespace sluice::worker {

enum class PublishOutcome {
  confirmed,           // the broker acked it: the message is safe
  rejected,            // the broker nacked it
  timed_out,           // no confirm within rabbitmq.confirm_timeout
  unavailable,         // no connection, or it dropped before the confirm
  blocked,             // the broker sent connection.blocked (resource alarm)
  backlogged,          // the broker has stopped reading: unsent bytes pile up in the socket
  refused_login,       // the broker refused the user or password
  refused_vhost,       // the user may not use the vhost (or it does not exist)
  exchange_not_found,  // passive declare said 404
  exchange_forbidden,  // passive declare said 403
};

struct AmqpCounters {
  uint64_t connections_opened = 0;
  uint64_t connections_closed = 0;
  uint64_t channels_opened = 0;
  uint64_t channels_closed = 0;
  uint64_t publishes = 0;
  uint64_t confirms = 0;
  uint64_t nacks = 0;
  uint64_t unavailable = 0;  // answered 503: nacked, timed out, no connection, blocked

  AmqpCounters& operator+=(const AmqpCounters& o) {
    connections_opened += o.connections_opened;
    connections_closed += o.connections_closed;
    channels_opened += o.channels_opened;
    channels_closed += o.channels_closed;
    publishes += o.publishes;
    confirms += o.confirms;
    nacks += o.nacks;
    unavailable += o.unavailable;
    return *this;
  }
};

class AmqpConnection {
 public:
  using Done = std::function<void(PublishOutcome)>;

  AmqpConnection(event_base* base, const common::RabbitmqConfig& config,
                 AmqpCredentials credentials);
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;
  // Sends connection.close (without waiting for the answer) and closes the socket. Pending
  // callers are dropped without a call: their requests are being torn down too.
  ~AmqpConnection();

  // `done` is called exactly once, possibly before publish() returns.
  void publish(const std::string& exchange, const std::string& routing_key,
               std::unique_ptr<PublishMessage> message, Done done);

  bool connected() const { return state_ == State::ready || state_ == State::reopening; }
  // Messages handed to the broker and not confirmed yet (statelessd's queue_size).
  size_t unconfirmed() const { return unconfirmed_.size(); }
  // Nothing in flight and nothing waiting.
  bool idle() const;
  // Refused at its last login: the pool may forget it once the refusal has expired.
  bool refused() const { return state_ == State::refused; }
  bool refusal_expired() const;
  const AmqpCounters& counters() const { return counters_; }
  std::chrono::steady_clock::time_point last_used() const { return last_used_; }

 private:
  enum class State { idle, connecting, ready, reopening, down, refused };

  struct Queued {
    std::string exchange;
    std::string routing_key;
    std::unique_ptr<PublishMessage> message;
    Done done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Inflight {
    Done done;
    std::chrono::steady_clock::time_point deadline;
  };

  void start_connect();
  void connected_with(ConnectResult result);
  void send_or_probe(Queued q);
  void send_now(Queued q);
  void send_when_possible(Queued q);
  void probe(Queued q);
  void send_next_probe();
  void flush_waiting();
  void read_frames();
  void handle_method(amqp_channel_t channel, const amqp_method_t& method);
  void handle_channel_close(amqp_channel_t channel, const amqp_channel_close_t& close);
  void handle_probe_result(PublishOutcome failure);
  void resolve_confirms(uint64_t tag, bool multiple, PublishOutcome outcome);
  void reopen_channel(amqp_channel_t channel);
  void connection_lost(const std::string& why);
  void fail_everything(PublishOutcome outcome);
  void finish(Done& done, PublishOutcome outcome);
  void expire_deadlines();
  void schedule_reconnect();
  void close_connection();

  static void on_readable(evutil_socket_t, short, void* arg);
  static void on_tick(evutil_socket_t, short, void* arg);
  static void on_retry(evutil_socket_t, short, void* arg);
  static void on_flush(evutil_socket_t, short, void* arg);
  void schedule_flush();
  void flush();
  AmqpWriter::Flush write_pending();
  void heartbeat();
  bool send_method(amqp_channel_t channel, amqp_method_number_t id, void* decoded);

  event_base* base_;
  common::RabbitmqConfig config_;
  AmqpCredentials credentials_;
  std::string name_;  // "vhost:user" for logs
  State state_ = State::idle;
  bool blocked_ = false;
  amqp_connection_state_t conn_ = nullptr;
  std::unique_ptr<AmqpConnectAttempt> attempt_;
  common::EventPtr read_event_;
  common::EventPtr tick_;
  common::EventPtr retry_;
  common::EventPtr flush_event_;
  common::EventPtr write_event_;
  std::unique_ptr<AmqpWriter> writer_;
  bool flush_scheduled_ = false;
  std::chrono::steady_clock::time_point last_heard_;
  std::chrono::steady_clock::time_point last_sent_;
  common::Backoff backoff_;
  std::chrono::steady_clock::time_point refused_until_;
  PublishOutcome refusal_ = PublishOutcome::refused_login;
  uint64_t next_tag_ = 1;
  std::map<uint64_t, Inflight> unconfirmed_;
  std::deque<Queued> waiting_;           // for the connection or the channel
  std::deque<Queued> probe_waiting_;     // for their exchange's passive declare
  std::deque<std::string> probes_sent_;  // declare-oks come back in this order
  bool probe_channel_open_ = true;
  std::set<std::string> known_exchanges_;
  std::map<std::string, std::chrono::steady_clock::time_point> forbidden_exchanges_;
  AmqpCounters counters_;
  std::chrono::steady_clock::time_point last_down_log_;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
};

}  // namespace sluice::worker
