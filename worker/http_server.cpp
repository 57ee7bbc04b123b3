#include "worker/http_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/log.h"
#include "worker/guard.h"
#include "worker/request.h"

namespace sluice::worker {
namespace {

constexpr const char* kModule = "http";
// Beyond these a request's headers get 431: libevhtp caps a line, not their number.
constexpr size_t kMaxHeaders = 100;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr long long kSweepMs = 1000;
constexpr long long kAcceptPauseMs = 200;

uint64_t elapsed_us(const RequestCtx& ctx) {
  auto d = std::chrono::steady_clock::now() - ctx.started();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// htparser's error names are not for clients.
const char* describe_parse_error(htpparse_error err) {
  switch (err) {
    case htparse_error_too_big:
      return "request line or header too long";
    case htparse_error_inval_method:
      return "unknown request method";
    case htparse_error_inval_reqline:
      return "malformed request line";
    case htparse_error_inval_schema:
      return "malformed URL scheme";
    case htparse_error_inval_proto:
      return "unknown protocol";
    case htparse_error_inval_ver:
      return "unsupported HTTP version";
    case htparse_error_inval_chunk_sz:
      return "malformed chunk size";
    case htparse_error_inval_chunk:
      return "malformed chunk";
    default:
      return "malformed header";
  }
}

RequestCtx* ctx_of(evhtp_request_t* req) {
  return static_cast<RequestCtx*>(req->cbarg);
}

}  // namespace

HttpServer::HttpServer(event_base* base, const common::ListenConfig& listen, const Router& router,
                       common::WorkerSlot& slot)
    : base_(base), listen_(listen), router_(router), slot_(slot), closer_(base) {}

HttpServer::~HttpServer() = default;

common::Result<void> HttpServer::start(int fd) {
  htp_.reset(evhtp_new(base_, this));
  if (!htp_) {
    return common::make_error(common::Errc::internal, "evhtp_new", "evhtp_new() failed");
  }
  evhtp_set_gencb(htp_.get(), on_request, nullptr);
  evhtp_set_post_accept_cb(htp_.get(), on_post_accept, this);
  timeval read_timeout = common::to_timeval(listen_.client_timeout.count());
  evhtp_set_timeouts(htp_.get(), &read_timeout, nullptr);
  if (evutil_make_socket_nonblocking(fd) != 0 || evhtp_accept_socket(htp_.get(), fd, 0) != 0) {
    int err = errno;
    return common::make_error(common::Errc::internal, "accept_socket",
                              std::string("evhtp_accept_socket() failed: ") + std::strerror(err));
  }
  evconnlistener_set_error_cb(htp_->server, on_accept_error);
  accept_pause_.reset(evtimer_new(
      base_,
      [](evutil_socket_t, short, void* arg) { static_cast<HttpServer*>(arg)->resume_accepting(); },
      this));
  sweep_.reset(event_new(
      base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) {
        static_cast<HttpServer*>(arg)->sweep_slow_clients();
      },
      this));
  timeval every = common::to_timeval(kSweepMs);
  evtimer_add(sweep_.get(), &every);
  return {};
}

// Stops accepting and closes this worker's copy of the listening socket: a port the new
// configuration drops is refused as soon as the supervisor has closed its copy too.
void HttpServer::drain() {
  if (draining_) return;
  draining_ = true;
  if (htp_ && htp_->server != nullptr) evhtp_unbind_socket(htp_.get());
}

// Out of descriptors (EMFILE): libevent would retry accept() in a tight loop. Stop
// accepting for a moment instead; connections wait in the kernel's backlog.
void HttpServer::on_accept_error(evconnlistener* listener, void* arg) {
  int err = EVUTIL_SOCKET_ERROR();
  auto* self = static_cast<HttpServer*>(static_cast<evhtp_t*>(arg)->arg);
  evconnlistener_disable(listener);
  auto now = std::chrono::steady_clock::now();
  if (now - self->last_accept_error_log_ >= std::chrono::seconds(10)) {
    SLOG_SYSERR(kModule, err, "accept() failed; pausing accepts for %lld ms", kAcceptPauseMs);
    self->last_accept_error_log_ = now;
  }
  timeval pause = common::to_timeval(kAcceptPauseMs);
  evtimer_add(self->accept_pause_.get(), &pause);
}

void HttpServer::resume_accepting() {
  if (!draining_ && htp_ && htp_->server != nullptr) evconnlistener_enable(htp_->server);
}

// Slowloris: the read timeout restarts with every byte, so a client dripping its request
// line or headers would hold a connection for ever. Bound the time to a complete head.
void HttpServer::sweep_slow_clients() {
  auto cutoff = std::chrono::steady_clock::now() - listen_.client_timeout;
  std::vector<evhtp_connection_t*> slow;
  for (const auto& [conn, since] : fresh_) {
    if (since < cutoff) slow.push_back(conn);
  }
  for (RequestCtx* ctx : receiving_headers_) {
    if (ctx->started() < cutoff && ctx->raw() != nullptr) {
      slow.push_back(evhtp_request_get_connection(ctx->raw()));
    }
  }
  for (evhtp_connection_t* conn : slow) {
    if (closer_.closing(conn)) continue;
    SLOG_DEBUG(kModule, "closing a connection that has not sent a whole request head in time");
    evhtp_connection_free(conn);
  }
}

evhtp_res HttpServer::on_post_accept(evhtp_connection_t* conn, void* arg) {
  static_cast<HttpServer*>(arg)->accept_connection(conn);
  return EVHTP_RES_OK;
}

void HttpServer::accept_connection(evhtp_connection_t* conn) {
  slot_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  slot_.connections_open.fetch_add(1, std::memory_order_relaxed);
  fresh_.emplace(conn, std::chrono::steady_clock::now());
  evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
                            common::as_hook(on_connection_fini), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_headers_start, common::as_hook(on_headers_start),
                            this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_header, common::as_hook(on_header), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_headers, common::as_hook(on_headers), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_read, common::as_hook(on_body), this);
}

evhtp_res HttpServer::on_connection_fini(evhtp_connection_t* conn, void* arg) {
  static_cast<HttpServer*>(arg)->finish_connection(conn);
  return EVHTP_RES_OK;
}

// libevhtp frees a connection whose bytes do not parse as HTTP without answering. Tell the
// client why before the socket closes. Errors raised by our own hooks (htparse_error_user)
// have already been answered.
void HttpServer::finish_connection(evhtp_connection_t* conn) {
  slot_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  fresh_.erase(conn);
  closer_.forget(conn);
  if (conn->request != nullptr && ctx_of(conn->request) != nullptr) {
    receiving_headers_.erase(ctx_of(conn->request));
  }
  if (conn->parser == nullptr || conn->bev == nullptr) return;
  htpparse_error err = htparser_get_error(conn->parser);
  if (err == htparse_error_none) return;
  RequestCtx* ctx = conn->request != nullptr ? ctx_of(conn->request) : nullptr;
  if (ctx != nullptr && ctx->replied()) return;  // our own hook answered (413)
  common::Error error =
      common::make_error(common::Errc::bad_request, "bad_request",
                         std::string("malformed HTTP request: ") + describe_parse_error(err));
  std::string body = common::error_body(error);
  std::string head =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  // The bufferevent is freed right after this hook, and its output buffer is frozen for
  // anyone but itself, so write directly; skip it if earlier responses are still queued.
  if (evbuffer_get_length(bufferevent_get_output(conn->bev)) != 0) return;
  std::string reply = head + body;
  ssize_t sent =
      send(bufferevent_getfd(conn->bev), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (sent < 0) return;
  if (ctx != nullptr) {
    ctx->status_ = 400;  // counted when libevhtp frees the request, right after this hook
  } else {
    slot_.count_response(400, 0);
  }
  SLOG_DEBUG(kModule, "rejected a malformed request: %s", describe_parse_error(err));
}

evhtp_res HttpServer::on_headers_start(evhtp_request_t* req, void* arg) {
  static_cast<HttpServer*>(arg)->begin_request(req);
  return EVHTP_RES_OK;
}

// The request line is parsed by now: method and path are known. The ctx becomes the
// request's cbarg, so the general callback and later hooks find it.
void HttpServer::begin_request(evhtp_request_t* req) {
  fresh_.erase(evhtp_request_get_connection(req));
  auto* ctx = new RequestCtx(*this, req);
  ctx->method_ = evhtp_request_get_method(req);
  req->cbarg = ctx;
  evhtp_request_set_hook(req, evhtp_hook_on_request_fini, common::as_hook(on_request_fini), ctx);
  ++in_flight_;
  receiving_headers_.insert(ctx);
  slot_.count_method(static_cast<unsigned>(ctx->method_));
}

evhtp_res HttpServer::on_header(evhtp_request_t* req, evhtp_header_t* header, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr || ctx->replied()) return EVHTP_RES_OK;
  ctx->header_count_ += 1;
  ctx->header_bytes_ += header->klen + header->vlen + 4;
  if (ctx->header_count_ > kMaxHeaders || ctx->header_bytes_ > kMaxHeaderBytes) {
    return static_cast<HttpServer*>(arg)->reject_in_hook(
        *ctx, common::make_error(common::Errc::header_too_large, "headers_too_large",
                                 "request headers exceed 100 fields or 64 KiB"));
  }
  return EVHTP_RES_OK;
}

evhtp_res HttpServer::on_headers(evhtp_request_t* req, evhtp_headers_t*, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr) return EVHTP_RES_OK;
  return static_cast<HttpServer*>(arg)->check_headers(*ctx);
}

evhtp_res HttpServer::check_headers(RequestCtx& ctx) {
  receiving_headers_.erase(&ctx);
  if (ctx.replied()) return EVHTP_RES_PAUSE;  // refused in on_header already
  // libevhtp takes any version >= 1.1 for 1.1 (HTTP/9.9 included): check it ourselves, and
  // answer in a version the client can read.
  htparser* parser = evhtp_request_get_connection(ctx.raw())->parser;
  if (htparser_get_major(parser) != 1 || htparser_get_minor(parser) > 1) {
    htparser_set_major(parser, 1);
    htparser_set_minor(parser, 1);
    return reject_in_hook(
        ctx, common::make_error(common::Errc::http_version, "http_version_not_supported",
                                "only HTTP/1.0 and HTTP/1.1 are served"));
  }
  // Two lengths, or a length beside chunked encoding, are how requests are smuggled past a
  // proxy that reads them differently: refuse them.
  size_t lengths = 0;
  evhtp_header_t* h;
  TAILQ_FOREACH(h, ctx.raw()->headers_in, next) {
    if (strcasecmp(h->key, "Content-Length") == 0) ++lengths;
  }
  const char* length = ctx.header("Content-Length");
  if (lengths > 1 || (lengths == 1 && ctx.header("Transfer-Encoding") != nullptr)) {
    return reject_in_hook(ctx, common::make_error(common::Errc::bad_request, "ambiguous_length",
                                                  "the request has more than one body length"));
  }
  if (length == nullptr) return EVHTP_RES_OK;
  char* end = nullptr;
  errno = 0;
  unsigned long long declared = std::strtoull(length, &end, 10);
  if (errno != 0 || end == length || *end != '\0' || declared > listen_.max_body_size) {
    return reject_in_hook(ctx, too_large_error());
  }
  return EVHTP_RES_OK;
}

evhtp_res HttpServer::on_body(evhtp_request_t* req, evbuffer* buf, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr) return EVHTP_RES_OK;
  return static_cast<HttpServer*>(arg)->check_body(*ctx, evbuffer_get_length(buf));
}

// Chunked bodies carry no Content-Length: count what arrives.
evhtp_res HttpServer::check_body(RequestCtx& ctx, size_t len) {
  ctx.body_bytes_ += len;
  if (ctx.body_bytes_ > listen_.max_body_size && !ctx.replied()) {
    return reject_in_hook(ctx, too_large_error());
  }
  return EVHTP_RES_OK;
}

common::Error HttpServer::too_large_error() const {
  return common::make_error(
      common::Errc::too_large, "body_too_large",
      "request body exceeds max_body_size of " + std::to_string(listen_.max_body_size) + " bytes");
}

// Answers from inside a parser hook and closes the connection: the rest of the request is
// never parsed (see lingering_close.h).
evhtp_res HttpServer::reject_in_hook(RequestCtx& ctx, const common::Error& error) {
  evhtp_request_t* req = ctx.raw();
  req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;  // "Connection: close" on the answer
  // Refused while its headers still arrive, the request has no protocol yet and libevhtp
  // would answer in HTTP/1.0.
  if (req->proto == EVHTP_PROTO_INVALID) {
    htparser* parser = evhtp_request_get_connection(req)->parser;
    req->proto = htparser_get_minor(parser) == 0 ? EVHTP_PROTO_10 : EVHTP_PROTO_11;
  }
  in_hook_ = true;
  send_error(ctx, error);
  in_hook_ = false;
  receiving_headers_.erase(&ctx);
  closer_.close(evhtp_request_get_connection(req));
  return EVHTP_RES_PAUSE;
}

void HttpServer::on_request(evhtp_request_t* req, void*) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr) {
    // No headers section at all (an HTTP/0.9 style line): nothing to route.
    evhtp_send_reply(req, EVHTP_RES_BADREQ);
    return;
  }
  ctx->server_.dispatch(*ctx);
}

void HttpServer::dispatch(RequestCtx& ctx) {
  if (ctx.replied()) return;
  RouteMatch match = router_.match(ctx.path(), ctx.method());
  in_dispatch_ = true;
  if (match.route == nullptr && match.allowed != 0) {
    ctx.add_header("Allow", allow_header(match.allowed));
    send_error(ctx, common::make_error(common::Errc::method_not_allowed, "method_not_allowed",
                                       "this resource does not accept that method"));
  } else if (match.route == nullptr) {
    send_error(
        ctx, common::make_error(common::Errc::not_found, "not_found", "no resource at this path"));
  } else {
    ctx.params_ = std::move(match.params);
    guard("request handler", ctx, [&] { match.route->handler(ctx); });
  }
  in_dispatch_ = false;
  if (ctx.replied()) kick_pipeline(ctx);
}

void HttpServer::set_read_timeout(evhtp_connection_t* conn, bool on) {
  timeval read_timeout = common::to_timeval(listen_.client_timeout.count());
  evhtp_connection_set_timeouts(conn, on ? &read_timeout : nullptr, nullptr);
}

void HttpServer::after_reply(RequestCtx& ctx) {
  if (in_dispatch_ || in_hook_) return;
  kick_pipeline(ctx);  // an asynchronous reply
}

// libevhtp stalls on pipelined requests until a pause/resume cycle re-runs its read
// callback (reference/environment.md section 4). The cycle costs two epoll_ctl calls, so
// an asynchronous reply (a publish answered on its confirm) pays it only when more input is
// already waiting; inside dispatch() the input still holds the current request, so a
// synchronous reply always does.
void HttpServer::kick_pipeline(RequestCtx& ctx) {
  evhtp_request_t* req = ctx.raw();
  if (req == nullptr) return;
  evhtp_connection_t* conn = evhtp_request_get_connection(req);
  if (conn->bev == nullptr || evbuffer_get_length(bufferevent_get_input(conn->bev)) == 0) return;
  evhtp_request_pause(req);
  evhtp_request_resume(req);
}

evhtp_res HttpServer::on_request_fini(evhtp_request_t* req, void* arg) {
  auto* ctx = static_cast<RequestCtx*>(arg);
  ctx->server_.finish_request(*ctx);
  (void)req;
  return EVHTP_RES_OK;
}

void HttpServer::finish_request(RequestCtx& ctx) {
  if (ctx.replied()) slot_.count_response(ctx.status(), elapsed_us(ctx));
  receiving_headers_.erase(&ctx);
  --in_flight_;
  ctx.req_ = nullptr;
  ctx.release();
}

}  // namespace sluice::worker
