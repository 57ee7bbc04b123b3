#pragma once
// One AMQP connection of a worker, for one (vhost, user, password): opened lazily on first
// use, kept, and reopened with backoff and jitter whenever it drops, without ever giving up.
// Its socket is read by the event loop, so confirms, connection.blocked and closes are seen
// as they arrive. Many publishes are in flight on one confirm-mode channel at once; each
// caller is told the outcome of its own message: confirmed, or one of the reasons it is not
// known to be safe.
//
// The first publish to an exchange on a connection goes alone on a second confirm-mode
// channel, the trial channel, one trial at a time; requests for that exchange wait for it in
// order. Only once the broker has confirmed it is the exchange known to exist and to take
// this user's publishes, and later publishes share the first channel. A refusal (no write
// access, an internal exchange such as amq.rabbitmq.trace: 403) or a missing exchange (404)
// closes only the trial channel: it fails that request and those waiting on the same
// exchange, never a neighbour's message, and the channel is reopened for the next trial.
// (A passive declare checked existence only, not write access, so it is not used.)
//
// A mandatory message the broker returns (no queue took it) is answered `unroutable` when its
// ack arrives; amqp_confirms.h ties returns to messages.
#include <amqp.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/backoff.h"
#include "common/config.h"
#include "common/handles/amqp.h"
#include "common/handles/fd_event.h"
#include "common/handles/timer.h"
#include "common/log_throttle.h"
#include "worker/backends/amqp_confirms.h"
#include "worker/backends/amqp_connect.h"
#include "worker/backends/amqp_message.h"
#include "worker/backends/amqp_writer.h"

namespace sluice::worker {

// statelessd's per-connection figures. What became of each message is the caller's to
// count, from the outcome it is given.
struct AmqpCounters {
  uint64_t connections_opened = 0;
  uint64_t connections_closed = 0;
  uint64_t channels_opened = 0;
  uint64_t channels_closed = 0;
  uint64_t publishes = 0;

  AmqpCounters& operator+=(const AmqpCounters& o) {
    connections_opened += o.connections_opened;
    connections_closed += o.connections_closed;
    channels_opened += o.channels_opened;
    channels_closed += o.channels_closed;
    publishes += o.publishes;
    return *this;
  }
};

class AmqpConnection {
 public:
  using Done = PublishDone;

  AmqpConnection(event_base* base, const common::RabbitmqConfig& config,
                 AmqpCredentials credentials);
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;
  // Sends connection.close (without waiting for the answer) and closes the socket. Pending
  // callers are dropped without a call: their requests are being torn down too.
  ~AmqpConnection();

  // `done` is called exactly once, possibly before publish() returns.
  void publish(const std::string& exchange, const std::string& routing_key,
               std::unique_ptr<AmqpMessage> message, Done done);

  bool connected() const { return state_ == State::ready || state_ == State::reopening; }
  // Messages handed to the broker and not confirmed yet (statelessd's queue_size).
  size_t unconfirmed() const { return shared_books_.size() + trial_books_.size(); }
  // The next publish would log in to the broker: nothing is connected or connecting, and no
  // refusal is remembered.
  bool needs_login() const;
  // Called when the broker refuses the user or password at login (not the vhost).
  void on_login_refused(std::function<void()> hook) { on_login_refused_ = std::move(hook); }
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
    std::unique_ptr<AmqpMessage> message;
    Done done;
    std::chrono::steady_clock::time_point deadline;
  };

  void start_connect();
  void connected_with(ConnectResult result);
  void route(Queued q);
  bool send_now(Queued& q, amqp_channel_t channel);
  void send_when_possible(Queued q);
  void flush_waiting();
  void start_trial();
  void trial_settled();
  void trial_refused(PublishOutcome outcome);
  void read_frames();
  void handle_frame(const amqp_frame_t& frame);
  void handle_method(amqp_channel_t channel, const amqp_method_t& method);
  void handle_channel_close(amqp_channel_t channel, const amqp_channel_close_t& close);
  void shared_channel_closed(const amqp_channel_close_t& close);
  void resolve_confirms(amqp_channel_t channel, uint64_t tag, bool multiple,
                        PublishOutcome outcome);
  void reopen_channel(amqp_channel_t channel);
  void channel_confirming(amqp_channel_t channel);
  ConfirmBooks& books(amqp_channel_t channel);
  void connection_lost(const std::string& why);
  void fail_everything(PublishOutcome outcome);
  void finish(Done& done, PublishOutcome outcome);
  void expire_deadlines();
  void schedule_reconnect();
  void close_connection();

  void readable();
  void tick();
  void retry();
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
  // Declared before what uses its socket, so that those go first (close_connection() and
  // connection_lost() keep the same order by hand).
  common::AmqpConnPtr conn_;
  std::unique_ptr<AmqpConnectAttempt> attempt_;
  std::optional<common::FdEvent> read_event_;
  std::optional<common::FdEvent> write_event_;  // armed while the socket is full
  common::Timer tick_;
  common::Timer retry_;
  // What is queued during one loop turn is written once the turn is over (schedule_flush).
  common::Timer flush_timer_;
  std::unique_ptr<AmqpWriter> writer_;
  std::chrono::steady_clock::time_point last_heard_;
  std::chrono::steady_clock::time_point last_sent_;
  common::Backoff backoff_;
  std::chrono::steady_clock::time_point refused_until_;
  PublishOutcome refusal_ = PublishOutcome::refused_login;
  ConfirmBooks shared_books_;     // kPublishChannel
  ConfirmBooks trial_books_;      // kTrialChannel
  std::deque<Queued> waiting_;    // for the connection or the shared channel
  std::deque<Queued> untried_;    // for their exchange's trial, in arrival order
  bool trial_open_ = false;       // the trial channel is open and in confirm mode
  bool trial_in_flight_ = false;  // sent, and neither confirmed nor refused yet
  std::string trial_exchange_;
  std::set<std::string> known_exchanges_;  // confirmed on the trial channel
  std::map<std::string, std::chrono::steady_clock::time_point> forbidden_exchanges_;
  AmqpCounters counters_;
  common::LogThrottle down_log_;  // "reconnecting" while the broker stays unreachable
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
  std::function<void()> on_login_refused_;
};

}  // namespace sluice::worker
