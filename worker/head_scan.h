#pragma once
// A scan of a request head's raw bytes as they arrive, before libevhtp's parser sees them:
// the one check that cannot wait for its hooks. libevhtp copies header names and values
// with their NUL bytes but measures them with strlen, so a field such as
// "X-User: alice\0admin" reaches every hook as "alice"; a proxy in front may read it
// otherwise. The scan runs from the first byte of a head to its empty line and notes a NUL.
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

 private:
  enum class State { before_line, in_line, line_start, line_start_cr, done };
  State state_ = State::done;
  size_t scanned_ = 0;  // bytes at the front of the input already looked at
  bool nul_ = false;
};

}  // namespace sluice::worker
