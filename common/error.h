#pragma once
// The one mapping from an Error to what the client sees: status code and JSON body.
// worker/request.cpp's send_error() is its only caller on the data plane.
#include <string>

#include "common/result.h"

namespace sluice::common {

int http_status(Errc code);
// {"error":"<short_code>","message":"<message>"}, JSON-escaped.
std::string error_body(const Error& error);
// Seconds a client should wait after a 503 (Retry-After).
constexpr int kRetryAfterSeconds = 1;

}  // namespace sluice::common
