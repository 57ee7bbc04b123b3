#pragma once
// The pidfile, held under an exclusive flock() for the life of the supervisor: a second
// instance cannot take the lock and refuses to start, and a stale file left by a crash is
// simply taken over. Workers close the descriptor right after fork().
#include <sys/types.h>

#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace sluice::daemon {

class Pidfile {
 public:
  // Opens (creating) and locks `path`; does not write it yet (the pid changes when the
  // supervisor daemonizes).
  static common::Result<Pidfile> acquire(const std::string& path);

  Pidfile() = default;
  Pidfile(Pidfile&&) = default;
  Pidfile& operator=(Pidfile&&) = default;

  common::Result<void> write(pid_t pid);
  // Unlinks the file while still holding the lock.
  void remove();
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  common::UniqueFd fd_;
};

// The pid written in `path`, for `sluiced -s`.
common::Result<pid_t> read_pid(const std::string& path);
// The pid of the instance holding `path`'s lock; an error when nobody holds it, so a stale
// file left by a crash never gets an unrelated process signalled.
common::Result<pid_t> running_pid(const std::string& path);

}  // namespace sluice::daemon
