#pragma once
// One hiredis async connection on the worker's event loop that never gives up: it
// reconnects with backoff and jitter, authenticates and selects the db on each connect,
// pings every few seconds to notice a silent peer, and reports whether it is up. Commands
// are refused (not queued) while it is down, so callers can answer 503 at once.
//
// The redisAsyncContext is not a unique_ptr: hiredis frees it itself after the disconnect
// callback, so on_disconnect only forgets the pointer, and the destructor frees it only
// when it is still set (STYLE.md, "RAII for C handles").
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/config.h"
#include "common/handles/timer.h"
#include "common/log_throttle.h"

namespace sluice::worker {

class RedisConnection {
 public:
  // Called exactly once per command: with the reply, or with null when the connection
  // failed before the reply arrived.
  using ReplyFn = std::function<void(redisReply* reply)>;

  RedisConnection(event_base* base, const common::RedisConfig& config);
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  void start();
  bool up() const { return state_ == State::up; }
  // False, and `fn` is not called, when the connection is not up.
  bool command(const std::vector<std::string>& args, ReplyFn fn);
  // "127.0.0.1:6379" for logs (never the password).
  const std::string& endpoint() const { return endpoint_; }

  static constexpr std::chrono::milliseconds kHeartbeat{2000};
  static constexpr std::chrono::milliseconds kConnectTimeout{5000};

 private:
  enum class State { down, connecting, handshaking, up };

  void connect();
  void schedule_reconnect(const char* why);
  void handle_connect(int status);
  void handle_disconnect(int status);
  void handshake();
  void became_up();
  void tick();
  bool send(const std::vector<std::string>& args, ReplyFn fn);
  void drop(const char* why);

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);

  event_base* base_;
  common::RedisConfig config_;
  std::string endpoint_;
  redisAsyncContext* ctx_ = nullptr;
  State state_ = State::down;
  bool closing_ = false;
  bool ping_pending_ = false;
  int handshake_pending_ = 0;
  common::Backoff backoff_;
  common::Timer retry_timer_;
  common::Timer tick_timer_;
  std::chrono::steady_clock::time_point connect_started_;
  common::LogThrottle down_log_;  // "unavailable" while the server stays unreachable
  std::string last_error_;
  std::string drop_reason_;  // why drop() closed it, for the disconnect log line
};

}  // namespace sluice::worker
