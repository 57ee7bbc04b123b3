#pragma once
// Closing a connection after an error answer sent from a parser hook (413, 431, 505, 400).
// libevhtp would either keep parsing what follows as a new request (the rest of a refused
// body smuggled in as a request) or close at once, and a close with unread input makes the
// kernel send a reset that can destroy the answer before the client reads it. So, as nginx's
// lingering_close does: keep the connection paused (libevhtp reads nothing more), wait until
// the answer is written, shut down the write side, read and discard whatever the client
// still sends for a short while, then free the connection.
#include <evhtp.h>

#include <chrono>
#include <memory>
#include <unordered_map>

#include "common/handles/timer.h"

namespace sluice::worker {

class LingeringClose {
 public:
  explicit LingeringClose(event_base* base) : base_(base) {}
  LingeringClose(const LingeringClose&) = delete;
  LingeringClose& operator=(const LingeringClose&) = delete;

  // `conn` must be paused (its hook returned EVHTP_RES_PAUSE) with the answer queued.
  void close(evhtp_connection_t* conn);
  // From on_connection_fini: the connection is being freed by someone else.
  void forget(evhtp_connection_t* conn) { closing_.erase(conn); }
  bool closing(evhtp_connection_t* conn) const { return closing_.count(conn) != 0; }

  static constexpr std::chrono::milliseconds kLinger{2000};
  static constexpr std::chrono::milliseconds kPoll{20};

 private:
  struct Closing {
    Closing(LingeringClose* owner, evhtp_connection_t* conn)
        : owner(owner),
          conn(conn),
          timer(owner->base_, "lingering close",
                common::Callback::bind<&LingeringClose::poll>(this)),
          deadline(std::chrono::steady_clock::now() + kLinger) {}
    LingeringClose* owner;
    evhtp_connection_t* conn;
    common::Timer timer;  // every kPoll until done
    std::chrono::steady_clock::time_point deadline;
    bool write_shut = false;
  };
  static void poll(Closing* c);
  // True when the connection can be freed now.
  static bool done(Closing& c);

  event_base* base_;
  std::unordered_map<evhtp_connection_t*, std::unique_ptr<Closing>> closing_;
};

}  // namespace sluice::worker
