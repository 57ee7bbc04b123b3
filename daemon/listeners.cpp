#include "daemon/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::daemon {
namespace {

constexpr int kBacklog = 1024;

common::Error bind_error(const ListenerKey& key, const char* call, int err) {
  return common::make_error(
      common::Errc::internal, "listen",
      std::string(call) + " to " + describe(key) + " failed: " + std::strerror(err));
}

}  // namespace

std::string describe(const ListenerKey& key) {
  bool v6 = key.first.find(':') != std::string::npos;
  return (v6 ? "[" + key.first + "]" : key.first) + ":" + std::to_string(key.second);
}

common::Result<int> Listeners::open(const ListenerKey& key) {
  if (auto it = fds_.find(key); it != fds_.end()) return it->second.get();
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (key.first.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(key.second);
    if (inet_pton(AF_INET6, key.first.c_str(), &a6->sin6_addr) != 1) {
      return bind_error(key, "inet_pton()", EINVAL);
    }
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(key.second);
    if (inet_pton(AF_INET, key.first.c_str(), &a4->sin_addr) != 1) {
      return bind_error(key, "inet_pton()", EINVAL);
    }
    len = sizeof *a4;
  }
  common::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return bind_error(key, "socket()", errno);
  int on = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return bind_error(key, "bind()", errno);
  }
  if (::listen(fd.get(), kBacklog) != 0) return bind_error(key, "listen()", errno);
  int raw = fd.get();
  fds_.emplace(key, std::move(fd));
  return raw;
}

int Listeners::fd(const ListenerKey& key) const {
  auto it = fds_.find(key);
  return it == fds_.end() ? -1 : it->second.get();
}

void Listeners::close_all_except(int keep) const {
  for (const auto& [key, fd] : fds_) {
    if (fd.get() != keep) ::close(fd.get());
  }
}

}  // namespace sluice::daemon
