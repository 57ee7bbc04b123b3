// Loopback ports and raw sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/fd.h"
#include "tests/harness/harness.h"
#include "tests/harness/net.h"

namespace sluice::test {
namespace {

using common::UniqueFd;
using Clock = std::chrono::steady_clock;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

namespace detail {

UniqueFd connect_loopback(uint16_t port, std::chrono::milliseconds timeout) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fd;
  sockaddr_in sa = loopback(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) return UniqueFd();
    pollfd p{fd.get(), POLLOUT, 0};
    int r;
    do {
      r = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return UniqueFd();
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return UniqueFd();
    }
  }
  return fd;
}

bool send_all(int fd, const std::string& bytes, Clock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::string receive(int fd, Clock::time_point deadline,
                    const std::function<bool(const std::string&)>& complete) {
  std::string out;
  for (;;) {
    if (complete && complete(out)) break;
    int left = remaining_ms(deadline);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF or reset
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace detail

uint16_t free_port() {
  static std::mutex mu;
  static std::set<uint16_t> handed_out;
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) break;
    sockaddr_in sa = loopback(0);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) continue;
    socklen_t len = sizeof sa;
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) continue;
    uint16_t port = ntohs(sa.sin_port);
    if (port >= 35672 && port <= 35682) continue;  // rabbitmqctl's distribution ports
    if (!handed_out.insert(port).second) continue;
    return port;
  }
  throw std::runtime_error(std::string("free_port: no free port: ") + std::strerror(errno));
}

bool port_open(uint16_t port) {
  return detail::connect_loopback(port, 200ms).valid();
}

bool wait_for_port(uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (port_open(port)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

int connect_loopback(uint16_t port) {
  UniqueFd fd = detail::connect_loopback(port, 5s);
  if (!fd.valid()) return -1;
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd.release();
}

std::string raw_exchange(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  UniqueFd fd = detail::connect_loopback(port, timeout);
  if (!fd.valid()) return "";
  if (!bytes.empty()) detail::send_all(fd.get(), bytes, deadline);
  // Read even if the send failed part-way: the server may have answered and closed.
  return detail::receive(fd.get(), deadline, nullptr);
}

}  // namespace sluice::test
