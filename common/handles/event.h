#pragma once
// RAII for libevent and libevhtp handles. Declare an EventBasePtr before everything that
// lives on that base: members are destroyed in reverse order, so the base goes last.
#include <event2/event.h>
#include <evhtp.h>

#include <memory>

namespace sluice::common {

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

using EventBasePtr = std::unique_ptr<event_base, CFree<event_base_free>>;
using EventPtr = std::unique_ptr<event, CFree<event_free>>;
using EvhtpPtr = std::unique_ptr<evhtp_t, CFree<evhtp_free>>;

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

}  // namespace sluice::common
