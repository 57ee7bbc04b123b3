#pragma once
// RequestCtx: what a module sees of one HTTP request. It is created when the request's
// headers start, is the privdata of every backend call made for it, and counts references
// like nginx's r->main->count: one for the libevhtp request (dropped in on_request_fini)
// and one per CtxRef (a pending backend callback, a waiter list's entry). When the client
// goes away the evhtp request is freed, raw() becomes null and later replies are ignored;
// the ctx itself lives until the last reference is released, so no callback ever touches
// freed memory.
//
// A request answered later (a confirm, a message for a long-poll) is held: hold() gives it a
// deadline and the answer to give at that deadline, on_gone() tells the module when its
// client leaves first, so a module's lists of waiting requests never keep dead entries
// (worker/waiters.h keeps such a list).
#include <evhtp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sluice::worker {

class HttpServer;
struct Route;

class RequestCtx {
 public:
  using OnTimeout = std::function<void(RequestCtx&)>;
  using OnGone = std::function<void()>;
  // What an end of the client's input (a FIN) means for a held request.
  enum class Eof {
    gone,        // the client left (a long-poll, a stream): the connection is closed
    half_close,  // the client may still read (shutdown(SHUT_WR)): it gets its answer
  };

  RequestCtx(HttpServer& server, evhtp_request_t* req);
  RequestCtx(const RequestCtx&) = delete;
  RequestCtx& operator=(const RequestCtx&) = delete;

  // Null once libevhtp has freed the request (client gone, connection error).
  evhtp_request_t* raw() const { return req_; }
  bool client_gone() const { return req_ == nullptr; }
  htp_method method() const { return method_; }
  std::string_view path() const;
  const std::vector<std::string>& params() const { return params_; }
  // Value of a request header, or null.
  const char* header(const char* name) const;
  void add_header(std::string_view name, std::string_view value);

  // For a request answered later: the connection's idle read timeout (client_timeout) is
  // off while it waits, and if it is still unanswered `timeout` from now, `on_timeout` runs
  // and answers it (a 503 is sent if it does not). A graceful stop runs it early, before
  // shutdown_timeout, so a held client gets an answer rather than a closed connection.
  // Holding again replaces the deadline and the handler.
  void hold(std::chrono::milliseconds timeout, OnTimeout on_timeout);
  bool held() const { return held_; }
  // Replaces the timeout answer of a held request, keeping its deadline.
  void on_timeout(OnTimeout fn);
  // `fn` runs once, on a later loop turn, if the client goes away before the request is
  // answered (a reset, a failed write, or an EOF when `eof` is Eof::gone). An empty `fn`
  // cancels the notice and keeps the EOF rule. Neither handler is kept once the request is
  // answered or its client gone.
  void on_gone(OnGone fn, Eof eof = Eof::gone);

  // Sends the whole response. Only the first reply counts; later ones are ignored.
  void reply(int status, std::string_view content_type, std::string_view body);
  bool replied() const { return status_ != 0; }
  int status() const { return status_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  friend class HttpServer;
  friend class CtxRef;
  ~RequestCtx() = default;
  void retain() { ++refs_; }
  void release();

  HttpServer& server_;
  evhtp_request_t* req_;
  htp_method method_ = htp_method_UNKNOWN;
  int refs_ = 1;  // the evhtp request's own reference
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  size_t header_count_ = 0;
  size_t header_bytes_ = 0;
  bool held_ = false;
  Eof eof_ = Eof::half_close;
  unsigned holds_ = 0;  // hold() calls: a timeout handler that holds again extends the wait
  OnTimeout on_timeout_;
  OnGone on_gone_;
  bool prechecked_ = false;  // routed and prechecked (when the head was complete, or later)
  const Route* route_ = nullptr;
  std::vector<std::string> params_;
  std::chrono::steady_clock::time_point started_;
};

// A counted reference to a RequestCtx, the only way to keep one: copying retains,
// destruction releases, so a callback that is dropped without being called leaks nothing.
// A moved-from CtxRef is empty and releases nothing.
class CtxRef {
 public:
  explicit CtxRef(RequestCtx& ctx) : ctx_(&ctx) { ctx_->retain(); }
  CtxRef(const CtxRef& other) : ctx_(other.ctx_) {
    if (ctx_ != nullptr) ctx_->retain();
  }
  CtxRef(CtxRef&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
  CtxRef& operator=(const CtxRef&) = delete;
  CtxRef& operator=(CtxRef&&) = delete;
  ~CtxRef() {
    if (ctx_ != nullptr) ctx_->release();
  }
  RequestCtx& operator*() const { return *ctx_; }
  RequestCtx* operator->() const { return ctx_; }
  RequestCtx* get() const { return ctx_; }

 private:
  RequestCtx* ctx_;
};

// The one place an Error becomes a response: status from common::http_status, JSON body
// (none for a `bare` compatibility answer), Retry-After on 503 and 429.
void send_error(RequestCtx& ctx, const common::Error& error);
void send_json(RequestCtx& ctx, int status, std::string_view body);

}  // namespace sluice::worker
