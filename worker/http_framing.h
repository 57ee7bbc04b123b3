#pragma once
// The request framing rules of RFC 9112 that libevhtp 1.2.18 gets wrong, checked on what its
// parser hands our hooks: a header field as it arrives, then the whole head. libevhtp reads
// `Transfer-Encoding: CHUNKED` (or `chunked ` with trailing space, or `gzip, chunked`) as "no
// body" and would parse the body as the next request; it takes `Content-Length : 8` (space
// before the colon) for an unknown field; it keeps a field with a NUL byte, truncated at the
// NUL. Every such request is refused here, before any body byte is read, or its body is
// handed to sluice's own chunked decoder (chunked_decoder.h).
#include <evhtp.h>

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace sluice::worker {

// One header field, checked when the parser has read it: a name that is an RFC 9110 token
// (no space before the colon, no control bytes) and a value without NUL, CR or LF.
common::Result<void> check_header_field(std::string_view name, std::string_view value);

struct BodyFraming {
  enum class Kind { none, length, chunked };
  Kind kind = Kind::none;
  uint64_t length = 0;           // Kind::length
  bool expect_continue = false;  // `Expect: 100-continue`
  // The connection outlives this request (RFC 9112 section 9.3): HTTP/1.1 unless a
  // `Connection` token is close, HTTP/1.0 only with a keep-alive token and never with a body
  // in a transfer coding. libevhtp reads only the exact values "close" and "keep-alive".
  bool keep_alive = true;
};

// The whole head: Host (required once in HTTP/1.1, a plausible host[:port]), Content-Length
// (digits with optional whitespace, one value), Transfer-Encoding (a list whose final coding
// is chunked; chunked is the only coding served), never both, Expect (only 100-continue),
// at most one Authorization and one Content-Type (a proxy may read the other one), and
// Connection.
common::Result<BodyFraming> check_framing(evhtp_headers_t* headers, bool http11);

// "8", " 8 " -> 8; "+8", "8, 8", "-1", "", "0x8", overflow -> nullopt-like false.
bool parse_content_length(std::string_view text, uint64_t& out);

}  // namespace sluice::worker
