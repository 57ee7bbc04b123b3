#pragma once
// guard(): the body of every C trampoline that serves a request runs through it, so an
// exception fails that one request with a 500 instead of unwinding into libevent.
#include <exception>

#include "common/log.h"
#include "common/result.h"
#include "worker/request.h"

namespace sluice::worker {

template <class Fn>
void guard(const char* what, RequestCtx& ctx, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    SLOG_ERROR("worker", "%s: unexpected exception: %s", what, e.what());
    send_error(ctx, common::make_error(common::Errc::internal, "internal_error",
                                       "the gateway failed to process this request"));
  } catch (...) {
    SLOG_ERROR("worker", "%s: unexpected exception", what);
    send_error(ctx, common::make_error(common::Errc::internal, "internal_error",
                                       "the gateway failed to process this request"));
  }
}

}  // namespace sluice::worker
