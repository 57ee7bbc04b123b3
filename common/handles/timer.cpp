#include "common/handles/timer.h"

#include "common/guard.h"

namespace sluice::common {

Timer::Timer(event_base* base, const char* what, Callback callback)
    : ev_(evtimer_new(base, on_fire, this)), callback_(callback), what_(what) {
  if (!ev_) out_of_memory("evtimer_new()");
}

// The callback and its name are copied out first: the callback may destroy this Timer. A
// one-shot event is no longer pending in libevent by now; a repeating one is again.
void Timer::on_fire(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  self->pending_ = self->repeating_;
  Callback callback = self->callback_;
  const char* what = self->what_;
  guard(what, callback);
}

// EV_PERSIST is fixed when the event is assigned, so a change of mode assigns it again, in
// place; libevent allows that only while it is neither pending nor active, hence the delete.
void Timer::set_repeating(bool repeating) noexcept {
  if (repeating == repeating_) return;
  event_del(ev_.get());
  event_assign(ev_.get(), event_get_base(ev_.get()), -1, repeating ? EV_PERSIST : 0, on_fire, this);
  repeating_ = repeating;
}

void Timer::start(std::chrono::milliseconds delay) noexcept {
  set_repeating(false);
  timeval tv = to_timeval(delay.count());
  if (event_add(ev_.get(), &tv) != 0) out_of_memory("event_add()");
  pending_ = true;
}

void Timer::start_every(std::chrono::milliseconds interval) noexcept {
  set_repeating(true);
  timeval tv = to_timeval(interval.count());
  if (event_add(ev_.get(), &tv) != 0) out_of_memory("event_add()");
  pending_ = true;
}

// One-shot first: a repeating event activated early would re-arm itself from its old
// deadline, skipping a period.
void Timer::activate() noexcept {
  set_repeating(false);
  event_active(ev_.get(), EV_TIMEOUT, 1);
  pending_ = true;
}

void Timer::stop() noexcept {
  event_del(ev_.get());
  pending_ = false;
}

}  // namespace sluice::common
