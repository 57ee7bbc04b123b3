#pragma once
// The chunked transfer coding (RFC 9112 section 7.1), decoded by sluice rather than
// libevhtp: its parser takes only the exact spelling `chunked`, lets a chunk size wrap
// around 64 bits (a request smuggled in the "body"), and refuses chunk extensions. Fed from
// a connection's input buffer as bytes arrive; the data goes to the request's body buffer
// by copy, so a body dribbled one byte at a time costs its size, not a buffer per byte.
#include <event2/buffer.h>

#include <cstdint>

#include "common/result.h"

namespace sluice::worker {

class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t max_body_size) : max_body_(max_body_size) {}

  enum class Status { more, done, failed };
  // Consumes what it can from `in` (never past the end of the body: what follows is the
  // next request) and appends the decoded data to `body`.
  Status feed(evbuffer* in, evbuffer* body);
  // Why it failed: 400 for bad framing, 413 past max_body_size.
  const common::Error& error() const { return error_; }
  uint64_t body_size() const { return total_; }

  // A chunk-size line (with its extensions) or one trailer line longer than this is refused.
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxTrailerBytes = 16384;

 private:
  enum class State {
    size,
    size_space,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer,
    trailer_lf,
    done
  };
  Status fail(common::Error error);
  // One byte of the framing (everything but chunk data); false when it failed.
  bool step(char c);
  bool size_digit(char c);
  bool end_size_line();
  bool next_chunk();
  bool trailer_byte(char c);

  uint64_t max_body_;
  uint64_t total_ = 0;
  uint64_t chunk_ = 0;  // size of the current chunk; what is left of it in State::data
  int digits_ = 0;
  size_t line_ = 0;           // bytes of the current size or trailer line
  size_t trailer_bytes_ = 0;  // all trailer lines so far
  State state_ = State::size;
  common::Error error_;
  bool failed_ = false;
};

}  // namespace sluice::worker
