#include "daemon/options.h"

#include <csignal>

namespace sluice::daemon {

std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* what) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        error = "option " + a + " needs " + what;
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "-c") {
      auto v = value("a file name");
      if (!v) return std::nullopt;
      o.config_path = *v;
    } else if (a == "-s") {
      auto v = value("a signal: stop, quit, reload or reopen");
      if (!v) return std::nullopt;
      if (signal_number(*v) == 0) {
        error = "unknown signal \"" + *v + "\" (use stop, quit, reload or reopen)";
        return std::nullopt;
      }
      o.signal_name = *v;
    } else if (a == "-t") {
      o.test_config = true;
    } else if (a == "-f") {
      o.foreground = true;
    } else if (a == "-v" || a == "-V") {
      o.version = true;
    } else if (a == "-h" || a == "-?") {
      o.help = true;
    } else {
      error = "unknown option \"" + a + "\"";
      return std::nullopt;
    }
  }
  return o;
}

const char* usage_text() {
  return "usage: sluiced [-c FILE] [-t] [-f] [-s stop|quit|reload|reopen] [-v]\n"
         "  -c FILE  configuration file (default /etc/sluice/sluice.yaml)\n"
         "  -t       test the configuration and exit (0: valid, 2: problems printed)\n"
         "  -f       stay in the foreground\n"
         "  -s SIG   signal the running instance found through the pidfile:\n"
         "           stop (graceful), quit (immediate), reload, reopen (log files)\n"
         "  -v       print the version and exit\n";
}

int signal_number(const std::string& name) {
  if (name == "stop") return SIGTERM;
  if (name == "quit") return SIGQUIT;
  if (name == "reload") return SIGHUP;
  if (name == "reopen") return SIGUSR1;
  return 0;
}

}  // namespace sluice::daemon
