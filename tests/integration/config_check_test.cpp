#define BOOST_TEST_MODULE config_check
// `sluiced -t`: exit 0 and the nginx-style success lines for a valid file; exit 2 and every
// problem as FILE:LINE:COL: key: reason otherwise. Startup runs the same checks.
#include <boost/test/unit_test.hpp>

#include "tests/integration/fixtures.h"

using namespace sluice::test;

BOOST_AUTO_TEST_CASE(valid_config_exits_0) {
  TempDir dir;
  std::string file = dir.write("sluice.yaml", daemon_yaml(dir) + listen_yaml({8000, 8001}));
  CommandResult r = run_sluiced({"-t", "-c", file});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("configuration file " + file + " test is successful") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_problem_is_printed_with_its_position) {
  TempDir dir;
  std::string yaml =
      "daemon:\n"
      "  pidfile: /tmp/x.pid\n"
      "  shutdown_timeout: forever\n"
      "rabbitmq:\n"
      "  confirm_timeout: 601s\n"
      "redis: { port: 0 }\n"
      "listen:\n"
      "  - { address: 127.0.0.1, port: 8000, modules: [stats, teleport] }\n"
      "  - { address: 127.0.0.1, port: 8000 }\n"
      "surprise: true\n";
  std::string file = dir.write("bad.yaml", yaml);
  CommandResult r = run_sluiced({"-t", "-c", file});
  BOOST_TEST(r.exit_code == 2);
  const std::string expected[] = {
      file + ":3:21: daemon.shutdown_timeout: ",
      file + ":5:20: rabbitmq.confirm_timeout: ",
      file + ":6:16: redis.port: must be between 1 and 65535",
      file + ":8:56: listen[0].modules[1]: unknown module 'teleport'",
      file + ":9:33: listen[1].port: port 8000 on 127.0.0.1 is already used by listen[0]",
      file + ":10:1: surprise: unknown key",
  };
  for (const auto& line : expected)
    BOOST_TEST(r.output.find(line) != std::string::npos, line + "\n---\n" + r.output);
  BOOST_TEST(r.output.find("test failed") != std::string::npos);
}

// A module's section is read by the module's own schema, with the same reader: each of its
// problems has its own line and column, among the core sections' in file order.
BOOST_AUTO_TEST_CASE(every_module_problem_is_printed_at_its_own_position) {
  TempDir dir;
  std::string yaml =
      "publish:\n"
      "  default_delivery_mode: 3\n"
      "  mandatory: sometimes\n"
      "  confirm: yes\n"
      "redis: { port: 0 }\n"
      "stats:\n"
      "  fleet: true\n"
      "listen:\n"
      "  - { address: 127.0.0.1, port: 8000, modules: [stats, publish] }\n"
      "publish: {}\n";
  std::string file = dir.write("bad.yaml", yaml);
  CommandResult r = run_sluiced({"-t", "-c", file});
  BOOST_TEST(r.exit_code == 2);
  const std::string expected =
      file + ":2:26: publish.default_delivery_mode: must be 1 (transient) or 2 (persistent)\n" +
      file + ":3:14: publish.mandatory: must be true or false\n" + file +
      ":4:3: publish.confirm: unknown key\n" + file +
      ":5:16: redis.port: must be between 1 and 65535\n" + file +
      ":7:3: stats.fleet: unknown key\n" + file + ":10:1: publish: duplicate key\n";
  BOOST_TEST(r.output.find(expected) != std::string::npos, expected + "---\n" + r.output);
  BOOST_TEST(r.output.find("test failed") != std::string::npos);
  // Fixed, the same file passes.
  file = dir.write("good.yaml",
                   "publish:\n  default_delivery_mode: 1\n  mandatory: on\n"
                   "stats: {}\nlisten:\n  - { address: 127.0.0.1, port: 8000 }\n");
  r = run_sluiced({"-t", "-c", file});
  BOOST_TEST(r.exit_code == 0, r.output);
}

BOOST_AUTO_TEST_CASE(yaml_syntax_and_missing_files_exit_2) {
  TempDir dir;
  std::string file = dir.write("broken.yaml", "listen: [\n");
  CommandResult r = run_sluiced({"-t", "-c", file});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find(file + ":") != std::string::npos);
  r = run_sluiced({"-t", "-c", dir.file("absent.yaml")});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("No such file or directory") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(startup_refuses_a_bad_config_with_the_same_messages) {
  TempDir dir;
  std::string file = dir.write("bad.yaml", daemon_yaml(dir) + "listen: []\n");
  CommandResult r = run_sluiced({"-f", "-c", file});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find(file + ":") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(usage_and_version) {
  CommandResult r = run_sluiced({"-v"});
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.output.find("sluiced version ") == 0u);
  r = run_sluiced({"-x"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("usage: sluiced") != std::string::npos);
  r = run_sluiced({"-s", "explode"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("unknown signal") != std::string::npos);
}
