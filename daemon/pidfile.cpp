#include "daemon/pidfile.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice::daemon {
namespace {

common::Error sys_error(const std::string& what, int err) {
  return common::make_error(common::Errc::internal, "pidfile", what + ": " + std::strerror(err));
}

}  // namespace

common::Result<Pidfile> Pidfile::acquire(const std::string& path) {
  common::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return sys_error("open(\"" + path + "\") failed", errno);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) return sys_error("flock(\"" + path + "\") failed", err);
    std::string holder;
    if (auto pid = read_pid(path); pid.ok()) holder = " (pid " + std::to_string(pid.value()) + ")";
    return common::make_error(
        common::Errc::internal, "pidfile",
        "another sluiced is already running" + holder + ": pidfile \"" + path + "\" is locked");
  }
  Pidfile p;
  p.path_ = path;
  p.fd_ = std::move(fd);
  return p;
}

common::Result<void> Pidfile::write(pid_t pid) {
  std::string text = std::to_string(pid) + "\n";
  if (ftruncate(fd_.get(), 0) != 0) return sys_error("ftruncate(\"" + path_ + "\") failed", errno);
  if (pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return sys_error("write(\"" + path_ + "\") failed", errno);
  }
  return {};
}

void Pidfile::remove() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

common::Result<pid_t> read_pid(const std::string& path) {
  common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys_error("cannot read pidfile \"" + path + "\"", errno);
  char buf[32] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) {
    return common::make_error(common::Errc::internal, "pidfile",
                              "pidfile \"" + path + "\" is empty");
  }
  char* end = nullptr;
  long pid = std::strtol(buf, &end, 10);
  if (pid <= 0 || (end != nullptr && *end != '\n' && *end != '\0')) {
    return common::make_error(common::Errc::internal, "pidfile",
                              "pidfile \"" + path + "\" holds no pid");
  }
  return static_cast<pid_t>(pid);
}

}  // namespace sluice::daemon

namespace sluice::daemon {

common::Result<pid_t> running_pid(const std::string& path) {
  common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys_error("cannot read pidfile \"" + path + "\"", errno);
  if (flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
    return common::make_error(common::Errc::internal, "pidfile",
                              "pidfile \"" + path + "\" is not locked by a running sluiced");
  }
  return read_pid(path);
}

}  // namespace sluice::daemon
