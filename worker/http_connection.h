#pragma once
// What the HTTP server keeps per connection, beside libevhtp's own state: private to the
// server, shared by its two files (http_server.cpp, the request lifecycle; http_holds.cpp,
// held requests).
#include <evhtp.h>

#include <chrono>
#include <memory>
#include <optional>

#include "common/handles/timer.h"
#include "worker/chunked_decoder.h"
#include "worker/head_scan.h"
#include "worker/http_server.h"

namespace sluice::worker {

// What sluice keeps per connection, beside libevhtp's own state.
enum class Phase {
  idle,     // between requests
  head,     // request line parsed, headers arriving
  body,     // a Content-Length body arriving (libevhtp reads it)
  chunked,  // a chunked body arriving (sluice decodes it; libevhtp is paused)
  busy,     // dispatched, not answered yet
  replied,  // answered; the response is being written
  closing,  // refused: lingering close
};

struct HttpServer::Connection {
  HttpServer* server = nullptr;
  evhtp_connection_t* conn = nullptr;
  Phase phase = Phase::idle;
  std::chrono::steady_clock::time_point
      since;                  // of the phase (idle: since the last answer or the accept)
  RequestCtx* ctx = nullptr;  // the request of this phase, when it has one
  bool served = false;        // has started a request (else "fresh" for a drain)
  HeadScan scan;
  std::unique_ptr<ChunkedDecoder> chunked;
  std::optional<common::Timer> wake;        // work that must run outside libevhtp's callbacks
  std::optional<common::Timer> hold_timer;  // the held request's deadline (RequestCtx::hold)
  bool resume_pending = false;
  bool client_eof = false;  // the client half-closed: it reads, it sends nothing more
  evbuffer_cb_entry* input_watch = nullptr;
};

inline bool paused(const evhtp_connection_t* conn) {
  return (conn->flags & EVHTP_CONN_FLAG_PAUSED) != 0;
}

}  // namespace sluice::worker
