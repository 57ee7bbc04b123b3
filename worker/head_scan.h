#pragma once
// A scan of a request head's raw bytes as they arrive, before libevhtp's parser sees them,
// for the two things its hooks cannot tell:
//   - a NUL byte: libevhtp copies header names and values with their NUL bytes but measures
//     them with strlen, so "X-User: alice\0admin" reaches every hook as "alice" (a proxy in
//     front may read it otherwise);
//   - whether the request line is complete: htparser 1.2.18 reads one byte past the end of
//     its input when that input ends inside the request target (states s_check_uri and
//     s_uri: `ch = data[++i]` then a switch on it), and appends that stray byte to the path
//     (a publish split by a read boundary went to a truncated routing key). So the parser is
//     only given a request line once its LF has arrived.
// The scan runs from the first byte of a head to its empty line.
#include <event2/buffer.h>

#include <cstddef>

namespace sluice::worker {

class HeadScan {
 public:
  // The input's first byte is the first byte of a head.
  void start();
  // Scans what arrived since the last call, up to the end of the head.
  void feed(evbuffer* input);
  // The parser consumed `n` bytes from the front of the input.
  void consumed(size_t n) { scanned_ -= n < scanned_ ? n : scanned_; }
  bool nul() const { return nul_; }
  // The request line has begun as a request line would (an upper-case method) and its LF
  // has not arrived: the parser must not run yet. Past kMaxRequestLine it may (and refuses
  // the line as too long before it reaches the end of its input).
  bool request_line_pending() const {
    return state_ == State::in_line && !line_done_ && method_like_ && scanned_ < kMaxRequestLine;
  }
  static constexpr size_t kMaxRequestLine = 16384;

 private:
  enum class State { before_line, in_line, line_start, line_start_cr, done };
  size_t scan(const char* p, size_t len);

  State state_ = State::done;
  size_t scanned_ = 0;  // bytes at the front of the input already looked at
  bool nul_ = false;
  bool line_done_ = false;    // the request line's LF has been seen
  bool method_like_ = false;  // the line starts with [A-Z_], as htparser wants
};

}  // namespace sluice::worker
