#pragma once
// A libevent timer that owns its event: one-shot (start), repeating (start_every), or run
// in this loop turn (activate); stopped by stop() or by its destructor. Its callback runs
// through common::guard, so an exception is logged and the loop goes on.
//
// Cheap to re-arm: start() is one event_add (the event exists from construction on), and
// nothing is allocated per start() or per fire. Switching between one-shot and repeating
// re-assigns the event in place (event_assign, no allocation).
//
// Out of memory (event_new, or event_add unable to grow the timer heap) aborts after a log
// line, as STYLE.md has it for OOM, rather than throwing std::bad_alloc: start() and stop()
// stay noexcept, so they can be called from cleanup paths and destructors and never leave the
// caller half-way through an update; and a timer that silently did not run would leave, say,
// a backend down for good. A worker that aborts is respawned by the supervisor.
//
// The callback may stop, re-arm or destroy its own Timer: nothing of the Timer is touched
// once the callback has been called (nor by libevent, for a timer). The Timer is neither
// copied nor moved: libevent holds its address. Keep one in std::optional to make it lazily.
#include <event2/event.h>

#include <chrono>

#include "common/handles/callback.h"
#include "common/handles/event.h"

namespace sluice::common {

class Timer {
 public:
  // `what` names the callback in the log line of an exception; it must outlive the Timer
  // (a string literal).
  Timer(event_base* base, const char* what, Callback callback);
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() = default;  // event_free deletes a pending event

  // Runs the callback once, `delay` from now (0: in the next loop turn, after the callbacks
  // of this one). Re-arming a pending timer moves its deadline; a repeating one becomes
  // one-shot.
  void start(std::chrono::milliseconds delay) noexcept;
  // Runs the callback every `interval` until stopped (libevent's EV_PERSIST: the next fire is
  // scheduled from the last deadline, so it does not drift).
  void start_every(std::chrono::milliseconds interval) noexcept;
  // Runs the callback in this loop turn, once the callbacks already due have run, without a
  // trip through the timer heap: the cheapest way to defer work (event_active). It replaces
  // a pending start(), and a start() made before it has run is absorbed by it (one call).
  void activate() noexcept;
  void stop() noexcept;
  // Armed or activated, and not yet fired (a repeating timer stays pending until stopped).
  // Kept here rather than asked of libevent (event_pending, ~40 instructions): the publish
  // path asks once per message whether its flush is scheduled.
  bool pending() const noexcept { return pending_; }

 private:
  static void on_fire(evutil_socket_t, short, void* arg);
  void set_repeating(bool repeating) noexcept;

  EventPtr ev_;
  Callback callback_;
  const char* what_;
  bool repeating_ = false;
  bool pending_ = false;
};

}  // namespace sluice::common
