#pragma once
// The libevhtp server of one worker, on the listening socket inherited from the supervisor.
// It owns the request lifecycle around the router: a RequestCtx per request, the body-size
// limit answered with a real 413 (libevhtp would just drop the connection), a JSON 400 for
// requests the parser rejects (libevhtp would close without a word), per-request counters
// in the worker's stats slot, and draining for a graceful stop.
#include <evhtp.h>

#include <event2/listener.h>

#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "common/config.h"
#include "common/handles/event.h"
#include "common/result.h"
#include "common/stats_segment.h"
#include "worker/lingering_close.h"
#include "worker/router.h"

namespace sluice::worker {

class RequestCtx;

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
  size_t fresh_connections() const { return fresh_.size(); }

  // client_timeout on (the default) or off for a connection whose request waits on a backend.
  void set_read_timeout(evhtp_connection_t* conn, bool on);

  // Called by RequestCtx::reply once the response is queued.
  void after_reply(RequestCtx& ctx);

 private:
  static evhtp_res on_post_accept(evhtp_connection_t* conn, void* arg);
  static evhtp_res on_connection_fini(evhtp_connection_t* conn, void* arg);
  static evhtp_res on_headers_start(evhtp_request_t* req, void* arg);
  static evhtp_res on_header(evhtp_request_t* req, evhtp_header_t* header, void* arg);
  static evhtp_res on_headers(evhtp_request_t* req, evhtp_headers_t* headers, void* arg);
  static void on_accept_error(evconnlistener* listener, void* arg);
  static evhtp_res on_body(evhtp_request_t* req, evbuffer* buf, void* arg);
  static evhtp_res on_request_fini(evhtp_request_t* req, void* arg);
  static void on_request(evhtp_request_t* req, void* arg);

  void accept_connection(evhtp_connection_t* conn);
  void finish_connection(evhtp_connection_t* conn);
  void begin_request(evhtp_request_t* req);
  evhtp_res check_headers(RequestCtx& ctx);
  evhtp_res check_body(RequestCtx& ctx, size_t len);
  evhtp_res reject_in_hook(RequestCtx& ctx, const common::Error& error);
  common::Error too_large_error() const;
  void dispatch(RequestCtx& ctx);
  void kick_pipeline(RequestCtx& ctx);
  void finish_request(RequestCtx& ctx);
  void resume_accepting();
  void sweep_slow_clients();

  event_base* base_;
  const common::ListenConfig& listen_;
  const Router& router_;
  common::WorkerSlot& slot_;
  LingeringClose closer_;
  common::EvhtpPtr htp_;
  common::EventPtr accept_pause_;
  common::EventPtr sweep_;
  std::chrono::steady_clock::time_point last_accept_error_log_;
  bool draining_ = false;
  bool in_dispatch_ = false;
  bool in_hook_ = false;
  uint64_t in_flight_ = 0;
  // Accepted, no request started yet: since when.
  std::unordered_map<evhtp_connection_t*, std::chrono::steady_clock::time_point> fresh_;
  // Requests whose head (request line and headers) is still arriving.
  std::unordered_set<RequestCtx*> receiving_headers_;
};

}  // namespace sluice::worker
