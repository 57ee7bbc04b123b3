#pragma once
// Internal to the harness: blocking-with-deadline socket helpers on 127.0.0.1.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/fd.h"

namespace sluice::test::detail {

// Non-blocking socket connected to 127.0.0.1:port, or an invalid fd.
common::UniqueFd connect_loopback(uint16_t port, std::chrono::milliseconds timeout);

bool send_all(int fd, const std::string& bytes, std::chrono::steady_clock::time_point deadline);

// Reads until EOF, the deadline, or complete(received) returns true.
std::string receive(int fd, std::chrono::steady_clock::time_point deadline,
                    const std::function<bool(const std::string&)>& complete);

}  // namespace sluice::test::detail
