// Held requests (RequestCtx::hold, on_gone): deadlines, client-gone notices, a drain's early
// answers. Part of HttpServer; the request lifecycle is in http_server.cpp.
#include <event2/bufferevent.h>

#include <vector>

#include "common/error.h"
#include "worker/guard.h"
#include "worker/http_connection.h"
#include "worker/http_server.h"
#include "worker/request.h"

namespace sluice::worker {

// A held request's client is gone on a reset or a failed write, and on an EOF when its
// module said so (RequestCtx::Eof): a long-poll's client that closes is not coming back.
bool HttpServer::client_left(const Connection& c, short events) const {
  const RequestCtx* ctx = c.ctx;
  if (c.phase != Phase::busy || ctx == nullptr || !ctx->held_ || ctx->replied()) return false;
  if ((events & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) != 0) return true;
  return (events & BEV_EVENT_EOF) != 0 && ctx->eof_ == RequestCtx::Eof::gone;
}

void HttpServer::arm_hold(RequestCtx& ctx, std::chrono::milliseconds timeout) {
  Connection* c = find(evhtp_request_get_connection(ctx.raw()));
  if (c == nullptr) return;
  // One timer per connection, kept for its later requests: a keep-alive client's publishes
  // re-arm it without an allocation.
  if (!c->hold_timer) {
    c->hold_timer.emplace(base_, "hold timeout",
                          common::Callback::bind<&HttpServer::on_hold_timeout>(c));
  }
  // After a drain's early answers, a request held later is answered at once.
  c->hold_timer->start(holds_expired_ ? std::chrono::milliseconds(0) : timeout);
  listen_while_paused(*c);
}

// A request held until its client leaves (Eof::gone) must hear it leave, also on a connection
// libevhtp paused (a request pipelined behind it, a chunked body): reading goes on, bounded
// by readable(), which never lets libevhtp parse while paused. A half-close hold does not:
// its client's FIN comes after the requests it pipelined, which are all to be answered.
void HttpServer::listen_while_paused(RequestCtx& ctx) {
  if (ctx.raw() == nullptr) return;
  if (Connection* c = find(evhtp_request_get_connection(ctx.raw()))) listen_while_paused(*c);
}

void HttpServer::listen_while_paused(Connection& c) {
  const RequestCtx* ctx = c.ctx;
  if (ctx == nullptr || !ctx->held_ || ctx->eof_ != RequestCtx::Eof::gone) return;
  if (paused(c.conn)) bufferevent_enable(c.conn->bev, EV_READ);
}

void HttpServer::end_hold(RequestCtx& ctx) {
  ctx.held_ = false;
  evhtp_connection_t* conn = evhtp_request_get_connection(ctx.raw());
  Connection* c = find(conn);
  if (c != nullptr && c->hold_timer) c->hold_timer->stop();
  set_read_timeout(conn, true);
}

void HttpServer::on_hold_timeout(Connection* c) {
  if (c->ctx != nullptr) c->server->hold_expired(*c->ctx);
}

// The module's timeout answer, or a 503 when it gives none. The handler is moved out first:
// answering clears the ctx's handlers, this one included.
void HttpServer::hold_expired(RequestCtx& ctx) {
  if (!ctx.held_ || ctx.replied()) return;
  CtxRef keep(ctx);
  RequestCtx::OnTimeout on_timeout = std::move(ctx.on_timeout_);
  ctx.on_timeout_ = nullptr;
  const unsigned holds = ctx.holds_;
  if (on_timeout) guard("hold timeout", ctx, [&] { on_timeout(ctx); });
  // A handler that held again extends the wait, except during a drain's early answers.
  bool held_again = ctx.holds_ != holds && ctx.held_ && !holds_expired_;
  if (!ctx.replied() && !held_again) {
    send_error(ctx, common::make_error(common::Errc::backend_unavailable, "timeout",
                                       "the request could not be answered in time; retry later"));
  }
}

void HttpServer::expire_holds() {
  holds_expired_ = true;
  std::vector<CtxRef> due;
  for (const auto& [conn, c] : conns_) {
    if (c->phase == Phase::busy && c->ctx != nullptr && c->ctx->held_) due.emplace_back(*c->ctx);
  }
  for (const CtxRef& ref : due)
    hold_expired(*ref);
}

size_t HttpServer::held() const {
  size_t n = 0;
  for (const auto& [conn, c] : conns_)
    n += c->phase == Phase::busy && c->ctx != nullptr && c->ctx->held_ ? 1 : 0;
  return n;
}

// The module hears of it on the next loop turn, outside libevhtp's callbacks, so a module
// walking its own waiter list never sees it change under it.
void HttpServer::notify_gone(RequestCtx& ctx) {
  gone_.emplace_back(ctx);
  gone_notices_.activate();
}

void HttpServer::run_gone_notices() {
  std::vector<CtxRef> gone;
  gone.swap(gone_);
  for (const CtxRef& ref : gone) {
    RequestCtx::OnGone on_gone = std::move(ref->on_gone_);
    ref->on_gone_ = nullptr;
    if (on_gone && !ref->replied()) guard("client gone", *ref, [&] { on_gone(); });
  }
}

}  // namespace sluice::worker
