#include "worker/backends/amqp.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/guard.h"
#include "common/log.h"
#include "worker/backends/amqp_bytes.h"

namespace sluice::worker {
namespace {

constexpr const char* kModule = "amqp";
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kTick{100};
// How long a refused login is remembered: requests with the same credentials get their 401
// or 403 at once instead of a new login each, which would hammer the broker.
constexpr std::chrono::seconds kRefusalMemory{5};
// Requests waiting for a connection or channel; beyond this the answer is 503 at once.
constexpr size_t kMaxWaiting = 10000;
constexpr std::chrono::seconds kDownLogInterval{30};
// A broker that stops reading makes our outbound buffer grow (nothing ever blocks: see
// amqp_writer.h). Beyond this much unsent, publishes are refused with 503 at once.
constexpr int kMaxUnsentBytes = 1 << 20;
// Once this much is queued it is written at once rather than at the end of the loop turn,
// so the broker works on the first publishes while the worker still reads the next
// requests. One write per turn made the two take turns, each idle while the other worked
// (bench/publish: about +10% req/s with 200 clients; 2 KiB did better than 1 or 4 KiB).
constexpr size_t kEagerFlushBytes = 2048;

// How long a refusal to publish to an exchange is remembered (permissions can change).
constexpr std::chrono::seconds kForbiddenMemory{60};

// The exchange a channel error names: "NOT_FOUND - no exchange 'logs' in vhost '/'",
// "ACCESS_REFUSED - access to exchange 'logs' in vhost '/' refused for user 'u'",
// "ACCESS_REFUSED - cannot publish to internal exchange 'logs' in vhost '/'" -> "logs".
std::string exchange_named(const std::string& reply) {
  const std::string marker = "exchange '";
  size_t at = reply.find(marker);
  if (at == std::string::npos) return {};
  at += marker.size();
  size_t end = reply.find("' in vhost", at);
  return end == std::string::npos ? std::string() : reply.substr(at, end - at);
}

// What the broker's closing of the trial channel says about its one message.
PublishOutcome trial_failure(uint16_t reply_code) {
  if (reply_code == AMQP_NOT_FOUND) return PublishOutcome::exchange_not_found;
  if (reply_code == AMQP_ACCESS_REFUSED) return PublishOutcome::exchange_forbidden;
  return PublishOutcome::unavailable;
}

constexpr amqp_channel_t kShared = AmqpConnectAttempt::kPublishChannel;
constexpr amqp_channel_t kTrial = AmqpConnectAttempt::kTrialChannel;

}  // namespace

AmqpConnection::AmqpConnection(event_base* base, const common::RabbitmqConfig& config,
                               AmqpCredentials credentials)
    : base_(base),
      config_(config),
      credentials_(std::move(credentials)),
      name_(credentials_.vhost + ":" + credentials_.user),
      tick_(base, "amqp tick", common::Callback::bind<&AmqpConnection::tick>(this)),
      retry_(base, "amqp reconnect", common::Callback::bind<&AmqpConnection::retry>(this)),
      flush_timer_(base, "amqp flush", common::Callback::bind<&AmqpConnection::flush>(this)),
      backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(10000), 0.2),
      down_log_(kDownLogInterval) {
  tick_.start_every(kTick);
}

AmqpConnection::~AmqpConnection() {
  close_connection();
}

// connection.close without waiting for close-ok: an RPC here would hold up the loop (and a
// worker's exit) behind a broker that stopped answering.
void AmqpConnection::close_connection() {
  read_event_.reset();
  write_event_.reset();
  if (conn_ == nullptr) return;
  if (writer_ && writer_->pending() < static_cast<size_t>(kMaxUnsentBytes)) {
    amqp_connection_close_t close{};
    close.reply_code = AMQP_REPLY_SUCCESS;
    close.reply_text = amqp_cstring_bytes("sluice closing the connection");
    writer_->add_method(0, AMQP_CONNECTION_CLOSE_METHOD, &close);
    writer_->flush();  // what the socket takes now; nothing waits
  }
  writer_.reset();
  conn_.reset();
}

bool AmqpConnection::idle() const {
  return unconfirmed() == 0 && waiting_.empty() && untried_.empty();
}

bool AmqpConnection::needs_login() const {
  return state_ == State::idle || refusal_expired();
}

bool AmqpConnection::refusal_expired() const {
  return state_ == State::refused && Clock::now() >= refused_until_;
}

void AmqpConnection::publish(const std::string& exchange, const std::string& routing_key,
                             std::unique_ptr<AmqpMessage> message, Done done) {
  last_used_ = Clock::now();
  if (state_ == State::refused && Clock::now() < refused_until_) return finish(done, refusal_);
  if (state_ == State::down) return finish(done, PublishOutcome::unavailable);
  if (blocked_) return finish(done, PublishOutcome::blocked);
  Queued q{exchange, routing_key, std::move(message), std::move(done),
           Clock::now() + config_.confirm_timeout};
  if (state_ == State::ready) return route(std::move(q));
  if (waiting_.size() >= kMaxWaiting) return finish(q.done, PublishOutcome::unavailable);
  waiting_.push_back(std::move(q));
  if (state_ == State::idle || state_ == State::refused) start_connect();
}

void AmqpConnection::finish(Done& done, PublishOutcome outcome) {
  Done call = std::move(done);
  // Guarded one by one: callers are answered in loops, and one that threw must not leave the
  // others (and their paused requests) without an answer.
  if (call) common::guard("amqp publish outcome", [&] { call(outcome); });
}

void AmqpConnection::start_connect() {
  try {
    attempt_ = std::make_unique<AmqpConnectAttempt>(
        base_, config_, credentials_, [this](ConnectResult r) { connected_with(std::move(r)); });
  } catch (const std::exception& e) {  // no thread to be had: treat it as an outage
    connection_lost(std::string("cannot start the connection attempt: ") + e.what());
    return;
  }
  state_ = State::connecting;
}

void AmqpConnection::connected_with(ConnectResult result) {
  attempt_.reset();
  if (result.failure == ConnectFailure::none) {
    conn_ = std::move(result.conn);
    state_ = State::ready;
    blocked_ = false;
    trial_open_ = true;
    trial_in_flight_ = false;
    known_exchanges_.clear();
    backoff_.reset();
    ++counters_.connections_opened;
    counters_.channels_opened += 2;
    amqp_connection_state_t conn = conn_.get();
    int fd = amqp_get_sockfd(conn);
    evutil_make_socket_nonblocking(fd);
    writer_ = std::make_unique<AmqpWriter>(fd, static_cast<size_t>(amqp_get_frame_max(conn)));
    // From here on sluice sends every frame itself, heartbeats included: rabbitmq-c, told
    // heartbeats are off, never writes to the socket again (see amqp_writer.h).
    amqp_tune_connection(conn, amqp_get_channel_max(conn), amqp_get_frame_max(conn), 0);
    read_event_.emplace(base_, fd, EV_READ | EV_PERSIST, "amqp read",
                        common::Callback::bind<&AmqpConnection::readable>(this));
    write_event_.emplace(base_, fd, EV_WRITE, "amqp write",
                         common::Callback::bind<&AmqpConnection::flush>(this));
    last_heard_ = last_sent_ = Clock::now();
    if (!read_event_->start()) {
      connection_lost(std::string("cannot watch the broker's socket: ") + std::strerror(errno));
      return;
    }
    SLOG_INFO(kModule, "%s connected to %s", name_.c_str(), result.host.c_str());
    flush_waiting();
    read_frames();
    return;
  }
  if (result.failure == ConnectFailure::unreachable) {
    connection_lost("cannot reach " + result.host + ": " + result.detail);
    return;
  }
  refusal_ = result.failure == ConnectFailure::refused_login ? PublishOutcome::refused_login
                                                             : PublishOutcome::refused_vhost;
  state_ = State::refused;
  refused_until_ = Clock::now() + kRefusalMemory;
  SLOG_WARN(kModule, "%s refused by %s: %s", name_.c_str(), result.host.c_str(),
            result.detail.c_str());
  if (refusal_ == PublishOutcome::refused_login && on_login_refused_) on_login_refused_();
  fail_everything(refusal_);
}

void AmqpConnection::flush_waiting() {
  std::deque<Queued> ready = std::move(waiting_);
  waiting_.clear();
  for (auto& q : ready)
    send_when_possible(std::move(q));
}

// Known exchanges go on the shared channel; the others wait for their trial.
void AmqpConnection::route(Queued q) {
  auto forbidden = forbidden_exchanges_.find(q.exchange);
  if (forbidden != forbidden_exchanges_.end()) {
    if (Clock::now() < forbidden->second) return finish(q.done, PublishOutcome::exchange_forbidden);
    forbidden_exchanges_.erase(forbidden);
  }
  if (known_exchanges_.count(q.exchange) != 0) {
    send_now(q, kShared);
    return;
  }
  if (untried_.size() >= kMaxWaiting) return finish(q.done, PublishOutcome::unavailable);
  untried_.push_back(std::move(q));
  start_trial();
}

// False when the message was not sent; its caller has then been answered.
bool AmqpConnection::send_now(Queued& q, amqp_channel_t channel) {
  if (writer_->pending() > static_cast<size_t>(kMaxUnsentBytes)) {
    finish(q.done, PublishOutcome::backlogged);
    return false;
  }
  const AmqpMessage& m = *q.message;
  amqp_bytes_t body{m.body().size(), const_cast<char*>(m.body().data())};
  if (!writer_->add_publish(channel, amqp_cstring_bytes(q.exchange.c_str()),
                            amqp_cstring_bytes(q.routing_key.c_str()), m.mandatory(),
                            m.properties(), body)) {
    finish(q.done, PublishOutcome::unavailable);  // not encodable: nothing was queued
    return false;
  }
  ++counters_.publishes;
  if (m.mandatory()) {
    ReturnKey key{q.exchange, q.routing_key, m.body().size()};
    books(channel).add(std::move(q.done), q.deadline, &key);
  } else {
    books(channel).add(std::move(q.done), q.deadline, nullptr);
  }
  // A failed write is left to the scheduled flush: handling it here would fail requests (this
  // one included) from inside the caller's loop over its queue.
  bool socket_full = write_event_->pending();
  if (writer_->pending() >= kEagerFlushBytes && !socket_full &&
      write_pending() != AmqpWriter::Flush::failed) {
    return true;
  }
  schedule_flush();
  return true;
}

ConfirmBooks& AmqpConnection::books(amqp_channel_t channel) {
  return channel == kTrial ? trial_books_ : shared_books_;
}

bool AmqpConnection::send_method(amqp_channel_t channel, amqp_method_number_t id, void* decoded) {
  if (!writer_ || !writer_->add_method(channel, id, decoded)) return false;
  schedule_flush();
  return true;
}

// What is queued during one loop turn is written together once the turn is over (a zero timer
// runs after the callbacks of the current turn), or earlier once kEagerFlushBytes are queued.
void AmqpConnection::schedule_flush() {
  if (!flush_timer_.pending()) flush_timer_.start(std::chrono::milliseconds(0));
}

void AmqpConnection::flush() {
  if (!writer_) return;
  if (write_pending() == AmqpWriter::Flush::failed) connection_lost("write to the broker failed");
}

// Writes what the socket takes now and leaves the rest to write_event_. Calls no callback.
AmqpWriter::Flush AmqpConnection::write_pending() {
  size_t before = writer_->pending();
  AmqpWriter::Flush result = writer_->flush();
  if (writer_->pending() < before) last_sent_ = Clock::now();
  // The socket is full: finish when it drains.
  if (result == AmqpWriter::Flush::blocked && !write_event_->start()) {
    return AmqpWriter::Flush::failed;
  }
  return result;
}

// The oldest request for an untried exchange goes alone on the trial channel; the others for
// that exchange keep their place behind it.
void AmqpConnection::start_trial() {
  while (trial_open_ && !trial_in_flight_ && !untried_.empty() && conn_ != nullptr) {
    Queued q = std::move(untried_.front());
    untried_.pop_front();
    if (known_exchanges_.count(q.exchange) != 0) {  // confirmed by an earlier trial meanwhile
      send_when_possible(std::move(q));
      continue;
    }
    std::string exchange = q.exchange;
    if (send_now(q, kTrial)) {
      trial_in_flight_ = true;
      trial_exchange_ = std::move(exchange);
    }
  }
}

// The broker took the trial's publish (an ack, or a nack, which is about the queues): this
// user may publish to the exchange, so it and its waiting requests move to the shared channel.
void AmqpConnection::trial_settled() {
  if (!trial_in_flight_) return;
  trial_in_flight_ = false;
  known_exchanges_.insert(trial_exchange_);
  // Split first: sending may lose the connection, which empties every queue.
  std::deque<Queued> released;
  std::deque<Queued> rest;
  for (auto& q : untried_)
    (q.exchange == trial_exchange_ ? released : rest).push_back(std::move(q));
  untried_ = std::move(rest);
  for (auto& q : released)
    send_when_possible(std::move(q));
  start_trial();
}

// The broker closed the trial channel over its one message: 403 and 404 are about the
// exchange, so the requests waiting for it get the same answer (a refusal is remembered);
// anything else was about that message alone.
void AmqpConnection::trial_refused(PublishOutcome outcome) {
  std::vector<Done> calls;
  trial_books_.take_all(calls);
  bool in_flight = trial_in_flight_;
  trial_in_flight_ = false;
  trial_open_ = false;
  if (in_flight && outcome != PublishOutcome::unavailable) {
    if (outcome == PublishOutcome::exchange_forbidden) {
      forbidden_exchanges_[trial_exchange_] = Clock::now() + kForbiddenMemory;
    }
    std::deque<Queued> rest;
    for (auto& q : untried_) {
      if (q.exchange == trial_exchange_) {
        calls.push_back(std::move(q.done));
      } else {
        rest.push_back(std::move(q));
      }
    }
    untried_ = std::move(rest);
  }
  for (auto& done : calls)
    finish(done, outcome);
}

// For requests that waited (for the connection, a channel, an exchange check): the broker
// may have blocked us or dropped us meanwhile.
void AmqpConnection::send_when_possible(Queued q) {
  if (conn_ == nullptr || state_ == State::down) return finish(q.done, PublishOutcome::unavailable);
  if (blocked_) return finish(q.done, PublishOutcome::blocked);
  if (state_ != State::ready) return waiting_.push_back(std::move(q));
  route(std::move(q));
}

void AmqpConnection::readable() {
  last_heard_ = Clock::now();  // heartbeats too: rabbitmq-c consumes them unseen
  read_frames();
}

void AmqpConnection::read_frames() {
  while (conn_ != nullptr) {
    amqp_frame_t frame;
    timeval now{0, 0};
    int rc = amqp_simple_wait_frame_noblock(conn_.get(), &frame, &now);
    if (rc == AMQP_STATUS_TIMEOUT) break;
    if (rc != AMQP_STATUS_OK) {
      connection_lost(amqp_error_string2(rc));
      return;
    }
    handle_frame(frame);
  }
  if (conn_ != nullptr) amqp_maybe_release_buffers(conn_.get());
}

// A basic.return is a method frame, a content header (with the body size) and body frames;
// the body itself is not needed to tell which message came back.
void AmqpConnection::handle_frame(const amqp_frame_t& frame) {
  if (frame.frame_type == AMQP_FRAME_METHOD) {
    handle_method(frame.channel, frame.payload.method);
  } else if (frame.frame_type == AMQP_FRAME_HEADER &&
             (frame.channel == kShared || frame.channel == kTrial)) {
    books(frame.channel).on_content_header(frame.payload.properties.body_size);
  }
}

void AmqpConnection::handle_method(amqp_channel_t channel, const amqp_method_t& method) {
  switch (method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      auto* ack = static_cast<amqp_basic_ack_t*>(method.decoded);
      resolve_confirms(channel, ack->delivery_tag, ack->multiple, PublishOutcome::confirmed);
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      auto* nack = static_cast<amqp_basic_nack_t*>(method.decoded);
      resolve_confirms(channel, nack->delivery_tag, nack->multiple, PublishOutcome::rejected);
      break;
    }
    case AMQP_BASIC_RETURN_METHOD:
      if (channel == kShared || channel == kTrial) {
        books(channel).on_return(*static_cast<amqp_basic_return_t*>(method.decoded));
      }
      break;
    case AMQP_CHANNEL_CLOSE_METHOD:
      handle_channel_close(channel, *static_cast<amqp_channel_close_t*>(method.decoded));
      break;
    case AMQP_CHANNEL_OPEN_OK_METHOD:
      reopen_channel(channel);
      break;
    case AMQP_CONFIRM_SELECT_OK_METHOD:
      channel_confirming(channel);
      break;
    case AMQP_CONNECTION_BLOCKED_METHOD:
      blocked_ = true;
      SLOG_WARN(kModule, "%s: broker blocked publishing (resource alarm)", name_.c_str());
      break;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      blocked_ = false;
      SLOG_INFO(kModule, "%s: broker unblocked publishing", name_.c_str());
      break;
    case AMQP_CONNECTION_CLOSE_METHOD: {
      auto* close = static_cast<amqp_connection_close_t*>(method.decoded);
      amqp_connection_close_ok_t ok{};
      std::string why = "closed by the broker: " + to_string(close->reply_text);
      send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      flush();  // the close-ok goes out before the socket is closed
      if (conn_ != nullptr) connection_lost(why);
      break;
    }
    default:
      break;  // consumer methods: not ours
  }
}

void AmqpConnection::resolve_confirms(amqp_channel_t channel, uint64_t tag, bool multiple,
                                      PublishOutcome outcome) {
  if (channel != kShared && channel != kTrial) return;
  std::vector<ConfirmBooks::Answer> answers;
  books(channel).resolve(tag, multiple, outcome, answers);
  for (auto& a : answers)
    finish(a.done, a.outcome);
  if (channel == kTrial) trial_settled();
}

// The broker closes a channel on an error. The trial channel held one message (see
// trial_refused); it is reopened for the next trial.
void AmqpConnection::handle_channel_close(amqp_channel_t channel,
                                          const amqp_channel_close_t& close) {
  ++counters_.channels_closed;
  amqp_channel_close_ok_t ok{};
  send_method(channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  if (channel == kTrial) {
    trial_refused(trial_failure(close.reply_code));
  } else {
    shared_channel_closed(close);
  }
  if (conn_ == nullptr) return;
  amqp_channel_open_t open{};
  open.out_of_band = amqp_empty_bytes;
  if (!send_method(channel, AMQP_CHANNEL_OPEN_METHOD, &open)) {
    connection_lost("channel.open failed");
  }
}

// On the shared channel the messages not yet confirmed are of unknown fate: they fail with
// 503 and the client retries. The trial makes this rare: an exchange deleted after its trial,
// or permissions changed since.
void AmqpConnection::shared_channel_closed(const amqp_channel_close_t& close) {
  std::string reply = to_string(close.reply_text);
  SLOG_WARN(kModule, "%s: publishing channel closed by the broker: %s", name_.c_str(),
            reply.c_str());
  std::string exchange = exchange_named(reply);
  known_exchanges_.erase(exchange);  // its next use is tried again (and answered 404 or 403)
  if (close.reply_code == AMQP_ACCESS_REFUSED && !exchange.empty()) {
    forbidden_exchanges_[exchange] = Clock::now() + kForbiddenMemory;
  }
  state_ = State::reopening;
  std::vector<Done> calls;
  shared_books_.take_all(calls);
  for (auto& done : calls)
    finish(done, PublishOutcome::unavailable);
}

void AmqpConnection::reopen_channel(amqp_channel_t channel) {
  ++counters_.channels_opened;
  amqp_confirm_select_t select{};
  if (!send_method(channel, AMQP_CONFIRM_SELECT_METHOD, &select)) {
    connection_lost("confirm.select failed");
  }
}

// A reopened channel is in confirm mode again: its delivery tags restart at 1.
void AmqpConnection::channel_confirming(amqp_channel_t channel) {
  if (channel == kTrial) {
    trial_open_ = true;
    start_trial();
    return;
  }
  state_ = State::ready;
  flush_waiting();
}

void AmqpConnection::connection_lost(const std::string& why) {
  bool was_connected = conn_ != nullptr;
  read_event_.reset();
  write_event_.reset();
  writer_.reset();
  if (conn_ != nullptr) {
    conn_.reset();  // no close handshake: the connection is gone or broken
    ++counters_.connections_closed;
  }
  state_ = State::down;
  blocked_ = false;
  trial_open_ = false;
  trial_in_flight_ = false;
  if (was_connected) down_log_.reset();  // the change is always logged
  if (down_log_.admit()) {
    SLOG_WARN(kModule, "%s: %s; reconnecting with backoff%s", name_.c_str(), why.c_str(),
              down_log_.take_note().c_str());
  }
  fail_everything(PublishOutcome::unavailable);
  schedule_reconnect();
}

void AmqpConnection::fail_everything(PublishOutcome outcome) {
  std::vector<Done> calls;
  shared_books_.take_all(calls);
  trial_books_.take_all(calls);
  for (auto& q : waiting_)
    calls.push_back(std::move(q.done));
  for (auto& q : untried_)
    calls.push_back(std::move(q.done));
  waiting_.clear();
  untried_.clear();
  for (auto& done : calls)
    finish(done, outcome);
}

void AmqpConnection::schedule_reconnect() {
  retry_.start(backoff_.next());
}

void AmqpConnection::retry() {
  if (state_ == State::down) start_connect();
}

void AmqpConnection::tick() {
  read_frames();
  if (conn_ != nullptr) heartbeat();
  expire_deadlines();
}

// Heartbeats are ours to send (every half interval of silence) and to expect: two missed
// intervals mean the broker is gone (a partition, a stopped VM).
void AmqpConnection::heartbeat() {
  auto interval = config_.heartbeat;
  if (interval.count() == 0) return;
  auto now = Clock::now();
  if (now - last_heard_ > 2 * interval) {
    connection_lost("heartbeat timeout: nothing from the broker for " +
                    std::to_string(2 * interval.count() / 1000) + " s");
    return;
  }
  if (now - last_sent_ >= interval / 2) {
    writer_->add_heartbeat();
    schedule_flush();
  }
}

void AmqpConnection::expire_deadlines() {
  auto now = Clock::now();
  std::vector<Done> calls;
  shared_books_.expire(now, calls);
  trial_books_.expire(now, calls);
  auto expire = [&](std::deque<Queued>& queue) {
    std::deque<Queued> keep;
    for (auto& q : queue) {
      if (q.deadline <= now) {
        calls.push_back(std::move(q.done));
      } else {
        keep.push_back(std::move(q));
      }
    }
    queue = std::move(keep);
  };
  expire(waiting_);
  expire(untried_);
  for (auto& done : calls)
    finish(done, PublishOutcome::timed_out);
}

}  // namespace sluice::worker
