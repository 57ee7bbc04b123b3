#include "daemon/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace sluice::daemon {
namespace {

common::Error failed(const std::string& call, int err) {
  return common::make_error(common::Errc::internal, "privileges",
                            call + " failed: " + std::strerror(err));
}

}  // namespace

common::Result<Credentials> resolve_credentials(const common::DaemonConfig& daemon) {
  Credentials c;
  if (geteuid() != 0) {
    if (daemon.user) {
      SLOG_WARN("supervisor", "daemon.user \"%s\" ignored: sluiced was not started as root",
                daemon.user->c_str());
    }
    return c;
  }
  if (!daemon.user) {
    return common::make_error(common::Errc::internal, "daemon.user",
                              "must be set when sluiced starts as root (use \"root\" to run "
                              "workers as root on purpose)");
  }
  const passwd* pw = getpwnam(daemon.user->c_str());
  if (pw == nullptr) {
    return common::make_error(common::Errc::internal, "daemon.user",
                              "no such user '" + *daemon.user + "'");
  }
  c.change = true;
  c.user = *daemon.user;
  c.uid = pw->pw_uid;
  c.gid = pw->pw_gid;
  if (daemon.group) {
    const group* gr = getgrnam(daemon.group->c_str());
    if (gr == nullptr) {
      return common::make_error(common::Errc::internal, "daemon.group",
                                "no such group '" + *daemon.group + "'");
    }
    c.gid = gr->gr_gid;
  }
  return c;
}

common::Result<void> drop_privileges(const Credentials& c) {
  if (!c.change) return {};
  if (initgroups(c.user.c_str(), c.gid) != 0)
    return failed("initgroups(\"" + c.user + "\")", errno);
  if (setgid(c.gid) != 0) return failed("setgid(" + std::to_string(c.gid) + ")", errno);
  if (setuid(c.uid) != 0) return failed("setuid(" + std::to_string(c.uid) + ")", errno);
  if (c.uid != 0 && setuid(0) == 0) {
    return common::make_error(common::Errc::internal, "privileges",
                              "setuid(0) succeeded after dropping privileges");
  }
  return {};
}

}  // namespace sluice::daemon
