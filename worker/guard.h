#pragma once
// guard() for a trampoline that serves a request: common::guard (common/guard.h) logs and
// swallows the exception, and this form also fails that one request with a 500 instead of
// leaving it unanswered. Both forms are visible here as worker::guard.
#include "common/guard.h"
#include "common/result.h"
#include "worker/request.h"

namespace sluice::worker {

using common::guard;

template <class Fn>
void guard(const char* what, RequestCtx& ctx, Fn&& fn) noexcept {
  if (common::guard(what, std::forward<Fn>(fn))) return;
  common::guard(what, [&] {
    send_error(ctx, common::make_error(common::Errc::internal, "internal_error",
                                       "the gateway failed to process this request"));
  });
}

}  // namespace sluice::worker
