#pragma once
// A libevent event on a descriptor (a socket, a pipe, an eventfd) that owns its event and
// runs its callback through common::guard. Made once, then started and stopped as often as
// needed without allocating. As for Timer (timer.h): event_new failing aborts (out of
// memory); the callback may stop or destroy its own FdEvent; it is neither copied nor moved.
#include <event2/event.h>

#include "common/handles/callback.h"
#include "common/handles/event.h"

namespace sluice::common {

class FdEvent {
 public:
  // `events`: EV_READ and/or EV_WRITE, plus EV_PERSIST to stay armed after each call.
  FdEvent(event_base* base, evutil_socket_t fd, short events, const char* what, Callback callback);
  FdEvent(const FdEvent&) = delete;
  FdEvent& operator=(const FdEvent&) = delete;
  ~FdEvent() = default;

  // Watches the descriptor, with no timeout. False (errno set by the backend, e.g. epoll_ctl)
  // when it cannot be watched.
  [[nodiscard]] bool start() noexcept;
  void stop() noexcept;
  // Started, and (without EV_PERSIST) not yet called. Kept here, as in Timer.
  bool pending() const noexcept { return pending_; }

 private:
  static void on_ready(evutil_socket_t, short, void* arg);

  EventPtr ev_;
  Callback callback_;
  const char* what_;
  bool persistent_;
  bool pending_ = false;
};

}  // namespace sluice::common
