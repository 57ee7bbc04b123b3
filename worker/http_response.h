#pragma once
// Response heads are written by sluice, not by libevhtp's evhtp_send_reply: that one writes
// "431 UNKNOWN" (it has no reason phrase for several codes), sends the body to HEAD requests,
// and puts a Content-Length on a 204. One function serves every answer, including the 400 a
// connection gets when its bytes do not parse and no request object exists.
#include <evhtp.h>

#include <string>
#include <string_view>

namespace sluice::worker {

struct ResponseHead {
  int status = 200;
  bool http10 = false;     // answer in the request's version
  bool keep_alive = true;  // false: "Connection: close" (HTTP/1.1); HTTP/1.0 closes by default
  bool head_only = false;  // a HEAD request: the headers GET would get, no body
};

// RFC 9110's reason phrases (and 429, 431 of RFC 6585); "Unknown" for anything else.
std::string_view reason_phrase(int status);

// Appends the status line, `headers` (may be null), Content-Type when not empty,
// Content-Length (none for 1xx and 204), Connection, the blank line, and the body unless
// the status or a HEAD request has none. CR, LF and NUL in header values become spaces: a
// value taken from a client can never start a header of its own.
void format_response(std::string& out, const ResponseHead& head, evhtp_headers_t* headers,
                     std::string_view content_type, std::string_view body);

}  // namespace sluice::worker
