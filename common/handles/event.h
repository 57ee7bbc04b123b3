#pragma once
// RAII for libevent and libevhtp handles. Declare an EventBasePtr before everything that
// lives on that base: members are destroyed in reverse order, so the base goes last.
// Timers and fd events with a guarded callback are common::Timer (timer.h) and
// common::FdEvent (fd_event.h); EventPtr remains for signal events.
#include <event2/buffer.h>
#include <event2/event.h>
#include <evhtp.h>

#include <memory>

#include "common/handles/c_free.h"

namespace sluice::common {

using EventBasePtr = std::unique_ptr<event_base, CFree<event_base_free>>;
using EventPtr = std::unique_ptr<event, CFree<event_free>>;
using EvhtpPtr = std::unique_ptr<evhtp_t, CFree<evhtp_free>>;
using EvbufferPtr = std::unique_ptr<evbuffer, CFree<evbuffer_free>>;

// evhtp_hook is `evhtp_res (*)()`; casting a real hook straight to it warns under -Wextra
// (-Wcast-function-type), so go through void(*)().
template <class F>
evhtp_hook as_hook(F* f) {
  return reinterpret_cast<evhtp_hook>(reinterpret_cast<void (*)()>(f));
}

inline timeval to_timeval(long long millis) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(millis / 1000);
  tv.tv_usec = static_cast<suseconds_t>((millis % 1000) * 1000);
  return tv;
}

// A C allocator of a handle returned null: out of memory. Logs the call and aborts, as
// STYLE.md has it for OOM (see timer.h for why not std::bad_alloc).
[[noreturn]] void out_of_memory(const char* call) noexcept;

}  // namespace sluice::common
