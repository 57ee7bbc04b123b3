#pragma once
// Command line of sluiced: -c FILE, -t, -f, -s stop|quit|reload|reopen, -v, -h.
#include <optional>
#include <string>
#include <vector>

namespace sluice::daemon {

struct Options {
  std::string config_path = "/etc/sluice/sluice.yaml";
  bool test_config = false;
  bool foreground = false;
  bool version = false;
  bool help = false;
  std::optional<std::string> signal_name;
};

// Returns the options, or an error message for the usage line.
std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error);
const char* usage_text();
// stop → SIGTERM, quit → SIGQUIT, reload → SIGHUP, reopen → SIGUSR1; 0 when unknown.
int signal_number(const std::string& name);

}  // namespace sluice::daemon
