#define BOOST_TEST_MODULE options
// sluiced's command line: -c FILE, -t, -f, -s stop|quit|reload|reopen, -v, -h, and what it
// says about anything else.
#include "daemon/options.h"

#include <csignal>

#include <boost/test/unit_test.hpp>
#include <optional>
#include <string>
#include <vector>

using sluice::daemon::Options;
using sluice::daemon::parse_options;
using sluice::daemon::signal_number;

namespace {

Options parsed(const std::vector<std::string>& args) {
  std::string error;
  std::optional<Options> o = parse_options(args, error);
  BOOST_REQUIRE_MESSAGE(o.has_value(), "refused: " << error);
  BOOST_TEST(error.empty());
  return *o;
}

// The error message for args that must be refused.
std::string refused(const std::vector<std::string>& args) {
  std::string error;
  std::optional<Options> o = parse_options(args, error);
  BOOST_TEST(!o.has_value());
  BOOST_TEST(!error.empty());
  return error;
}

}  // namespace

BOOST_AUTO_TEST_CASE(no_arguments_mean_the_default_config_and_a_daemon) {
  Options o = parsed({});
  BOOST_TEST(o.config_path == "/etc/sluice/sluice.yaml");
  BOOST_TEST(!o.test_config);
  BOOST_TEST(!o.foreground);
  BOOST_TEST(!o.version);
  BOOST_TEST(!o.help);
  BOOST_TEST(!o.signal_name.has_value());
}

BOOST_AUTO_TEST_CASE(c_takes_the_next_argument_as_the_file) {
  BOOST_TEST(parsed({"-c", "etc/sluice.dev.yaml"}).config_path == "etc/sluice.dev.yaml");
  // The value is taken as it is, even when it looks like an option or is empty.
  BOOST_TEST(parsed({"-c", "-f"}).config_path == "-f");
  BOOST_TEST(!parsed({"-c", "-f"}).foreground);
  BOOST_TEST(parsed({"-c", ""}).config_path == "");
  // The last -c wins.
  BOOST_TEST(parsed({"-c", "a.yaml", "-c", "b.yaml"}).config_path == "b.yaml");
}

BOOST_AUTO_TEST_CASE(t_and_f_are_flags_in_any_order) {
  Options o = parsed({"-t", "-c", "x.yaml", "-f"});
  BOOST_TEST(o.test_config);
  BOOST_TEST(o.foreground);
  BOOST_TEST(o.config_path == "x.yaml");
  Options again = parsed({"-f", "-f", "-t"});
  BOOST_TEST(again.test_config);
  BOOST_TEST(again.foreground);
}

BOOST_AUTO_TEST_CASE(s_names_one_of_four_signals) {
  for (const char* name : {"stop", "quit", "reload", "reopen"}) {
    BOOST_TEST_CONTEXT(name) {
      Options o = parsed({"-s", name, "-c", "x.yaml"});
      BOOST_REQUIRE(o.signal_name.has_value());
      BOOST_TEST(*o.signal_name == name);
      BOOST_TEST(o.config_path == "x.yaml");
    }
  }
  BOOST_TEST(signal_number("stop") == SIGTERM);
  BOOST_TEST(signal_number("quit") == SIGQUIT);
  BOOST_TEST(signal_number("reload") == SIGHUP);
  BOOST_TEST(signal_number("reopen") == SIGUSR1);
}

BOOST_AUTO_TEST_CASE(an_unknown_signal_is_refused_with_the_list) {
  for (const char* name : {"STOP", "kill", "", "term", "stop "}) {
    BOOST_TEST_CONTEXT("-s \"" << name << "\"") {
      BOOST_TEST(signal_number(name) == 0);
      std::string error = refused({"-s", name});
      BOOST_TEST(error.find("unknown signal \"" + std::string(name) + "\"") != std::string::npos,
                 error);
      BOOST_TEST(error.find("stop, quit, reload or reopen") != std::string::npos, error);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_option_without_its_value_says_what_it_needs) {
  std::string c = refused({"-c"});
  BOOST_TEST(c == "option -c needs a file name");
  std::string s = refused({"-f", "-s"});
  BOOST_TEST(s == "option -s needs a signal: stop, quit, reload or reopen");
}

BOOST_AUTO_TEST_CASE(anything_else_is_an_unknown_option) {
  for (const char* arg : {"-x", "--config", "-cfile", "-tf", "config.yaml", "-", "--", ""}) {
    BOOST_TEST_CONTEXT("\"" << arg << "\"") {
      BOOST_TEST(refused({"-f", arg}) == "unknown option \"" + std::string(arg) + "\"");
    }
  }
}

BOOST_AUTO_TEST_CASE(version_and_help) {
  BOOST_TEST(parsed({"-v"}).version);
  BOOST_TEST(parsed({"-V"}).version);
  BOOST_TEST(parsed({"-h"}).help);
  BOOST_TEST(parsed({"-?"}).help);
  BOOST_TEST(!parsed({"-h"}).version);
  std::string usage = sluice::daemon::usage_text();
  for (const char* option : {"-c FILE", "-t", "-f", "-s SIG", "-v"})
    BOOST_TEST(usage.find(option) != std::string::npos, option);
}
