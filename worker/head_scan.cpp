#include "worker/head_scan.h"

#include <cstring>

namespace sluice::worker {

void HeadScan::start() {
  state_ = State::before_line;
  scanned_ = 0;
  nul_ = false;
  line_done_ = false;
  method_like_ = false;
}

void HeadScan::feed(evbuffer* input) {
  if (state_ == State::done) return;
  size_t length = evbuffer_get_length(input);
  if (scanned_ >= length) return;
  evbuffer_ptr at;
  evbuffer_ptr_set(input, &at, scanned_, EVBUFFER_PTR_SET);
  evbuffer_iovec vec[4];
  while (scanned_ < length && state_ != State::done) {
    int n = evbuffer_peek(input, -1, &at, vec, 4);
    if (n <= 0) return;
    for (int i = 0; i < n && i < 4 && state_ != State::done; ++i) {
      size_t used = scan(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      scanned_ += used;
    }
    evbuffer_ptr_set(input, &at, scanned_, EVBUFFER_PTR_SET);
  }
}

// Line by line with memchr (a head is scanned once per request on the hot path); returns
// how many bytes of [p, p + len) belong to the head.
size_t HeadScan::scan(const char* p, size_t len) {
  size_t i = 0;
  while (i < len && state_ != State::done) {
    char c = p[i];
    switch (state_) {
      case State::before_line:  // the parser skips empty lines before a request line
        if (c == '\r' || c == '\n') {
          ++i;
          break;
        }
        state_ = State::in_line;
        method_like_ = (c >= 'A' && c <= 'Z') || c == '_';
        break;
      case State::in_line: {
        const void* lf = std::memchr(p + i, '\n', len - i);
        i = lf != nullptr ? static_cast<size_t>(static_cast<const char*>(lf) - p) + 1 : len;
        if (lf != nullptr) {
          state_ = State::line_start;
          line_done_ = true;
        }
        break;
      }
      case State::line_start:
        ++i;
        state_ = c == '\n' ? State::done : c == '\r' ? State::line_start_cr : State::in_line;
        break;
      case State::line_start_cr:
        ++i;
        state_ = c == '\n' ? State::done : State::in_line;
        break;
      case State::done:
        break;
    }
  }
  if (std::memchr(p, '\0', i) != nullptr) nul_ = true;
  return i;
}

}  // namespace sluice::worker
