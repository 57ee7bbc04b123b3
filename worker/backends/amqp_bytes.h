#pragma once
// amqp_bytes_t (pointer and length, not NUL-terminated) as a std::string.
#include <amqp.h>

#include <string>

namespace sluice::worker {

inline std::string to_string(const amqp_bytes_t& b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

}  // namespace sluice::worker
