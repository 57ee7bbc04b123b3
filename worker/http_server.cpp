#include "worker/http_server.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/guard.h"
#include "common/log.h"
#include "worker/chunked_decoder.h"
#include "worker/guard.h"
#include "worker/head_scan.h"
#include "worker/http_connection.h"
#include "worker/http_framing.h"
#include "worker/http_response.h"
#include "worker/request.h"

namespace sluice::worker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kModule = "http";
// Beyond these a request's headers get 431: libevhtp caps a line, not their number.
constexpr size_t kMaxHeaders = 100;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr long long kSweepMs = 1000;
constexpr long long kAcceptPauseMs = 200;

uint64_t elapsed_us(const RequestCtx& ctx) {
  auto d = Clock::now() - ctx.started();
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

// htparser refuses a Content-Length that is not plain digits ("+8", "8, 8", "-1") with its
// "too big" error, before the header reaches any hook: the field it was reading is the last
// one, still without a value.
bool failed_on_content_length(evhtp_connection_t* conn) {
  if (conn->request == nullptr || conn->request->headers_in == nullptr) return false;
  evhtp_header_t* last = TAILQ_LAST(conn->request->headers_in, evhtp_kvs);
  return last != nullptr && last->val == nullptr && last->key != nullptr &&
         strcasecmp(last->key, "Content-Length") == 0;
}

// A libevhtp hook's body, through the guard: an exception fails the connection
// (EVHTP_RES_ERROR) instead of unwinding into libevhtp's C frames.
template <class Fn>
evhtp_res guarded_hook(const char* what, Fn&& fn) {
  evhtp_res res = EVHTP_RES_ERROR;
  common::guard(what, [&] { res = fn(); });
  return res;
}

// Marks the connection whose answer the running code path follows up itself (libevhtp's read
// path through input_changed, or reject's closer), for the scope of one call.
class FollowedUp {
 public:
  FollowedUp(const void*& slot, const void* conn) : slot_(slot), previous_(slot) { slot_ = conn; }
  ~FollowedUp() { slot_ = previous_; }
  FollowedUp(const FollowedUp&) = delete;
  FollowedUp& operator=(const FollowedUp&) = delete;

 private:
  const void*& slot_;
  const void* previous_;
};

RequestCtx* ctx_of(evhtp_request_t* req) {
  return static_cast<RequestCtx*>(req->cbarg);
}

size_t input_length(evhtp_connection_t* conn) {
  return conn->bev != nullptr ? evbuffer_get_length(bufferevent_get_input(conn->bev)) : 0;
}

// libevhtp parses what is buffered only on a pause/resume cycle after an answer
// (reference/environment.md section 4); resume runs its resume event on this loop turn,
// which writes the answer and then reads on.
void kick(evhtp_request_t* req) {
  evhtp_request_pause(req);
  evhtp_request_resume(req);
}

}  // namespace

HttpServer::HttpServer(event_base* base, const common::ListenConfig& listen, const Router& router,
                       common::WorkerSlot& slot)
    : base_(base),
      listen_(listen),
      router_(router),
      slot_(slot),
      closer_(base),
      accept_pause_(base, "http accept pause",
                    common::Callback::bind<&HttpServer::resume_accepting>(this)),
      sweep_(base, "http sweep", common::Callback::bind<&HttpServer::sweep>(this)),
      gone_notices_(base, "http client gone",
                    common::Callback::bind<&HttpServer::run_gone_notices>(this)),
      accept_error_log_(std::chrono::seconds(10)) {}

// evhtp_free (1.2.18) leaves the listener, and the connections still open, to whoever made
// them: those of a drain cut short by shutdown_timeout are freed here, with their requests
// (each one's fini hook takes it out of conns_).
HttpServer::~HttpServer() {
  std::vector<evhtp_connection_t*> open;
  for (const auto& [conn, c] : conns_)
    open.push_back(conn);
  for (evhtp_connection_t* conn : open) {
    if (conns_.count(conn) != 0) evhtp_connection_free(conn);
  }
  if (htp_ && htp_->server != nullptr) evhtp_unbind_socket(htp_.get());
}

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
  sweep_.start_every(std::chrono::milliseconds(kSweepMs));
  return {};
}

// Stops accepting and closes this worker's copy of the listening socket: a port the new
// configuration drops is refused as soon as the supervisor has closed its copy too.
void HttpServer::drain() {
  if (draining_) return;
  draining_ = true;
  if (htp_ && htp_->server != nullptr) evhtp_unbind_socket(htp_.get());
}

size_t HttpServer::fresh_connections() const {
  size_t fresh = 0;
  for (const auto& [conn, c] : conns_)
    fresh += c->phase == Phase::idle && !c->served ? 1 : 0;
  return fresh;
}

HttpServer::Connection* HttpServer::find(evhtp_connection_t* conn) const {
  auto it = conns_.find(conn);
  return it != conns_.end() ? it->second.get() : nullptr;
}

// Out of descriptors (EMFILE): libevent would retry accept() in a tight loop. Stop
// accepting for a moment instead; connections wait in the kernel's backlog.
void HttpServer::on_accept_error(evconnlistener* listener, void* arg) {
  int err = EVUTIL_SOCKET_ERROR();
  auto* self = static_cast<HttpServer*>(static_cast<evhtp_t*>(arg)->arg);
  common::guard("http accept error", [&] { self->accept_failed(listener, err); });
}

void HttpServer::accept_failed(evconnlistener* listener, int err) {
  evconnlistener_disable(listener);
  if (accept_error_log_.admit()) {
    SLOG_SYSERR(kModule, err, "accept() failed; pausing accepts for %lld ms%s", kAcceptPauseMs,
                accept_error_log_.take_note().c_str());
  }
  accept_pause_.start(std::chrono::milliseconds(kAcceptPauseMs));
}

void HttpServer::resume_accepting() {
  if (!draining_ && htp_ && htp_->server != nullptr) evconnlistener_enable(htp_->server);
}

// The read timeout restarts with every byte, so a client dripping its request would hold a
// connection for ever: the next request line must come within client_timeout of the last
// answer, the whole request within request_timeout of its line (408).
void HttpServer::sweep() {
  auto now = Clock::now();
  std::vector<evhtp_connection_t*> idle;
  std::vector<evhtp_connection_t*> late;
  for (const auto& [conn, c] : conns_) {
    if (c->phase == Phase::idle && now - c->since >= listen_.client_timeout) idle.push_back(conn);
    bool arriving =
        c->phase == Phase::head || c->phase == Phase::body || c->phase == Phase::chunked;
    if (arriving && now - c->since >= listen_.request_timeout) late.push_back(conn);
  }
  for (evhtp_connection_t* conn : idle) {
    SLOG_DEBUG(kModule, "closing a connection that has not sent a request line in time");
    evhtp_connection_free(conn);
  }
  for (evhtp_connection_t* conn : late) {
    Connection* c = find(conn);
    if (c == nullptr || c->ctx == nullptr) continue;
    if (!paused(conn)) evhtp_connection_pause(conn);
    reject(*c, common::make_error(common::Errc::request_timeout, "request_timeout",
                                  "the request did not arrive within request_timeout"));
  }
}

evhtp_res HttpServer::on_post_accept(evhtp_connection_t* conn, void* arg) {
  return guarded_hook("http accept", [&] {
    static_cast<HttpServer*>(arg)->accept_connection(conn);
    return EVHTP_RES_OK;
  });
}

void HttpServer::accept_connection(evhtp_connection_t* conn) {
  slot_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  slot_.connections_open.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_unique<Connection>();
  c->server = this;
  c->conn = conn;
  c->since = Clock::now();
  c->scan.start();
  evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
                            common::as_hook(on_connection_fini), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_headers_start, common::as_hook(on_headers_start),
                            this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_header, common::as_hook(on_header), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_headers, common::as_hook(on_headers), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_read, common::as_hook(on_body), this);
  evhtp_connection_set_hook(conn, evhtp_hook_on_event, common::as_hook(on_event), this);
  // Reads go through on_readable, which decides whether libevhtp's parser may run now.
  bufferevent_data_cb write_cb = nullptr;
  bufferevent_event_cb event_cb = nullptr;
  void* cb_arg = nullptr;
  bufferevent_getcb(conn->bev, &evhtp_read_, &write_cb, &event_cb, &cb_arg);
  bufferevent_setcb(conn->bev, on_readable, write_cb, event_cb, cb_arg);
  c->input_watch = evbuffer_add_cb(bufferevent_get_input(conn->bev), on_input_changed, c.get());
  conns_.emplace(conn, std::move(c));
}

evhtp_res HttpServer::on_connection_fini(evhtp_connection_t* conn, void* arg) {
  return guarded_hook("http connection end", [&] {
    static_cast<HttpServer*>(arg)->finish_connection(conn);
    return EVHTP_RES_OK;
  });
}

void HttpServer::finish_connection(evhtp_connection_t* conn) {
  slot_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  closer_.forget(conn);
  auto it = conns_.find(conn);
  // A chunked body that sluice was reading when the client left is not a parse error:
  // the parser stopped at its head on purpose (EVHTP_RES_PAUSE). It needs no answer.
  bool body_cut_short = it != conns_.end() && it->second->phase == Phase::chunked;
  if (it != conns_.end()) {
    if (conn->bev != nullptr && it->second->input_watch != nullptr) {
      evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), it->second->input_watch);
    }
    conns_.erase(it);  // the request's own fini comes after this one (evhtp_connection_free)
  }
  if (!body_cut_short) answer_unparsable(conn);
}

// libevhtp frees a connection whose bytes do not parse as HTTP without answering. Tell the
// client why before the socket closes. Errors raised by our own hooks (htparse_error_user)
// have already been answered.
void HttpServer::answer_unparsable(evhtp_connection_t* conn) {
  if (conn->parser == nullptr || conn->bev == nullptr) return;
  htpparse_error err = htparser_get_error(conn->parser);
  if (err == htparse_error_none) return;
  RequestCtx* ctx = conn->request != nullptr ? ctx_of(conn->request) : nullptr;
  if (ctx != nullptr && ctx->replied()) return;  // our own hook answered
  common::Error error =
      failed_on_content_length(conn)
          ? common::make_error(common::Errc::bad_request, "invalid_content_length",
                               "Content-Length must be a decimal number of bytes")
          : common::make_error(common::Errc::bad_request, "bad_request",
                               std::string("malformed HTTP request: ") + describe_parse_error(err));
  // The bufferevent is freed right after this hook, and its output buffer is frozen for
  // anyone but itself, so write directly; skip it if earlier responses are still queued.
  if (evbuffer_get_length(bufferevent_get_output(conn->bev)) != 0) return;
  std::string reply;
  format_response(reply, ResponseHead{400, false, false, false}, nullptr, "application/json",
                  common::error_body(error));
  ssize_t sent =
      send(bufferevent_getfd(conn->bev), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (sent < 0) return;
  if (ctx != nullptr) {
    ctx->status_ = 400;  // counted when libevhtp frees the request, right after this hook
  } else {
    slot_.count_response(400, 0);
  }
  SLOG_DEBUG(kModule, "rejected a malformed request: %s", error.message.c_str());
}

// Every read of the socket lands here first. While a request is being served (or its
// chunked body is decoded by sluice) libevhtp's parser must not see the bytes behind it:
// it would take them for a second request on a connection that has one, and fail it.
void HttpServer::on_readable(bufferevent* bev, void* arg) {
  auto* conn = static_cast<evhtp_connection_t*>(arg);
  auto* self = static_cast<HttpServer*>(conn->htp->arg);
  common::guard("http read", [&] { self->readable(bev, conn); });
}

void HttpServer::readable(bufferevent* bev, evhtp_connection_t* conn) {
  Connection* c = find(conn);
  evbuffer* input = bufferevent_get_input(bev);
  if (c != nullptr && c->phase == Phase::chunked) return feed_chunked(*c);
  if (c != nullptr && c->phase == Phase::idle) skip_empty_lines(input);
  bool held = c != nullptr && (c->phase == Phase::busy || c->phase == Phase::closing ||
                               paused(conn) || waits_for_request_line(*c));
  if (held) {
    // Flow control: past this much, the rest waits in the kernel. Whatever lets the parser
    // run again (libevhtp's resume, sluice's) enables reading again. (A read watermark would
    // do it too, but costs an event_add on every drain of every request.)
    if (evbuffer_get_length(input) > kMaxBufferedInput) bufferevent_disable(bev, EV_READ);
    return;
  }
  if (evbuffer_get_length(input) == 0) return;
  evhtp_read_(bev, conn);
}

// RFC 9112 section 2.2: empty lines before a request line are ignored. htparser stops after
// each one with the rest unparsed, and libevhtp, not paused then, stalls (printing "ODDITY").
void HttpServer::skip_empty_lines(evbuffer* input) {
  for (;;) {
    evbuffer_iovec vec;
    if (evbuffer_peek(input, -1, nullptr, &vec, 1) < 1 || vec.iov_len == 0) return;
    const char* bytes = static_cast<const char*>(vec.iov_base);
    size_t n = 0;
    while (n < vec.iov_len && (bytes[n] == '\r' || bytes[n] == '\n'))
      ++n;
    if (n == 0) return;
    evbuffer_drain(input, n);
  }
}

// Between requests, the parser runs only on a whole request line (head_scan.h).
bool HttpServer::waits_for_request_line(const Connection& c) const {
  bool between = c.phase == Phase::idle || c.phase == Phase::replied;
  return between && c.scan.request_line_pending();
}

// A paused connection whose request has been answered goes on. libevhtp's resume parses
// what is buffered right away, which must not be a request line cut short: then the pause
// flag is lifted by hand and reading resumes, so the parser runs once the line is whole.
void HttpServer::resume(Connection& c) {
  bool leaving = (c.conn->flags & EVHTP_CONN_FLAG_FREE_CONN) != 0;
  if (leaving || !waits_for_request_line(c)) {
    evhtp_connection_resume(c.conn);
    return;
  }
  c.conn->flags &= ~EVHTP_CONN_FLAG_PAUSED;
  bufferevent_enable(c.conn->bev, EV_READ);
}

void HttpServer::on_input_changed(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  common::guard("http input", [&] { c->server->input_changed(*c, *info); });
}

// Called synchronously on every change of the connection's input: bytes read (scanned for
// the head being received) and bytes consumed. libevhtp's read path consumes once per
// parser run, and a run stops at the end of each request; if bytes remain behind a request
// that has been dispatched, they are the next request and this is the one moment, inside
// libevhtp's read callback, to pause the connection before it tries to go on (it would print
// "ODDITY, resuming when not paused" and stall, or fail the next request).
void HttpServer::input_changed(Connection& c, const evbuffer_cb_info& info) {
  evbuffer* input = bufferevent_get_input(c.conn->bev);
  if (info.n_added > 0) c.scan.feed(input);
  if (info.n_deleted == 0) return;
  c.scan.consumed(info.n_deleted);
  if (c.phase == Phase::closing) {
    // Answered the connection's last request while more was sent: nothing of it is read,
    // and the connection lingers so the answer is not lost to a reset.
    bool lingering = closer_.closing(c.conn);
    if (!lingering && evbuffer_get_length(input) != 0 && c.conn->request != nullptr) {
      evhtp_request_pause(c.conn->request);
      closer_.close(c.conn);
    }
    return;
  }
  if (c.phase != Phase::busy && c.phase != Phase::replied) return;
  c.scan.start();  // what follows a request is the head of the next one
  c.scan.feed(input);
  if (evbuffer_get_length(input) == 0 || paused(c.conn) || c.conn->request == nullptr) return;
  if (c.phase == Phase::busy) {
    evhtp_request_pause(c.conn->request);  // resumed once answered (after_reply)
    listen_while_paused(c);
  } else if (!waits_for_request_line(c)) {
    kick(c.conn->request);
  } else {
    // Answered, and the next request line is still arriving: paused, so that libevhtp
    // does not try to go on, and resumed (by hand) once its read callback has returned.
    evhtp_request_pause(c.conn->request);
    c.resume_pending = true;
    wake(c);
  }
}

evhtp_res HttpServer::on_headers_start(evhtp_request_t* req, void* arg) {
  return guarded_hook("http request start", [&] {
    static_cast<HttpServer*>(arg)->begin_request(req);
    return EVHTP_RES_OK;
  });
}

// The request line is parsed by now: method and path are known. The ctx becomes the
// request's cbarg, so the general callback and later hooks find it.
void HttpServer::begin_request(evhtp_request_t* req) {
  auto* ctx = new RequestCtx(*this, req);
  ctx->method_ = evhtp_request_get_method(req);
  req->cbarg = ctx;
  evhtp_request_set_hook(req, evhtp_hook_on_request_fini, common::as_hook(on_request_fini), ctx);
  ++in_flight_;
  slot_.count_method(static_cast<unsigned>(ctx->method_));
  if (Connection* c = find(evhtp_request_get_connection(req))) {
    c->phase = Phase::head;
    c->since = ctx->started();
    c->ctx = ctx;
    c->served = true;
  }
}

evhtp_res HttpServer::on_header(evhtp_request_t* req, evhtp_header_t* header, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr || ctx->replied()) return EVHTP_RES_OK;
  return guarded_hook("http header",
                      [&] { return static_cast<HttpServer*>(arg)->check_header(*ctx, *header); });
}

evhtp_res HttpServer::check_header(RequestCtx& ctx, const evhtp_header_t& header) {
  ctx.header_count_ += 1;
  ctx.header_bytes_ += header.klen + header.vlen + 4;
  if (ctx.header_count_ > kMaxHeaders || ctx.header_bytes_ > kMaxHeaderBytes) {
    return reject_in_hook(ctx,
                          common::make_error(common::Errc::header_too_large, "headers_too_large",
                                             "request headers exceed 100 fields or 64 KiB"));
  }
  auto field =
      check_header_field(std::string_view(header.key, header.klen),
                         header.val != nullptr ? std::string_view(header.val, header.vlen) : "");
  if (!field) return reject_in_hook(ctx, field.error());
  return EVHTP_RES_OK;
}

evhtp_res HttpServer::on_headers(evhtp_request_t* req, evhtp_headers_t*, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  auto* self = static_cast<HttpServer*>(arg);
  Connection* c = self->find(evhtp_request_get_connection(req));
  if (ctx == nullptr || c == nullptr) return EVHTP_RES_OK;
  return guarded_hook("http headers", [&] { return self->check_headers(*c, *ctx); });
}

evhtp_res HttpServer::check_headers(Connection& c, RequestCtx& ctx) {
  if (ctx.replied()) return EVHTP_RES_PAUSE;  // refused in on_header already
  // libevhtp takes any version >= 1.1 for 1.1 (HTTP/9.9 included): check it ourselves, and
  // answer in a version the client can read.
  htparser* parser = c.conn->parser;
  if (htparser_get_major(parser) != 1 || htparser_get_minor(parser) > 1) {
    htparser_set_major(parser, 1);
    htparser_set_minor(parser, 1);
    ctx.raw()->proto = EVHTP_PROTO_11;
    return reject_in_hook(
        ctx, common::make_error(common::Errc::http_version, "http_version_not_supported",
                                "only HTTP/1.0 and HTTP/1.1 are served"));
  }
  if (c.scan.nul()) {
    return reject_in_hook(ctx, common::make_error(common::Errc::bad_request, "invalid_header",
                                                  "the request head holds a NUL byte"));
  }
  auto framing = check_framing(ctx.raw()->headers_in, htparser_get_minor(parser) == 1);
  if (!framing) return reject_in_hook(ctx, framing.error());
  if (framing->keep_alive) {
    ctx.raw()->flags |= EVHTP_REQ_FLAG_KEEPALIVE;
  } else {
    ctx.raw()->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
  }
  if (framing->length > listen_.max_body_size) return reject_in_hook(ctx, too_large_error());
  if (framing->kind != BodyFraming::Kind::none) {
    // A body is coming: refuse now what the head alone refuses, before reading it.
    if (auto checked = route_and_precheck(ctx); !checked) {
      return reject_in_hook(ctx, checked.error());
    }
  }
  if (framing->kind == BodyFraming::Kind::length) c.phase = Phase::body;
  if (framing->kind != BodyFraming::Kind::chunked) return EVHTP_RES_OK;
  // libevhtp pauses the connection on this answer, after consuming the head; the body is
  // decoded from a deferred event, once its read callback has returned.
  c.phase = Phase::chunked;
  c.chunked = std::make_unique<ChunkedDecoder>(listen_.max_body_size);
  if (framing->expect_continue) {
    bufferevent_write(c.conn->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  wake(c);
  return EVHTP_RES_PAUSE;
}

void HttpServer::wake(Connection& c) {
  if (!c.wake) c.wake.emplace(base_, "http wake", common::Callback::bind<&HttpServer::on_wake>(&c));
  c.wake->activate();
}

// The route is looked up once, when the head is complete; its precheck runs then for a
// request with a body, at dispatch for one without.
common::Result<void> HttpServer::route_and_precheck(RequestCtx& ctx) {
  if (ctx.prechecked_) return {};
  ctx.prechecked_ = true;
  RouteMatch match = router_.match(ctx.path(), ctx.method());
  if (match.route == nullptr && match.allowed != 0) {
    ctx.add_header("Allow", allow_header(match.allowed));
    return common::make_error(common::Errc::method_not_allowed, "method_not_allowed",
                              "this resource does not accept that method");
  }
  if (match.route == nullptr) {
    return common::make_error(common::Errc::not_found, "not_found", "no resource at this path");
  }
  ctx.route_ = match.route;
  ctx.params_ = std::move(match.params);
  if (match.route->precheck) return match.route->precheck(ctx);
  return {};
}

void HttpServer::on_wake(Connection* c) {
  HttpServer* self = c->server;
  if (c->client_eof) {
    if (c->phase != Phase::busy) self->close_after_answer(*c);  // else once answered
    return;
  }
  if (paused(c->conn) && (c->conn->flags & EVHTP_CONN_FLAG_FREE_CONN) != 0) {
    // The client left while libevhtp was paused. Freeing the connection frees `c` and this
    // timer, which its callback may do (common::Timer).
    evhtp_connection_free(c->conn);
    return;
  }
  if (c->phase == Phase::chunked) {
    self->feed_chunked(*c);
  } else if (c->resume_pending) {
    c->resume_pending = false;
    if (paused(c->conn)) self->resume(*c);
  }
}

// libevhtp frees a connection on EOF, unless it is paused (then it only marks it for freeing
// on resume). Two cases want otherwise:
//   - EOF while a request is served or its answer written is a half-close (`shutdown(fd,
//     SHUT_WR)`, `nc -N`): the client still reads, and its message may already be published.
//     Paused here, the connection is answered, then closed by sluice (close_after_answer).
//   - a connection whose chunked body sluice reads is paused and is not going to be resumed:
//     it is freed from the wake event.
void HttpServer::on_event(evhtp_connection_t* conn, short events, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  common::guard("http connection event", [&] { self->connection_event(conn, events); });
}

void HttpServer::connection_event(evhtp_connection_t* conn, short events) {
  Connection* c = find(conn);
  if (c == nullptr) return;
  if (client_left(*c, events)) {
    // libevhtp frees the connection right after this hook, and the request with it (its
    // module is told through on_gone); a paused one only gets marked, so free it from the
    // wake event.
    if (paused(conn)) wake(*c);
    return;
  }
  bool eof = (events & BEV_EVENT_EOF) != 0 && (events & BEV_EVENT_ERROR) == 0;
  bool answering = c->phase == Phase::busy || c->phase == Phase::replied ||
                   (c->phase == Phase::closing && !closer_.closing(conn));
  if (eof && answering) {
    c->client_eof = true;
    if (!paused(conn)) evhtp_connection_pause(conn);
    wake(*c);  // libevhtp marks it for freeing right after this
    return;
  }
  if (c->phase != Phase::chunked) return;
  if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) == 0) return;
  wake(*c);
}

// The last answer on a connection is written, then the connection is closed by the
// lingering closer (which waits for the answer to leave before it frees anything).
void HttpServer::close_after_answer(Connection& c) {
  if (closer_.closing(c.conn)) return;
  if (!paused(c.conn)) evhtp_connection_pause(c.conn);
  c.conn->flags &= ~EVHTP_CONN_FLAG_FREE_CONN;  // freed by the closer, not on resume
  c.phase = Phase::closing;
  closer_.close(c.conn);
}

void HttpServer::feed_chunked(Connection& c) {
  evhtp_request_t* req = c.conn->request;
  evbuffer* input = bufferevent_get_input(c.conn->bev);
  ChunkedDecoder::Status status = c.chunked->feed(input, req->buffer_in);
  if (status == ChunkedDecoder::Status::more) {
    bufferevent_enable(c.conn->bev, EV_READ);  // libevhtp, paused, does not read for us
    return;
  }
  bufferevent_disable(c.conn->bev, EV_READ);
  if (status == ChunkedDecoder::Status::failed) return reject(c, c.chunked->error());
  c.chunked.reset();
  // The parser stopped at the end of the head; what follows the body is a new request.
  htparser_init(c.conn->parser, htp_type_request);
  htparser_set_userdata(c.conn->parser, c.conn);
  c.scan.start();
  c.scan.feed(input);
  dispatch(c, *ctx_of(req));
}

evhtp_res HttpServer::on_body(evhtp_request_t* req, evbuffer* buf, void* arg) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr) return EVHTP_RES_OK;
  return guarded_hook("http body",
                      [&] { return static_cast<HttpServer*>(arg)->check_body(*ctx, buf); });
}

// The bytes are copied into the request's buffer, which grows by doubling, and `buf` (the
// connection's scratch buffer) is emptied, so libevhtp does not move its chain over: a chain
// of at least 1 KiB per read, however few bytes it held.
evhtp_res HttpServer::check_body(RequestCtx& ctx, evbuffer* buf) {
  size_t len = evbuffer_get_length(buf);
  ctx.body_bytes_ += len;
  if (ctx.body_bytes_ > listen_.max_body_size && !ctx.replied()) {
    return reject_in_hook(ctx, too_large_error());
  }
  evbuffer_add(ctx.raw()->buffer_in, evbuffer_pullup(buf, -1), len);
  evbuffer_drain(buf, len);
  return EVHTP_RES_OK;
}

common::Error HttpServer::too_large_error() const {
  return common::make_error(
      common::Errc::too_large, "body_too_large",
      "request body exceeds max_body_size of " + std::to_string(listen_.max_body_size) + " bytes");
}

// Answers and closes the connection, which must be paused (libevhtp reads nothing more); the
// rest of the request is never parsed (see lingering_close.h).
void HttpServer::reject(Connection& c, const common::Error& error) {
  evhtp_request_t* req = c.conn->request;
  req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;  // "Connection: close" on the answer
  // Refused while its headers still arrive, the request has no protocol yet.
  if (req->proto == EVHTP_PROTO_INVALID) {
    req->proto = htparser_get_minor(c.conn->parser) == 0 ? EVHTP_PROTO_10 : EVHTP_PROTO_11;
  }
  {
    FollowedUp by_caller(followed_up_, &c);
    send_error(*ctx_of(req), error);
  }
  c.phase = Phase::closing;
  c.chunked.reset();
  bufferevent_disable(c.conn->bev, EV_READ);  // the closer reads and drops the rest itself
  closer_.close(c.conn);
}

// From inside a parser hook: libevhtp pauses the connection on EVHTP_RES_PAUSE.
evhtp_res HttpServer::reject_in_hook(RequestCtx& ctx, const common::Error& error) {
  if (Connection* c = find(evhtp_request_get_connection(ctx.raw()))) reject(*c, error);
  return EVHTP_RES_PAUSE;
}

void HttpServer::on_request(evhtp_request_t* req, void*) {
  RequestCtx* ctx = ctx_of(req);
  if (ctx == nullptr) {
    // No headers section at all (an HTTP/0.9 style line): nothing to route.
    evhtp_send_reply(req, EVHTP_RES_BADREQ);
    return;
  }
  HttpServer& self = ctx->server_;
  Connection* c = self.find(evhtp_request_get_connection(req));
  if (c == nullptr) return;
  FollowedUp by_input_changed(self.followed_up_, c);
  guard("request", *ctx, [&] { self.dispatch(*c, *ctx); });
}

void HttpServer::dispatch(Connection& c, RequestCtx& ctx) {
  if (ctx.replied()) return;
  c.phase = Phase::busy;
  if (auto checked = route_and_precheck(ctx); !checked) return send_error(ctx, checked.error());
  guard("request handler", ctx, [&] { ctx.route_->handler(ctx); });
}

void HttpServer::send_response(RequestCtx& ctx, int status, std::string_view content_type,
                               std::string_view body) {
  evhtp_request_t* req = ctx.raw();
  evhtp_connection_t* conn = evhtp_request_get_connection(req);
  ResponseHead head;
  head.status = status;
  head.http10 = req->proto == EVHTP_PROTO_10;
  head.keep_alive = (req->flags & EVHTP_REQ_FLAG_KEEPALIVE) != 0;
  head.head_only = ctx.method() == htp_method_HEAD;
  thread_local std::string out;
  out.clear();
  format_response(out, head, req->headers_out, content_type, body);
  bufferevent_write(conn->bev, out.data(), out.size());
  evhtp_send_reply_end(req);  // marks it finished: libevhtp frees it once written
  if (Connection* c = find(conn)) after_reply(*c);
}

// An answer given inside libevhtp's read path is followed up by input_changed(); one given
// later (a backend callback, a chunked body) resumes a paused connection, or makes libevhtp
// parse what arrived while the request was served.
void HttpServer::after_reply(Connection& c) {
  if (c.phase == Phase::closing) return;
  // The last request of a connection (Connection: close, HTTP/1.0, a drain, a half-close):
  // whatever the client sent after it is not read (RFC 9112 section 9.6).
  bool last = (c.conn->request->flags & EVHTP_REQ_FLAG_KEEPALIVE) == 0 || c.client_eof;
  c.phase = last ? Phase::closing : Phase::replied;
  // Only the connection whose read path is running is followed up by it: an answer given
  // from there to another connection's held request goes on here.
  if (followed_up_ == &c) return;
  if (last) {
    // Nothing more buffered and no pause: libevhtp closes it once the answer is written.
    if (c.client_eof || paused(c.conn) || input_length(c.conn) != 0) close_after_answer(c);
    return;
  }
  if (paused(c.conn)) {
    resume(c);
  } else if (input_length(c.conn) != 0 && !waits_for_request_line(c)) {
    kick(c.conn->request);
  }
}

void HttpServer::set_read_timeout(evhtp_connection_t* conn, bool on) {
  timeval read_timeout = common::to_timeval(listen_.client_timeout.count());
  evhtp_connection_set_timeouts(conn, on ? &read_timeout : nullptr, nullptr);
}

evhtp_res HttpServer::on_request_fini(evhtp_request_t*, void* arg) {
  auto* ctx = static_cast<RequestCtx*>(arg);
  return guarded_hook("http request end", [&] {
    ctx->server_.finish_request(*ctx);
    return EVHTP_RES_OK;
  });
}

void HttpServer::finish_request(RequestCtx& ctx) {
  if (ctx.replied()) slot_.count_response(ctx.status(), elapsed_us(ctx));
  // On a connection being freed its own fini came first, and find() says no.
  if (Connection* c = find(evhtp_request_get_connection(ctx.raw()))) {
    if (c->ctx == &ctx) {
      if (c->hold_timer) c->hold_timer->stop();
      c->ctx = nullptr;
      c->phase = Phase::idle;
      c->since = Clock::now();
    }
  }
  --in_flight_;
  ctx.req_ = nullptr;
  ctx.held_ = false;
  // The timeout handler may hold a reference to the ctx itself; with the request gone it
  // can never run.
  ctx.on_timeout_ = nullptr;
  if (!ctx.replied() && ctx.on_gone_) notify_gone(ctx);
  ctx.release();
}

}  // namespace sluice::worker
