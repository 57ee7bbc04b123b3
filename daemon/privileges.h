#pragma once
// Who the workers run as. The supervisor keeps the privileges it was started with (it
// binds ports below 1024 on reload and reopens root-owned logs, as nginx's master does);
// each worker drops to daemon.user/daemon.group right after fork(), before it touches a
// client, Redis or RabbitMQ.
#include <sys/types.h>

#include <string>

#include "common/config.h"
#include "common/result.h"

namespace sluice::daemon {

struct Credentials {
  bool change = false;  // false: keep the current uid/gid (not started as root)
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
};

// Started as root: daemon.user is required ("root" keeps workers as root, on purpose).
// Started as anyone else: workers keep that identity; a configured user is only checked.
common::Result<Credentials> resolve_credentials(const common::DaemonConfig& daemon);
// initgroups, setgid, setuid, then checks that root cannot be regained.
common::Result<void> drop_privileges(const Credentials& credentials);

}  // namespace sluice::daemon
