#include "worker/request.h"

#include <string>

#include "common/error.h"
#include "worker/http_server.h"

namespace sluice::worker {

RequestCtx::RequestCtx(HttpServer& server, evhtp_request_t* req)
    : server_(server), req_(req), started_(std::chrono::steady_clock::now()) {}

void RequestCtx::release() {
  if (--refs_ == 0) delete this;
}

std::string_view RequestCtx::path() const {
  if (req_ == nullptr || req_->uri == nullptr || req_->uri->path == nullptr) return {};
  const char* full = req_->uri->path->full;
  return full != nullptr ? std::string_view(full) : std::string_view();
}

const char* RequestCtx::header(const char* name) const {
  if (req_ == nullptr) return nullptr;
  return evhtp_kv_find(req_->headers_in, name);
}

void RequestCtx::add_header(std::string_view name, std::string_view value) {
  if (req_ == nullptr) return;
  evhtp_headers_add_header(req_->headers_out, evhtp_header_new(std::string(name).c_str(),
                                                               std::string(value).c_str(), 1, 1));
}

void RequestCtx::hold(std::chrono::milliseconds timeout, OnTimeout on_timeout) {
  if (req_ == nullptr || status_ != 0) return;
  on_timeout_ = std::move(on_timeout);
  if (!held_) server_.set_read_timeout(evhtp_request_get_connection(req_), false);
  held_ = true;
  ++holds_;
  server_.arm_hold(*this, timeout);
}

// Handlers of a request that is answered or whose client is gone could never run: they are
// not kept, so one that holds a CtxRef cannot keep the ctx alive for ever.
void RequestCtx::on_timeout(OnTimeout fn) {
  if (req_ == nullptr || status_ != 0) return;
  on_timeout_ = std::move(fn);
}

void RequestCtx::on_gone(OnGone fn, Eof eof) {
  if (!fn) {  // a cancel always applies (a notice may be queued), and keeps the EOF rule
    on_gone_ = nullptr;
    return;
  }
  if (req_ == nullptr || status_ != 0) return;
  eof_ = eof;
  on_gone_ = std::move(fn);
  if (held_) server_.listen_while_paused(*this);
}

void RequestCtx::reply(int status, std::string_view content_type, std::string_view body) {
  if (status_ != 0) return;
  status_ = status;
  // Answered: the handlers (which may hold references to this ctx) have nothing left to do.
  // The one running now, if any, was moved out before it was called.
  on_timeout_ = nullptr;
  on_gone_ = nullptr;
  if (req_ == nullptr) return;
  if (held_) server_.end_hold(*this);
  // Keep-alive clients reconnect elsewhere: this worker is about to exit. (libevhtp's
  // evhtp_request_set_keepalive(req, 0) does nothing in 1.2.18; clearing the flag makes it
  // close after this answer, and the answer says "Connection: close".)
  if (server_.draining()) req_->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
  server_.send_response(*this, status, content_type, body);
}

void send_error(RequestCtx& ctx, const common::Error& error) {
  if (error.code == common::Errc::backend_unavailable ||
      error.code == common::Errc::too_many_requests) {
    ctx.add_header("Retry-After", std::to_string(common::kRetryAfterSeconds));
  }
  int status = common::http_status(error.code);
  if (error.bare) {
    ctx.reply(status, "", "");
  } else {
    send_json(ctx, status, common::error_body(error));
  }
}

void send_json(RequestCtx& ctx, int status, std::string_view body) {
  ctx.reply(status, "application/json", body);
}

}  // namespace sluice::worker
