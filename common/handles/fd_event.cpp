#include "common/handles/fd_event.h"

#include "common/guard.h"

namespace sluice::common {

FdEvent::FdEvent(event_base* base, evutil_socket_t fd, short events, const char* what,
                 Callback callback)
    : ev_(event_new(base, fd, events, on_ready, this)), callback_(callback), what_(what) {
  if (!ev_) out_of_memory("event_new()");
}

// The callback and its name are copied out first: the callback may destroy this FdEvent.
void FdEvent::on_ready(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<FdEvent*>(arg);
  Callback callback = self->callback_;
  const char* what = self->what_;
  guard(what, callback);
}

bool FdEvent::start() noexcept {
  return event_add(ev_.get(), nullptr) == 0;
}

void FdEvent::stop() noexcept {
  event_del(ev_.get());
}

bool FdEvent::pending() const noexcept {
  return event_pending(ev_.get(), EV_READ | EV_WRITE, nullptr) != 0;
}

}  // namespace sluice::common
