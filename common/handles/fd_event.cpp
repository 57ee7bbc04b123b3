#include "common/handles/fd_event.h"

#include "common/guard.h"

namespace sluice::common {

FdEvent::FdEvent(event_base* base, evutil_socket_t fd, short events, const char* what,
                 Callback callback)
    : ev_(event_new(base, fd, events, on_ready, this)),
      callback_(callback),
      what_(what),
      persistent_((events & EV_PERSIST) != 0) {
  if (!ev_) out_of_memory("event_new()");
}

// The callback and its name are copied out first: the callback may destroy this FdEvent.
void FdEvent::on_ready(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<FdEvent*>(arg);
  self->pending_ = self->persistent_;
  Callback callback = self->callback_;
  const char* what = self->what_;
  guard(what, callback);
}

bool FdEvent::start() noexcept {
  if (event_add(ev_.get(), nullptr) != 0) return false;
  pending_ = true;
  return true;
}

void FdEvent::stop() noexcept {
  event_del(ev_.get());
  pending_ = false;
}

}  // namespace sluice::common
