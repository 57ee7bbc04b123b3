#pragma once
// RequestCtx: what a module sees of one HTTP request. It is created when the request's
// headers start, is the privdata of every backend call made for it, and counts references
// like nginx's r->main->count: one for the libevhtp request (dropped in on_request_fini)
// and one per pending backend callback. When the client goes away the evhtp request is
// freed, raw() becomes null and later replies are ignored; the ctx itself lives until the
// last reference is released, so no callback ever touches freed memory.
#include <evhtp.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sluice::worker {

class HttpServer;
struct Route;

class RequestCtx {
 public:
  RequestCtx(HttpServer& server, evhtp_request_t* req);
  RequestCtx(const RequestCtx&) = delete;
  RequestCtx& operator=(const RequestCtx&) = delete;

  void retain() { ++refs_; }
  void release();

  // Null once libevhtp has freed the request (client gone, connection error).
  evhtp_request_t* raw() const { return req_; }
  bool client_gone() const { return req_ == nullptr; }
  htp_method method() const { return method_; }
  std::string_view path() const;
  const std::vector<std::string>& params() const { return params_; }
  // Value of a request header, or null.
  const char* header(const char* name) const;
  void add_header(std::string_view name, std::string_view value);

  // For a request answered later, from a backend callback: the connection's idle read
  // timeout (client_timeout) must not cut it off while it waits; reply() restores it.
  void hold();

  // Sends the whole response. Only the first reply counts; later ones are ignored.
  void reply(int status, std::string_view content_type, std::string_view body);
  bool replied() const { return status_ != 0; }
  int status() const { return status_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  friend class HttpServer;
  ~RequestCtx() = default;

  HttpServer& server_;
  evhtp_request_t* req_;
  htp_method method_ = htp_method_UNKNOWN;
  int refs_ = 1;  // the evhtp request's own reference
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  size_t header_count_ = 0;
  size_t header_bytes_ = 0;
  bool held_ = false;
  bool prechecked_ = false;  // routed and prechecked (when the head was complete, or later)
  const Route* route_ = nullptr;
  std::vector<std::string> params_;
  std::chrono::steady_clock::time_point started_;
};

// A counted reference to a RequestCtx that a backend callback can hold: copying retains,
// destruction releases, so a callback that is dropped without being called leaks nothing.
class CtxRef {
 public:
  explicit CtxRef(RequestCtx& ctx) : ctx_(&ctx) { ctx_->retain(); }
  CtxRef(const CtxRef& other) : ctx_(other.ctx_) { ctx_->retain(); }
  CtxRef& operator=(const CtxRef&) = delete;
  ~CtxRef() { ctx_->release(); }
  RequestCtx& operator*() const { return *ctx_; }
  RequestCtx* operator->() const { return ctx_; }

 private:
  RequestCtx* ctx_;
};

// The one place an Error becomes a response: status from common::http_status, JSON body
// (none for a `bare` compatibility answer), Retry-After on 503 and 429.
void send_error(RequestCtx& ctx, const common::Error& error);
void send_json(RequestCtx& ctx, int status, std::string_view body);

}  // namespace sluice::worker
