#pragma once
// The libevhtp server of one worker, on the listening socket inherited from the supervisor.
// It owns the request lifecycle around the router and mends what libevhtp 1.2.18 gets wrong
// (reference/environment.md section 4, and the hardening issue's probe), through its hooks
// and the public libevent API of the connection's bufferevent:
//   - framing: RFC 9112 checks on every head (http_framing.h), chunked bodies decoded by
//     sluice (chunked_decoder.h), a raw scan of each head's bytes for NUL;
//   - pipelining: one request at a time per connection; the parser is never fed the next
//     request while the current one is being served (it would refuse it as malformed), and
//     bytes already read wait for the answer;
//   - memory: body bytes are copied into the request's buffer (libevhtp moves its 1 KiB
//     scratch chain per read, so a body sent a byte at a time cost 1,000 times its size),
//     and a connection buffers at most kMaxBufferedInput unparsed bytes;
//   - time: the whole request must arrive within request_timeout (408), a connection sends
//     its next request line within client_timeout;
//   - answers: a route's precheck refuses a request from its head alone, before the body;
//     every response head is written by http_response.h; a JSON 400 for bytes that do not
//     parse; per-request counters in the worker's stats slot; draining for a graceful stop;
//   - held requests (http_holds.cpp): deadlines, client-gone notices, a drain's early answers.
// Its per-connection state is in http_connection.h.
#include <evhtp.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/handles/event.h"
#include "common/handles/timer.h"
#include "common/log_throttle.h"
#include "common/result.h"
#include "common/stats_segment.h"
#include "worker/lingering_close.h"
#include "worker/request.h"
#include "worker/router.h"

namespace sluice::worker {

class HttpServer {
 public:
  HttpServer(event_base* base, const common::ListenConfig& listen, const Router& router,
             common::WorkerSlot& slot);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // evhtp_accept_socket on `fd` (made non-blocking first: libevent's listener does not).
  common::Result<void> start(int fd);
  // Stops accepting; requests in flight carry on and answer with Connection: close.
  void drain();
  bool draining() const { return draining_; }
  // Requests whose headers have started and whose response has not been fully written yet
  // (libevhtp frees a request once its response is flushed).
  uint64_t in_flight() const { return in_flight_; }
  // Connections accepted that have not sent a request yet. A drain waits a little for them:
  // their request is usually already on the wire.
  size_t fresh_connections() const;

  // client_timeout on (the default) or off for a connection whose request waits on a backend.
  void set_read_timeout(evhtp_connection_t* conn, bool on);
  // RequestCtx::hold and reply: the held request's deadline, armed and ended.
  void arm_hold(RequestCtx& ctx, std::chrono::milliseconds timeout);
  void end_hold(RequestCtx& ctx);
  // RequestCtx::on_gone: a held request whose client's FIN now means gone listens for it.
  void listen_while_paused(RequestCtx& ctx);
  // A graceful stop: every held request gets its timeout answer now, and any held later at
  // once.
  void expire_holds();
  size_t held() const;

  // RequestCtx::reply: writes the response head and body, then lets the connection go on.
  void send_response(RequestCtx& ctx, int status, std::string_view content_type,
                     std::string_view body);

  // Unparsed bytes a connection holds while its request is served; beyond this it stops
  // reading until the answer (TCP flow control does the rest).
  static constexpr size_t kMaxBufferedInput = 64 * 1024;

 private:
  struct Connection;

  static evhtp_res on_post_accept(evhtp_connection_t* conn, void* arg);
  static evhtp_res on_connection_fini(evhtp_connection_t* conn, void* arg);
  static evhtp_res on_headers_start(evhtp_request_t* req, void* arg);
  static evhtp_res on_header(evhtp_request_t* req, evhtp_header_t* header, void* arg);
  static evhtp_res on_headers(evhtp_request_t* req, evhtp_headers_t* headers, void* arg);
  static evhtp_res on_body(evhtp_request_t* req, evbuffer* buf, void* arg);
  static evhtp_res on_request_fini(evhtp_request_t* req, void* arg);
  static void on_event(evhtp_connection_t* conn, short events, void* arg);
  static void on_request(evhtp_request_t* req, void* arg);
  static void on_readable(bufferevent* bev, void* arg);
  static void on_input_changed(evbuffer* buf, const evbuffer_cb_info* info, void* arg);
  static void on_wake(Connection* c);
  static void on_hold_timeout(Connection* c);
  static void on_accept_error(evconnlistener* listener, void* arg);

  void accept_connection(evhtp_connection_t* conn);
  void accept_failed(evconnlistener* listener, int err);
  void readable(bufferevent* bev, evhtp_connection_t* conn);
  void connection_event(evhtp_connection_t* conn, short events);
  void finish_connection(evhtp_connection_t* conn);
  void answer_unparsable(evhtp_connection_t* conn);
  void begin_request(evhtp_request_t* req);
  evhtp_res check_header(RequestCtx& ctx, const evhtp_header_t& header);
  evhtp_res check_headers(Connection& c, RequestCtx& ctx);
  common::Result<void> route_and_precheck(RequestCtx& ctx);
  evhtp_res check_body(RequestCtx& ctx, evbuffer* buf);
  void input_changed(Connection& c, const evbuffer_cb_info& info);
  void feed_chunked(Connection& c);
  void reject(Connection& c, const common::Error& error);
  evhtp_res reject_in_hook(RequestCtx& ctx, const common::Error& error);
  common::Error too_large_error() const;
  void dispatch(Connection& c, RequestCtx& ctx);
  void after_reply(Connection& c);
  bool waits_for_request_line(const Connection& c) const;
  void resume(Connection& c);
  void wake(Connection& c);
  void close_after_answer(Connection& c);
  static void skip_empty_lines(evbuffer* input);
  void finish_request(RequestCtx& ctx);
  void hold_expired(RequestCtx& ctx);
  void listen_while_paused(Connection& c);
  bool client_left(const Connection& c, short events) const;
  void notify_gone(RequestCtx& ctx);
  void run_gone_notices();
  void resume_accepting();
  void sweep();
  Connection* find(evhtp_connection_t* conn) const;

  event_base* base_;
  const common::ListenConfig& listen_;
  const Router& router_;
  common::WorkerSlot& slot_;
  LingeringClose closer_;
  common::EvhtpPtr htp_;
  common::Timer accept_pause_;
  common::Timer sweep_;
  common::Timer gone_notices_;
  std::vector<CtxRef> gone_;  // clients gone before their answer, told on the next turn
  common::LogThrottle accept_error_log_;
  bool draining_ = false;
  bool holds_expired_ = false;  // a drain has answered the held requests
  // The connection whose answer the running code follows up itself (libevhtp's request
  // callback, a refusal from a hook), or null.
  const void* followed_up_ = nullptr;
  uint64_t in_flight_ = 0;
  std::unordered_map<evhtp_connection_t*, std::unique_ptr<Connection>> conns_;
  // libevhtp's own read callback, which sluice's on_readable calls when the parser may run.
  bufferevent_data_cb evhtp_read_ = nullptr;
};

}  // namespace sluice::worker
