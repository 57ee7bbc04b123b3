#include "worker/backends/redis.h"

#include <hiredis/adapters/libevent.h>

#include <memory>

#include "common/guard.h"
#include "common/log.h"

namespace sluice::worker {
namespace {

constexpr const char* kModule = "redis";
constexpr std::chrono::seconds kDownLogInterval{30};

struct Pending {
  RedisConnection::ReplyFn fn;
};

}  // namespace

RedisConnection::RedisConnection(event_base* base, const common::RedisConfig& config)
    : base_(base),
      config_(config),
      endpoint_(config.host + ":" + std::to_string(config.port)),
      backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(5000), 0.2),
      retry_timer_(base, "redis reconnect",
                   common::Callback::bind<&RedisConnection::connect>(this)),
      tick_timer_(base, "redis tick", common::Callback::bind<&RedisConnection::tick>(this)),
      down_log_(kDownLogInterval) {}

RedisConnection::~RedisConnection() {
  closing_ = true;
  if (ctx_ != nullptr) {
    redisAsyncContext* ctx = ctx_;
    ctx_ = nullptr;
    redisAsyncFree(ctx);  // pending callbacks run now, with a null reply
  }
}

void RedisConnection::start() {
  tick_timer_.start_every(kHeartbeat);
  connect();
}

void RedisConnection::connect() {
  redisAsyncContext* ac = redisAsyncConnect(config_.host.c_str(), config_.port);
  if (ac == nullptr) {
    schedule_reconnect("out of memory");
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    schedule_reconnect(why.c_str());
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, base_);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  ctx_ = ac;
  state_ = State::connecting;
  connect_started_ = std::chrono::steady_clock::now();
}

void RedisConnection::schedule_reconnect(const char* why) {
  bool was_up = state_ == State::up;
  state_ = State::down;
  ping_pending_ = false;
  if (closing_) return;
  auto delay = backoff_.next();
  if (was_up || last_error_.empty()) down_log_.reset();  // the change is always logged
  if (down_log_.admit()) {
    SLOG_WARN(kModule, "redis %s unavailable (%s); retrying in %lld ms%s", endpoint_.c_str(), why,
              static_cast<long long>(delay.count()), down_log_.take_note().c_str());
  }
  last_error_ = why;
  retry_timer_.start(delay);
}

void RedisConnection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  common::guard("redis connect", [&] { self->handle_connect(status); });
}

void RedisConnection::handle_connect(int status) {
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback; no disconnect callback follows.
    std::string why = ctx_ != nullptr ? ctx_->errstr : "connect failed";
    ctx_ = nullptr;
    schedule_reconnect(why.c_str());
    return;
  }
  handshake();
}

void RedisConnection::handshake() {
  state_ = State::handshaking;
  handshake_pending_ = 0;
  auto step = [this](redisReply* reply) {
    if (reply == nullptr) return;  // the disconnect path handles it
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string why = std::string("handshake refused: ") + reply->str;
      drop(why.c_str());
      return;
    }
    if (--handshake_pending_ == 0) became_up();
  };
  if (!config_.password.empty()) {
    ++handshake_pending_;
    send({"AUTH", config_.password}, step);
  }
  if (config_.db != 0) {
    ++handshake_pending_;
    send({"SELECT", std::to_string(config_.db)}, step);
  }
  if (handshake_pending_ == 0) became_up();
}

void RedisConnection::became_up() {
  state_ = State::up;
  backoff_.reset();
  last_error_.clear();
  SLOG_INFO(kModule, "redis %s connected", endpoint_.c_str());
}

void RedisConnection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  common::guard("redis disconnect", [&] { self->handle_disconnect(status); });
}

void RedisConnection::handle_disconnect(int status) {
  std::string why = !drop_reason_.empty()                     ? drop_reason_
                    : (status == REDIS_OK || ctx_ == nullptr) ? "connection closed"
                                                              : ctx_->errstr;
  drop_reason_.clear();
  ctx_ = nullptr;  // hiredis frees it when this callback returns
  schedule_reconnect(why.c_str());
}

// Closes a connection that is stuck or refused us, failing its pending commands.
void RedisConnection::drop(const char* why) {
  if (ctx_ == nullptr) return;
  redisAsyncContext* ctx = ctx_;
  if (state_ == State::connecting) {
    ctx_ = nullptr;  // never connected: hiredis calls no disconnect callback
    redisAsyncFree(ctx);
    schedule_reconnect(why);
    return;
  }
  drop_reason_ = why;  // on_disconnect reports it
  // Connected: hiredis runs on_disconnect from inside redisAsyncFree (or right after the
  // current callback when called from one), which forgets ctx_ and schedules the reconnect.
  redisAsyncFree(ctx);
}

bool RedisConnection::command(const std::vector<std::string>& args, ReplyFn fn) {
  if (state_ != State::up) return false;
  return send(args, std::move(fn));
}

bool RedisConnection::send(const std::vector<std::string>& args, ReplyFn fn) {
  if (ctx_ == nullptr) return false;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto pending = std::make_unique<Pending>(Pending{std::move(fn)});
  int rc = redisAsyncCommandArgv(ctx_, on_reply, pending.get(), static_cast<int>(argv.size()),
                                 argv.data(), lens.data());
  if (rc != REDIS_OK) return false;
  pending.release();  // owned by hiredis until on_reply
  return true;
}

void RedisConnection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  common::guard("redis reply", [&] { pending->fn(static_cast<redisReply*>(reply)); });
}

void RedisConnection::tick() {
  if (state_ == State::connecting || state_ == State::handshaking) {
    if (std::chrono::steady_clock::now() - connect_started_ >= kConnectTimeout) {
      drop("connect timed out");
    }
    return;
  }
  if (state_ != State::up) return;
  if (ping_pending_) {
    drop("no reply to PING");
    return;
  }
  ping_pending_ = true;
  send({"PING"}, [this](redisReply* reply) {
    if (reply == nullptr) return;  // the disconnect path handles it
    ping_pending_ = false;
    // -LOADING and the like: the server answers but cannot serve commands.
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string why = std::string("PING refused: ") + reply->str;
      drop(why.c_str());
    }
  });
}

}  // namespace sluice::worker
