// sluiced: parse the command line and the config, then hand over to the supervisor.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "daemon/daemonize.h"
#include "daemon/listeners.h"
#include "daemon/options.h"
#include "daemon/pidfile.h"
#include "daemon/privileges.h"
#include "daemon/signals.h"
#include "daemon/supervisor.h"

namespace sluice::daemon {
namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitFatal = 2;

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluiced: %s\n", message.c_str());
  // Daemonized, stderr may be /dev/null: the error log is where an operator looks.
  if (!common::log::path().empty()) SLOG_ERROR("supervisor", "%s", message.c_str());
  return code;
}

int test_config(const std::string& path, const common::ConfigLoad& load) {
  if (load.ok()) {
    std::fprintf(stderr, "sluiced: the configuration file %s syntax is ok\n", path.c_str());
    std::fprintf(stderr, "sluiced: configuration file %s test is successful\n", path.c_str());
    return 0;
  }
  for (const auto& p : load.problems)
    std::fprintf(stderr, "%s\n", p.to_string().c_str());
  std::fprintf(stderr, "sluiced: configuration file %s test failed\n", path.c_str());
  return kExitFatal;
}

// `-s` must work while the file on disk is being edited into a broken state (a reload is
// the usual next step): it needs only daemon.pidfile, read leniently.
std::string pidfile_setting(const std::string& config_path, const common::ConfigLoad& load) {
  if (load.ok()) return load.config->daemon.pidfile;
  std::string pidfile = common::DaemonConfig().pidfile;
  try {
    YAML::Node node = YAML::LoadFile(config_path)["daemon"]["pidfile"];
    if (node.IsScalar()) pidfile = node.as<std::string>();
  } catch (const YAML::Exception&) {
    // Unreadable: the default location is the best guess left.
  }
  return pidfile;
}

int send_signal(const std::string& pidfile, const std::string& name) {
  auto pid = running_pid(pidfile);
  if (!pid) return fail(pid.error().message + " (is sluiced running?)", kExitRuntime);
  if (kill(pid.value(), signal_number(name)) != 0) {
    return fail(
        "kill(" + std::to_string(pid.value()) + ", " + name + ") failed: " + std::strerror(errno),
        kExitRuntime);
  }
  return 0;
}

int start(const Options& opts, std::shared_ptr<const common::Config> config) {
  block_supervisor_signals();  // until Supervisor::run() has its signal events
  const common::DaemonConfig& d = config->daemon;
  std::string error;
  if (!common::log::open(d.error_log, d.log_level, error)) return fail(error, kExitRuntime);
  auto credentials = resolve_credentials(d);
  if (!credentials) {
    return fail(
        config->path + ": " + credentials.error().short_code + ": " + credentials.error().message,
        kExitFatal);
  }
  // The lock comes first, so a second instance is refused by name rather than by an
  // "address in use" from the ports the first one holds.
  auto pidfile = Pidfile::acquire(d.pidfile);
  if (!pidfile) return fail(pidfile.error().message, kExitRuntime);
  Listeners listeners;
  for (const auto& l : config->listeners) {
    if (auto fd = listeners.open({l.address, l.port}); !fd) {
      return fail(fd.error().message, kExitRuntime);
    }
  }
  int ready_fd = -1;
  if (!opts.foreground && !daemonize(ready_fd, d.error_log.empty())) return kExitRuntime;
  if (auto written = pidfile->write(getpid()); !written) {
    notify_ready(ready_fd, kExitRuntime);
    return fail(written.error().message, kExitRuntime);
  }
  if (credentials->change) common::log::chown_file(credentials->uid, credentials->gid);
  Supervisor supervisor(std::move(config), std::move(listeners), std::move(pidfile.value()),
                        std::move(credentials.value()));
  return supervisor.run([&] { notify_ready(ready_fd, 0); });
}

}  // namespace
}  // namespace sluice::daemon

int main(int argc, char** argv) {
  using namespace sluice;
  std::string error;
  auto opts = daemon::parse_options(std::vector<std::string>(argv + 1, argv + argc), error);
  if (!opts) {
    std::fprintf(stderr, "sluiced: %s\n%s", error.c_str(), daemon::usage_text());
    return 2;
  }
  if (opts->help) {
    std::fputs(daemon::usage_text(), stdout);
    return 0;
  }
  if (opts->version) {
    std::printf("sluiced version %s\n", SLUICE_VERSION);
    return 0;
  }
  common::ConfigLoad load = daemon::load_and_check(opts->config_path);
  if (opts->test_config) return daemon::test_config(opts->config_path, load);
  if (opts->signal_name) {
    return daemon::send_signal(daemon::pidfile_setting(opts->config_path, load),
                               *opts->signal_name);
  }
  if (!load.ok()) {
    for (const auto& p : load.problems)
      std::fprintf(stderr, "%s\n", p.to_string().c_str());
    return 2;
  }
  return daemon::start(*opts, load.config);
}
