#pragma once
// guard(): every C trampoline (libevent, libevhtp, hiredis, an eventfd of rabbitmq-c's
// connect thread) runs its body through it, so no exception unwinds into C frames, which
// is undefined behaviour and in practice std::terminate. The exception is logged with `what`
// and swallowed: the loop goes on. worker/guard.h adds the form that also fails the request
// with a 500.
#include <exception>
#include <utility>

#include "common/log.h"

namespace sluice::common {

// Returns false when `fn` threw. noexcept: should logging itself fail (out of memory while
// formatting), the process terminates, as STYLE.md wants for OOM.
template <class Fn>
bool guard(const char* what, Fn&& fn) noexcept {
  try {
    std::forward<Fn>(fn)();
    return true;
  } catch (const std::exception& e) {
    SLOG_ERROR("callback", "%s: unexpected exception: %s", what, e.what());
  } catch (...) {
    SLOG_ERROR("callback", "%s: unexpected exception", what);
  }
  return false;
}

}  // namespace sluice::common
