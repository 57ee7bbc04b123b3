#include "worker/chunked_decoder.h"

#include <algorithm>
#include <string>

namespace sluice::worker {
namespace {

using common::Errc;
using common::make_error;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

common::Error framing_error(const char* message) {
  return make_error(Errc::bad_request, "invalid_chunked_body", message);
}

// Copies (not moves: see the header) `n` bytes from the front of `in` to `out`.
void copy_front(evbuffer* in, evbuffer* out, size_t n) {
  evbuffer_iovec vec[8];
  size_t left = n;
  while (left > 0) {
    int count = evbuffer_peek(in, static_cast<ev_ssize_t>(left), nullptr, vec, 8);
    size_t done = 0;
    for (int i = 0; i < count && i < 8 && done < left; ++i) {
      size_t take = std::min(vec[i].iov_len, left - done);
      evbuffer_add(out, vec[i].iov_base, take);
      done += take;
    }
    evbuffer_drain(in, done);
    left -= done;
  }
}

}  // namespace

ChunkedDecoder::Status ChunkedDecoder::fail(common::Error error) {
  failed_ = true;
  error_ = std::move(error);
  return Status::failed;
}

ChunkedDecoder::Status ChunkedDecoder::feed(evbuffer* in, evbuffer* body) {
  if (failed_) return Status::failed;
  while (state_ != State::done) {
    size_t avail = evbuffer_get_length(in);
    if (avail == 0) return Status::more;
    if (state_ == State::data) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(avail, chunk_));
      copy_front(in, body, n);
      chunk_ -= n;
      total_ += n;
      if (chunk_ == 0) state_ = State::data_cr;
      continue;
    }
    evbuffer_iovec vec;
    evbuffer_peek(in, -1, nullptr, &vec, 1);
    const char* bytes = static_cast<const char*>(vec.iov_base);
    size_t used = 0;
    while (used < vec.iov_len && state_ != State::data && state_ != State::done) {
      if (!step(bytes[used++])) {
        evbuffer_drain(in, used);
        return Status::failed;
      }
    }
    evbuffer_drain(in, used);
  }
  return Status::done;
}

bool ChunkedDecoder::size_digit(char c) {
  int v = hex_value(c);
  if (v < 0) {
    fail(framing_error("a chunk size must be hexadecimal digits"));
    return false;
  }
  if ((chunk_ >> 60) != 0) {  // one more digit would not fit in 64 bits
    fail(framing_error("a chunk size overflows"));
    return false;
  }
  chunk_ = (chunk_ << 4) | static_cast<uint64_t>(v);
  ++digits_;
  return true;
}

// Everything but chunk data, one byte at a time. CRLF ends a line; a bare LF is taken too,
// as libevhtp's own parser and nginx do.
bool ChunkedDecoder::step(char c) {
  auto refuse = [this](const char* why) {
    fail(framing_error(why));
    return false;
  };
  // The CR or LF that ends the line is not part of it (as in trailer_byte).
  bool in_size_line =
      state_ == State::size || state_ == State::size_space || state_ == State::extension;
  if (in_size_line && c != '\r' && c != '\n' && ++line_ > kMaxLine) {
    return refuse("a chunk size line is too long");
  }
  switch (state_) {
    case State::size:
      if (digits_ == 0) return size_digit(c);
      if (c == ';') {
        state_ = State::extension;  // chunk extensions are accepted and ignored
        return true;
      }
      if (c == ' ' || c == '\t') {
        state_ = State::size_space;
        return true;
      }
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      return c == '\n' ? end_size_line() : size_digit(c);
    case State::size_space:
      // Only whitespace before ';' (RFC 9112 BWS): "5 5" is no chunk size a proxy agrees on.
      if (c == ';') {
        state_ = State::extension;
        return true;
      }
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      if (c == '\n') return end_size_line();
      return c == ' ' || c == '\t' ? true
                                   : refuse("a chunk size must end at a ';' or the line's end");
    case State::extension:
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      if (c == '\n') return end_size_line();
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return refuse("a chunk extension holds a control byte");
      }
      return true;
    case State::size_lf:
      return c == '\n' ? end_size_line() : refuse("a chunk size line must end with CRLF");
    case State::data_cr:
      if (c == '\r') {
        state_ = State::data_lf;
        return true;
      }
      return c == '\n' ? next_chunk() : refuse("chunk data is longer than its chunk size");
    case State::data_lf:
      return c == '\n' ? next_chunk() : refuse("chunk data must end with CRLF");
    case State::trailer:
      return trailer_byte(c);
    case State::trailer_lf:
      if (c != '\n') return refuse("the chunked body must end with CRLF");
      state_ = State::done;
      return true;
    case State::data:
    case State::done:
      break;
  }
  return true;
}

bool ChunkedDecoder::end_size_line() {
  line_ = 0;
  if (chunk_ > max_body_ - total_) {
    fail(make_error(
        Errc::too_large, "body_too_large",
        "request body exceeds max_body_size of " + std::to_string(max_body_) + " bytes"));
    return false;
  }
  state_ = chunk_ == 0 ? State::trailer : State::data;
  return true;
}

bool ChunkedDecoder::next_chunk() {
  state_ = State::size;
  chunk_ = 0;
  digits_ = 0;
  return true;
}

// Trailer fields are read and dropped (RFC 9112 section 7.1.2 allows it); an empty line
// ends the body.
bool ChunkedDecoder::trailer_byte(char c) {
  if (c == '\n') {
    state_ = line_ == 0 ? State::done : State::trailer;
    line_ = 0;
    return true;
  }
  if (c == '\r') {
    if (line_ == 0) state_ = State::trailer_lf;
    return true;
  }
  if (++line_ > kMaxLine || ++trailer_bytes_ > kMaxTrailerBytes) {
    fail(framing_error("the chunked body's trailer is too long"));
    return false;
  }
  return true;
}

}  // namespace sluice::worker
