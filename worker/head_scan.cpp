#include "worker/head_scan.h"

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
      const char* p = static_cast<const char*>(vec[i].iov_base);
      for (size_t k = 0; k < vec[i].iov_len && state_ != State::done; ++k) {
        char c = p[k];
        ++scanned_;
        if (c == '\0') nul_ = true;
        switch (state_) {
          case State::before_line:  // the parser skips empty lines before a request line
            if (c != '\r' && c != '\n') {
              state_ = State::in_line;
              method_like_ = (c >= 'A' && c <= 'Z') || c == '_';
            }
            break;
          case State::in_line:
            if (c == '\n') {
              state_ = State::line_start;
              line_done_ = true;
            }
            break;
          case State::line_start:
            state_ = c == '\n' ? State::done : c == '\r' ? State::line_start_cr : State::in_line;
            break;
          case State::line_start_cr:
            state_ = c == '\n' ? State::done : State::in_line;
            break;
          case State::done:
            break;
        }
      }
    }
    evbuffer_ptr_set(input, &at, scanned_, EVBUFFER_PTR_SET);
  }
}

}  // namespace sluice::worker
