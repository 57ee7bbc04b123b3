#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config.h"

using sluice::common::Config;
using sluice::common::ConfigLoad;
using sluice::common::ConfigReader;
using sluice::common::load_config;
using sluice::common::Millis;
using sluice::common::ModuleSchema;
using sluice::common::ModuleSettings;
using sluice::common::parse_config;
using sluice::common::parse_duration;
using sluice::common::parse_size;
using Level = sluice::common::log::Level;

namespace {

// A test module's settings: the section it was handed, whatever it holds.
struct Raw : ModuleSettings {
  explicit Raw(YAML::Node node) : section(std::move(node)) {}
  YAML::Node section;
};

ModuleSchema accepting(const std::string& name) {
  return {name,
          [](ConfigReader&, const YAML::Node& section) { return std::make_shared<Raw>(section); },
          nullptr};
}

const std::vector<ModuleSchema> kModules{accepting("publish"), accepting("queues"),
                                         accepting("stats")};

ConfigLoad parse(const std::string& text) {
  return parse_config(text, "sluice.yaml", kModules);
}

// Every problem as the operator sees it, one per line.
std::string problems_of(const std::string& text) {
  const ConfigLoad load = parse(text);
  std::string out;
  for (const auto& problem : load.problems)
    out += problem.to_string() + "\n";
  if (!out.empty()) BOOST_TEST(!load.ok());
  return out;
}

// A valid listen section, so tests of other sections see only their own problems.
const std::string kListen = "listen:\n  - port: 8000\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(valid)

BOOST_AUTO_TEST_CASE(full_config_reads_every_field) {
  const ConfigLoad load = parse(
      "daemon:\n"
      "  pidfile: /tmp/sluiced.pid\n"
      "  user: root\n"
      "  group: root\n"
      "  error_log: /tmp/error.log\n"
      "  log_level: debug\n"
      "  shutdown_timeout: 2m\n"
      "  working_directory: /tmp\n"
      "rabbitmq:\n"
      "  hosts: [\"10.0.0.1:5673\", rabbit2, \"[::1]:5674\", \"[fe80::2]\", \"::3\"]\n"
      "  heartbeat: 0\n"
      "  confirm_timeout: 250ms\n"
      "redis: { host: redis.local, port: 6380, db: 3, password: s3cret }\n"
      "listen:\n"
      "  - address: ::1\n"
      "    port: 8888\n"
      "    modules: [queues, publish]\n"
      "    max_body_size: 64k\n"
      "    client_timeout: 1h\n"
      "    request_timeout: 90s\n"
      "publish: { confirm: true }\n"
      "stats:\n");
  BOOST_TEST_REQUIRE(load.ok());
  BOOST_TEST(load.problems.empty());
  const auto& c = *load.config;
  BOOST_TEST(c.path == "sluice.yaml");
  BOOST_TEST(c.daemon.pidfile == "/tmp/sluiced.pid");
  BOOST_TEST(c.daemon.user.value_or("") == "root");
  BOOST_TEST(c.daemon.group.value_or("") == "root");
  BOOST_TEST(c.daemon.error_log == "/tmp/error.log");
  BOOST_TEST((c.daemon.log_level == Level::debug));
  BOOST_TEST(c.daemon.shutdown_timeout.count() == 120000);
  BOOST_TEST(c.daemon.working_directory == "/tmp");

  BOOST_TEST_REQUIRE(c.rabbitmq.has_value());
  const auto& hosts = c.rabbitmq->hosts;
  BOOST_TEST_REQUIRE(hosts.size() == 5u);
  BOOST_TEST(hosts[0].host == "10.0.0.1");
  BOOST_TEST(hosts[0].port == 5673);
  BOOST_TEST(hosts[1].host == "rabbit2");
  BOOST_TEST(hosts[1].port == 5672);
  BOOST_TEST(hosts[2].host == "::1");
  BOOST_TEST(hosts[2].port == 5674);
  BOOST_TEST(hosts[3].host == "fe80::2");
  BOOST_TEST(hosts[3].port == 5672);
  BOOST_TEST(hosts[4].host == "::3");
  BOOST_TEST(c.rabbitmq->heartbeat.count() == 0);
  BOOST_TEST(c.rabbitmq->confirm_timeout.count() == 250);

  BOOST_TEST_REQUIRE(c.redis.has_value());
  BOOST_TEST(c.redis->host == "redis.local");
  BOOST_TEST(c.redis->port == 6380);
  BOOST_TEST(c.redis->db == 3);
  BOOST_TEST(c.redis->password == "s3cret");

  BOOST_TEST_REQUIRE(c.listeners.size() == 1u);
  const auto& l = c.listeners[0];
  BOOST_TEST(l.address == "::1");
  BOOST_TEST(l.port == 8888);
  BOOST_TEST((l.modules == std::vector<std::string>{"queues", "publish"}));
  BOOST_TEST(l.max_body_size == 65536u);
  BOOST_TEST(l.client_timeout.count() == 3600000);
  BOOST_TEST(l.request_timeout.count() == 90000);
  BOOST_TEST(l.line == 15);
  BOOST_TEST(l.column == 5);

  // Every module's schema ran, with its section or a null node when the file has none.
  BOOST_TEST(c.module_settings.size() == 3u);
  BOOST_TEST_REQUIRE(c.settings<Raw>("publish"));
  BOOST_TEST(c.settings<Raw>("publish")->section["confirm"].as<bool>());
  BOOST_TEST_REQUIRE(c.settings<Raw>("stats"));
  BOOST_TEST(c.settings<Raw>("stats")->section.IsNull());
  BOOST_TEST_REQUIRE(c.settings<Raw>("queues"));
  BOOST_TEST(c.settings<Raw>("queues")->section.IsNull());
}

BOOST_AUTO_TEST_CASE(defaults) {
  const ConfigLoad load = parse(kListen);
  BOOST_TEST_REQUIRE(load.ok());
  const auto& c = *load.config;
  BOOST_TEST(c.daemon.pidfile == "/run/sluice/sluiced.pid");
  BOOST_TEST(!c.daemon.user.has_value());
  BOOST_TEST(!c.daemon.group.has_value());
  BOOST_TEST(c.daemon.error_log.empty());
  BOOST_TEST((c.daemon.log_level == Level::info));
  BOOST_TEST(c.daemon.shutdown_timeout.count() == 10000);
  BOOST_TEST(c.daemon.working_directory.empty());
  BOOST_TEST(!c.rabbitmq.has_value());
  BOOST_TEST(!c.redis.has_value());
  for (const char* module : {"publish", "queues", "stats"}) {
    BOOST_TEST_REQUIRE(c.settings<Raw>(module), module);
    BOOST_TEST(c.settings<Raw>(module)->section.IsNull(), module);
  }
  BOOST_TEST_REQUIRE(c.listeners.size() == 1u);
  const auto& l = c.listeners[0];
  BOOST_TEST(l.address == "127.0.0.1");
  BOOST_TEST(l.port == 8000);
  BOOST_TEST(l.modules.empty());
  BOOST_TEST(l.max_body_size == 1u << 20);
  BOOST_TEST(l.client_timeout.count() == 60000);
  BOOST_TEST(l.request_timeout.count() == 30000);
  BOOST_TEST(l.line == 2);
  BOOST_TEST(l.column == 5);
}

BOOST_AUTO_TEST_CASE(empty_sections_get_defaults) {
  const ConfigLoad load = parse("daemon:\nrabbitmq: {}\nredis:\n" + kListen);
  BOOST_TEST_REQUIRE(load.ok());
  const auto& c = *load.config;
  BOOST_TEST_REQUIRE(c.rabbitmq.has_value());
  BOOST_TEST_REQUIRE(c.rabbitmq->hosts.size() == 1u);
  BOOST_TEST(c.rabbitmq->hosts[0].host == "127.0.0.1");
  BOOST_TEST(c.rabbitmq->hosts[0].port == 5672);
  BOOST_TEST(c.rabbitmq->heartbeat.count() == 30000);
  BOOST_TEST(c.rabbitmq->confirm_timeout.count() == 5000);
  BOOST_TEST_REQUIRE(c.redis.has_value());
  BOOST_TEST(c.redis->host == "127.0.0.1");
  BOOST_TEST(c.redis->port == 6379);
  BOOST_TEST(c.redis->db == 0);
  BOOST_TEST(c.redis->password.empty());
}

BOOST_AUTO_TEST_CASE(ports_expand_to_one_listener_each) {
  const ConfigLoad load = parse(
      "listen:\n"
      "  - { address: 0.0.0.0, ports: [8000, 8001, 8002], modules: [publish, stats],"
      " max_body_size: 2m }\n"
      "  - { address: 0.0.0.0, port: 8888, modules: [queues] }\n");
  BOOST_TEST_REQUIRE(load.ok());
  const auto& ls = load.config->listeners;
  BOOST_TEST_REQUIRE(ls.size() == 4u);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(ls[i].port == 8000 + i);
    BOOST_TEST(ls[i].address == "0.0.0.0");
    BOOST_TEST((ls[i].modules == std::vector<std::string>{"publish", "stats"}));
    BOOST_TEST(ls[i].max_body_size == 2u << 20);
    BOOST_TEST(ls[i].line == 2);
    BOOST_TEST(ls[i].column == 5);
  }
  BOOST_TEST(ls[3].port == 8888);
  BOOST_TEST(ls[3].line == 3);
}

BOOST_AUTO_TEST_CASE(same_port_on_different_addresses_is_fine) {
  BOOST_TEST(problems_of("listen:\n"
                         "  - { address: 127.0.0.1, port: 8000 }\n"
                         "  - { address: 127.0.0.2, port: 8000 }\n"
                         "  - { address: '::1', port: 8000 }\n") == "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(problems)

BOOST_AUTO_TEST_CASE(problem_to_string) {
  sluice::common::ConfigProblem p{"a.yaml", 3, 7, "redis.port", "must be an integer"};
  BOOST_TEST(p.to_string() == "a.yaml:3:7: redis.port: must be an integer");
  p.line = 0;
  BOOST_TEST(p.to_string() == "a.yaml: redis.port: must be an integer");
}

BOOST_AUTO_TEST_CASE(yaml_syntax_error_has_position) {
  const ConfigLoad load = parse("listen:\n  - port: [8000\n");
  BOOST_TEST(!load.ok());
  BOOST_TEST_REQUIRE(load.problems.size() == 1u);
  const auto& p = load.problems[0];
  BOOST_TEST(p.key == "yaml");
  BOOST_TEST(p.line == 3);
  BOOST_TEST(p.column == 1);
  BOOST_TEST(p.to_string() == "sluice.yaml:3:1: yaml: end of sequence flow not found");
  BOOST_TEST(problems_of("a: b: c\n") == "sluice.yaml:1:5: yaml: illegal map value\n");
}

BOOST_AUTO_TEST_CASE(root_must_be_a_map) {
  BOOST_TEST(problems_of("- a\n- b\n") == "sluice.yaml:1:1: (root): must be a map\n");
  BOOST_TEST(problems_of("") == "sluice.yaml: (root): must be a map\n");
  BOOST_TEST(problems_of("# only a comment\n") == "sluice.yaml: (root): must be a map\n");
}

// yaml-cpp 0.7's LoadAll() loops on a top-level "," until memory runs out; Load() does not.
BOOST_AUTO_TEST_CASE(leading_comma_does_not_hang) {
  BOOST_TEST(problems_of(",") == "sluice.yaml:1:1: (root): must be a map\n");
  BOOST_TEST(problems_of(",a: 1\n") == "sluice.yaml:1:1: (root): must be a map\n");
}

BOOST_AUTO_TEST_CASE(listen_is_required) {
  BOOST_TEST(problems_of("daemon: {}\n") == "sluice.yaml:1:1: listen: is required\n");
  BOOST_TEST(problems_of("listen: []\n") == "sluice.yaml:1:9: listen: must not be empty\n");
  BOOST_TEST(problems_of("listen: {port: 1}\n") == "sluice.yaml:1:9: listen: must be a list\n");
  BOOST_TEST(problems_of("listen:\n  - 8000\n") == "sluice.yaml:2:5: listen[0]: must be a map\n");
}

BOOST_AUTO_TEST_CASE(unknown_keys) {
  BOOST_TEST(problems_of("deamon: {}\n" + kListen) == "sluice.yaml:1:1: deamon: unknown key\n");
  BOOST_TEST(problems_of("daemon: { pid_file: x }\n" + kListen) ==
             "sluice.yaml:1:11: daemon.pid_file: unknown key\n");
  BOOST_TEST(problems_of("rabbitmq: { host: x }\n" + kListen) ==
             "sluice.yaml:1:13: rabbitmq.host: unknown key\n");
  BOOST_TEST(problems_of("redis: { hosts: x }\n" + kListen) ==
             "sluice.yaml:1:10: redis.hosts: unknown key\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, adress: x }\n") ==
             "sluice.yaml:2:16: listen[0].adress: unknown key\n");
  // A module this build does not have is not a valid top-level section either.
  BOOST_TEST(problems_of("push: {}\n" + kListen) == "sluice.yaml:1:1: push: unknown key\n");
}

BOOST_AUTO_TEST_CASE(duplicate_key) {
  BOOST_TEST(problems_of("redis: { port: 1, port: 2 }\n" + kListen) ==
             "sluice.yaml:1:19: redis.port: duplicate key\n");
}

BOOST_AUTO_TEST_CASE(sections_must_be_maps) {
  BOOST_TEST(problems_of("daemon: [a]\n" + kListen) == "sluice.yaml:1:9: daemon: must be a map\n");
  BOOST_TEST(problems_of("rabbitmq: 5\n" + kListen) ==
             "sluice.yaml:1:11: rabbitmq: must be a map\n");
  BOOST_TEST(problems_of("redis: x\n" + kListen) == "sluice.yaml:1:8: redis: must be a map\n");
  BOOST_TEST(problems_of("publish: [1]\n" + kListen) ==
             "sluice.yaml:1:10: publish: must be a map\n");
}

BOOST_AUTO_TEST_CASE(daemon_fields) {
  BOOST_TEST(problems_of("daemon:\n  pidfile: ''\n" + kListen) ==
             "sluice.yaml:2:12: daemon.pidfile: must be a non-empty string\n");
  BOOST_TEST(problems_of("daemon:\n  user: sluice-no-such-user\n" + kListen) ==
             "sluice.yaml:2:9: daemon.user: no such user 'sluice-no-such-user'\n");
  BOOST_TEST(problems_of("daemon:\n  group: sluice-no-such-group\n" + kListen) ==
             "sluice.yaml:2:10: daemon.group: no such group 'sluice-no-such-group'\n");
  BOOST_TEST(problems_of("daemon:\n  error_log: [a]\n" + kListen) ==
             "sluice.yaml:2:14: daemon.error_log: must be a string\n");
  BOOST_TEST(problems_of("daemon:\n  log_level: verbose\n" + kListen) ==
             "sluice.yaml:2:14: daemon.log_level: must be one of debug, info, warn, error\n");
  BOOST_TEST(problems_of("daemon:\n  shutdown_timeout: soon\n" + kListen) ==
             "sluice.yaml:2:21: daemon.shutdown_timeout: "
             "must be a duration such as 500ms, 10s, 2m\n");
  BOOST_TEST(problems_of("daemon:\n  shutdown_timeout: 2h\n" + kListen) ==
             "sluice.yaml:2:21: daemon.shutdown_timeout: must be between 0s and 3600s\n");
  BOOST_TEST(problems_of("daemon:\n  working_directory: var/lib\n" + kListen) ==
             "sluice.yaml:2:22: daemon.working_directory: must be an absolute path\n");
}

BOOST_AUTO_TEST_CASE(rabbitmq_fields) {
  BOOST_TEST(problems_of("rabbitmq:\n  hosts: []\n" + kListen) ==
             "sluice.yaml:2:10: rabbitmq.hosts: must not be empty\n");
  BOOST_TEST(problems_of("rabbitmq:\n  hosts: localhost\n" + kListen) ==
             "sluice.yaml:2:10: rabbitmq.hosts: must be a list\n");
  BOOST_TEST(problems_of("rabbitmq:\n  hosts: [a, 'b:0', 'c:x', ':5672', {d: 1}, 'e:70000']\n" +
                         kListen) ==
             "sluice.yaml:2:14: rabbitmq.hosts[1]: port must be between 1 and 65535\n"
             "sluice.yaml:2:21: rabbitmq.hosts[2]: port must be between 1 and 65535\n"
             "sluice.yaml:2:28: rabbitmq.hosts[3]: must be \"host\" or \"host:port\"\n"
             "sluice.yaml:2:37: rabbitmq.hosts[4]: must be a string\n"
             "sluice.yaml:2:45: rabbitmq.hosts[5]: port must be between 1 and 65535\n");
  BOOST_TEST(problems_of("rabbitmq:\n  hosts: ['[::1', '[::1]x', 'a:']\n" + kListen) ==
             "sluice.yaml:2:11: rabbitmq.hosts[0]: must be \"host\" or \"host:port\"\n"
             "sluice.yaml:2:19: rabbitmq.hosts[1]: must be \"host\" or \"host:port\"\n"
             "sluice.yaml:2:29: rabbitmq.hosts[2]: must be \"host\" or \"host:port\"\n");
  BOOST_TEST(problems_of("rabbitmq:\n  heartbeat: 3601\n" + kListen) ==
             "sluice.yaml:2:14: rabbitmq.heartbeat: must be between 0s and 3600s\n");
  BOOST_TEST(problems_of("rabbitmq:\n  confirm_timeout: 99ms\n" + kListen) ==
             "sluice.yaml:2:20: rabbitmq.confirm_timeout: must be between 100ms and 600s\n");
  BOOST_TEST(problems_of("rabbitmq:\n  confirm_timeout: -1s\n" + kListen) ==
             "sluice.yaml:2:20: rabbitmq.confirm_timeout: "
             "must be a duration such as 500ms, 10s, 2m\n");
}

BOOST_AUTO_TEST_CASE(redis_fields) {
  BOOST_TEST(problems_of("redis:\n  host: ''\n" + kListen) ==
             "sluice.yaml:2:9: redis.host: must be a non-empty string\n");
  BOOST_TEST(problems_of("redis:\n  port: http\n" + kListen) ==
             "sluice.yaml:2:9: redis.port: must be an integer\n");
  BOOST_TEST(problems_of("redis:\n  port: 65536\n" + kListen) ==
             "sluice.yaml:2:9: redis.port: must be between 1 and 65535\n");
  BOOST_TEST(problems_of("redis:\n  db: 1024\n" + kListen) ==
             "sluice.yaml:2:7: redis.db: must be between 0 and 1023\n");
  BOOST_TEST(problems_of("redis:\n  db: -1\n" + kListen) ==
             "sluice.yaml:2:7: redis.db: must be between 0 and 1023\n");
  BOOST_TEST(problems_of("redis:\n  db: 1.5\n" + kListen) ==
             "sluice.yaml:2:7: redis.db: must be an integer\n");
  BOOST_TEST(problems_of("redis:\n  password: {a: b}\n" + kListen) ==
             "sluice.yaml:2:13: redis.password: must be a string\n");
}

BOOST_AUTO_TEST_CASE(listen_fields) {
  BOOST_TEST(problems_of("listen:\n  - { address: localhost, port: 1 }\n") ==
             "sluice.yaml:2:16: listen[0].address: must be an IPv4 or IPv6 address\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 0 }\n") ==
             "sluice.yaml:2:13: listen[0].port: must be between 1 and 65535\n");
  BOOST_TEST(problems_of("listen:\n  - { port: [1] }\n") ==
             "sluice.yaml:2:13: listen[0].port: must be an integer\n");
  BOOST_TEST(problems_of("listen:\n  - { ports: 1 }\n") ==
             "sluice.yaml:2:14: listen[0].ports: must be a list\n");
  BOOST_TEST(problems_of("listen:\n  - { ports: [] }\n") ==
             "sluice.yaml:2:14: listen[0].ports: must not be empty\n");
  BOOST_TEST(problems_of("listen:\n  - { ports: [1, x, 70000] }\n") ==
             "sluice.yaml:2:18: listen[0].ports[1]: must be an integer\n"
             "sluice.yaml:2:21: listen[0].ports[2]: must be between 1 and 65535\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, ports: [2] }\n") ==
             "sluice.yaml:2:23: listen[0].ports: cannot be used together with port\n");
  BOOST_TEST(problems_of("listen:\n  - { address: 127.0.0.1 }\n") ==
             "sluice.yaml:2:5: listen[0].port: is required (or ports)\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, max_body_size: lots }\n") ==
             "sluice.yaml:2:31: listen[0].max_body_size: must be a size such as 512k, 10m\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, max_body_size: 0 }\n") ==
             "sluice.yaml:2:31: listen[0].max_body_size: must be between 1 and 1g\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, max_body_size: 1025m }\n") ==
             "sluice.yaml:2:31: listen[0].max_body_size: must be between 1 and 1g\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, client_timeout: 500ms }\n") ==
             "sluice.yaml:2:32: listen[0].client_timeout: must be between 1s and 3600s\n");
}

BOOST_AUTO_TEST_CASE(listen_modules) {
  BOOST_TEST(problems_of("listen:\n  - { port: 1, modules: publish }\n") ==
             "sluice.yaml:2:25: listen[0].modules: must be a list\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, modules: [publish, push] }\n") ==
             "sluice.yaml:2:35: listen[0].modules[1]: "
             "unknown module 'push' (known: publish, queues, stats)\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, modules: [stats, stats] }\n") ==
             "sluice.yaml:2:33: listen[0].modules[1]: duplicate module 'stats'\n");
  BOOST_TEST(problems_of("listen:\n  - { port: 1, modules: [[a]] }\n") ==
             "sluice.yaml:2:26: listen[0].modules[0]: must be a string\n");
  const ConfigLoad load = parse_config("listen:\n  - { port: 1, modules: [x] }\n", "f", {});
  BOOST_TEST_REQUIRE(load.problems.size() == 1u);
  BOOST_TEST(load.problems[0].reason == "unknown module 'x' (known: none)");
}

BOOST_AUTO_TEST_CASE(port_used_twice) {
  BOOST_TEST(problems_of("listen:\n"
                         "  - { address: 127.0.0.1, ports: [8000, 8001] }\n"
                         "  - { port: 8001 }\n"
                         "  - { address: '::1', port: 9000 }\n"
                         "  - { address: '0:0::1', ports: [9000] }\n") ==
             "sluice.yaml:3:13: listen[1].port: port 8001 on 127.0.0.1 is already used by "
             "listen[0]\n"
             "sluice.yaml:5:34: listen[3].ports[0]: port 9000 on 0:0::1 is already used by "
             "listen[2]\n");
  BOOST_TEST(problems_of("listen:\n  - { ports: [8000, 8000] }\n") ==
             "sluice.yaml:2:21: listen[0].ports[1]: port 8000 on 127.0.0.1 is already used by "
             "listen[0]\n");
}

BOOST_AUTO_TEST_CASE(every_problem_is_reported_in_file_order) {
  const ConfigLoad load = parse(
      "redis:\n"
      "  port: 0\n"
      "  db: x\n"
      "daemon:\n"
      "  log_level: loud\n"
      "  bogus: 1\n"
      "listen:\n"
      "  - { port: 8000, address: nowhere }\n"
      "  - { port: 8000 }\n"
      "  - { }\n");
  BOOST_TEST(!load.ok());
  BOOST_TEST(load.config == nullptr);
  std::string out;
  for (const auto& p : load.problems)
    out += p.to_string() + "\n";
  BOOST_TEST(out ==
             "sluice.yaml:2:9: redis.port: must be between 1 and 65535\n"
             "sluice.yaml:3:7: redis.db: must be an integer\n"
             "sluice.yaml:5:14: daemon.log_level: must be one of debug, info, warn, error\n"
             "sluice.yaml:6:3: daemon.bogus: unknown key\n"
             "sluice.yaml:8:28: listen[0].address: must be an IPv4 or IPv6 address\n"
             "sluice.yaml:10:5: listen[2].port: is required (or ports)\n");
}

BOOST_AUTO_TEST_SUITE_END()

// A module's section is read by its own schema with the same reader as the core sections.
BOOST_AUTO_TEST_SUITE(modules)

namespace {

using sluice::common::Bounds;
namespace kind = sluice::common::kind;

struct Mode : ModuleSettings {
  int64_t mode = 1;
  bool loud = false;
};

ModuleSchema mode_schema() {
  return {"publish",
          [](ConfigReader& r, const YAML::Node& section) {
            auto s = std::make_shared<Mode>();
            r.walk(section, "publish", true,
                   {{"mode",
                     [&](const auto& v, const auto& k) {
                       r.read<kind::Int>(v, k, s->mode, Bounds<kind::Int>{1, 2});
                     }},
                    {"loud",
                     [&](const auto& v, const auto& k) { r.read<kind::Bool>(v, k, s->loud); }}});
            return s;
          },
          nullptr};
}

// A memory store serves one worker only: a whole-file rule, over the module's own section
// and the listen section, which may come later in the file.
struct Store : ModuleSettings {
  std::string store = "redis";
  YAML::Mark mark = YAML::Mark::null_mark();
};

ModuleSchema store_schema(bool throwing_check = false) {
  ModuleSchema schema{"memstore",
                      [](ConfigReader& r, const YAML::Node& section) {
                        auto s = std::make_shared<Store>();
                        r.walk(section, "memstore", true,
                               {{"store", [&](const auto& v, const auto& k) {
                                   if (r.read<kind::String>(v, k, s->store)) s->mark = v.Mark();
                                 }}});
                        return s;
                      },
                      nullptr};
  schema.check = [throwing_check](ConfigReader& r, const Config& config) {
    if (throwing_check) throw std::runtime_error("check broke");
    const auto s = config.settings<Store>("memstore");
    if (!s || s->store != "memory") return;
    size_t serving = 0;
    for (const auto& l : config.listeners) {
      const auto& m = l.modules;
      if (m.empty() || std::find(m.begin(), m.end(), "memstore") != m.end()) ++serving;
    }
    if (serving > 1) {
      r.add(s->mark, "memstore.store",
            "memory is refused when more than one worker serves memstore (" +
                std::to_string(serving) + " do)");
    }
  };
  return schema;
}

std::string problems_with(const std::vector<ModuleSchema>& modules, const std::string& text) {
  const ConfigLoad load = parse_config(text, "sluice.yaml", modules);
  std::string out;
  for (const auto& problem : load.problems)
    out += problem.to_string() + "\n";
  BOOST_TEST(load.ok() == out.empty());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(settings_are_typed_and_kept_in_the_config) {
  const ConfigLoad load = parse_config("publish: { mode: 2, loud: yes }\n" + kListen, "sluice.yaml",
                                       {mode_schema(), accepting("stats")});
  BOOST_TEST_REQUIRE(load.ok());
  const auto mode = load.config->settings<Mode>("publish");
  BOOST_TEST_REQUIRE(mode);
  BOOST_TEST(mode->mode == 2);
  BOOST_TEST(mode->loud);
  BOOST_TEST(!load.config->settings<Raw>("publish"));  // another module's type
  BOOST_TEST(!load.config->settings<Mode>("nothere"));
  BOOST_TEST(load.config->settings<Raw>("stats"));
  // Absent: the schema still runs, so its defaults are there.
  const ConfigLoad absent = parse_config(kListen, "sluice.yaml", {mode_schema()});
  BOOST_TEST_REQUIRE(absent.ok());
  BOOST_TEST(absent.config->settings<Mode>("publish")->mode == 1);
}

BOOST_AUTO_TEST_CASE(every_module_problem_is_at_its_own_position_in_file_order) {
  BOOST_TEST(problems_with({mode_schema()},
                           "redis: { port: 0 }\n"
                           "publish:\n"
                           "  mode: 3\n"
                           "  loud: sometimes\n"
                           "  quiet: 1\n"
                           "  mode: 1\n" +
                               kListen + "daemon: { bogus: 1 }\n") ==
             "sluice.yaml:1:16: redis.port: must be between 1 and 65535\n"
             "sluice.yaml:3:9: publish.mode: must be between 1 and 2\n"
             "sluice.yaml:4:9: publish.loud: must be true or false\n"
             "sluice.yaml:5:3: publish.quiet: unknown key\n"
             "sluice.yaml:6:3: publish.mode: duplicate key\n"
             "sluice.yaml:9:11: daemon.bogus: unknown key\n");
  // Not a map: the core says so once, and the module is not asked to read it.
  BOOST_TEST(problems_with({mode_schema()}, "publish: 5\n" + kListen) ==
             "sluice.yaml:1:10: publish: must be a map\n");
}

BOOST_AUTO_TEST_CASE(a_module_that_throws_is_a_problem_at_its_section) {
  const ModuleSchema throws_std{"boom",
                                [](ConfigReader&, const YAML::Node&) {
                                  throw std::runtime_error("kaput");
                                  return std::shared_ptr<const ModuleSettings>();
                                },
                                nullptr};
  // yaml-cpp's own exception, from an unchecked conversion inside the module.
  const ModuleSchema throws_yaml{"conv",
                                 [](ConfigReader&, const YAML::Node& section) {
                                   section["n"].as<int>();
                                   return std::shared_ptr<const ModuleSettings>();
                                 },
                                 nullptr};
  const ModuleSchema throws_other{"odd",
                                  [](ConfigReader&, const YAML::Node&) {
                                    throw 42;
                                    return std::shared_ptr<const ModuleSettings>();
                                  },
                                  nullptr};
  const std::string out = problems_with({throws_std, mode_schema(), throws_yaml, throws_other},
                                        "boom: { a: 1 }\n"
                                        "publish: { mode: 9 }\n"
                                        "conv:\n"
                                        "  n: x\n" +
                                            kListen);
  // "odd" has no section: its problem has no position, so it comes first.
  BOOST_TEST(out ==
                 "sluice.yaml: odd: cannot be read: unknown exception\n"
                 "sluice.yaml:1:7: boom: cannot be read: kaput\n"
                 "sluice.yaml:2:18: publish.mode: must be between 1 and 2\n"
                 "sluice.yaml:4:3: conv: cannot be read: yaml-cpp: error at line 4, column 6: "
                 "bad conversion\n",
             out);
}

BOOST_AUTO_TEST_CASE(a_cross_module_check_runs_after_the_whole_file) {
  const std::string section = "memstore:\n  store: memory\n";
  // The listen section comes after the module's: the check still sees every listener.
  BOOST_TEST(problems_with({store_schema()}, section +
                                                 "listen:\n"
                                                 "  - { port: 8000 }\n"
                                                 "  - { port: 8001, modules: [memstore] }\n") ==
             "sluice.yaml:2:10: memstore.store: memory is refused when more than one worker "
             "serves memstore (2 do)\n");
  BOOST_TEST(problems_with({store_schema(), accepting("stats")},
                           section + "listen:\n"
                                     "  - { port: 8000, modules: [memstore] }\n"
                                     "  - { port: 8001, modules: [stats] }\n") == "");
  BOOST_TEST(problems_with({store_schema()},
                           "memstore: { store: redis }\n"
                           "listen: [{ port: 8000 }, { port: 8001 }]\n") == "");
  // Checks run when other sections have problems too, so every problem shows at once.
  BOOST_TEST(problems_with({store_schema()}, "redis: { port: 0 }\n" + section +
                                                 "listen: [{ port: 1 }, { port: 2 }]\n") ==
             "sluice.yaml:1:16: redis.port: must be between 1 and 65535\n"
             "sluice.yaml:3:10: memstore.store: memory is refused when more than one worker "
             "serves memstore (2 do)\n");
}

BOOST_AUTO_TEST_CASE(a_check_that_throws_is_a_problem_at_its_section) {
  BOOST_TEST(problems_with({store_schema(true)}, "daemon: {}\nmemstore: {}\n" + kListen) ==
             "sluice.yaml:2:11: memstore: cannot be checked: check broke\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(files)

BOOST_AUTO_TEST_CASE(unreadable_file) {
  const ConfigLoad load = load_config("/nonexistent/sluice.yaml", kModules);
  BOOST_TEST(!load.ok());
  BOOST_TEST_REQUIRE(load.problems.size() == 1u);
  BOOST_TEST(load.problems[0].line == 0);
  BOOST_TEST(load.problems[0].to_string() ==
             "/nonexistent/sluice.yaml: file: cannot read: No such file or directory");
  const ConfigLoad dir = load_config("/", kModules);
  BOOST_TEST_REQUIRE(dir.problems.size() == 1u);
  BOOST_TEST(dir.problems[0].to_string() == "/: file: cannot read: Is a directory");
}

BOOST_AUTO_TEST_CASE(loads_a_file) {
  char path[] = "/tmp/sluice_config_test_XXXXXX";
  const int fd = mkstemp(path);
  BOOST_TEST_REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << "listen:\n  - { port: 8000 }\n  - { port: 0 }\n";
  const ConfigLoad bad = load_config(path, kModules);
  BOOST_TEST_REQUIRE(bad.problems.size() == 1u);
  BOOST_TEST(bad.problems[0].to_string() ==
             std::string(path) + ":3:13: listen[1].port: must be between 1 and 65535");
  std::ofstream(path) << "listen:\n  - { port: 8000 }\n";
  const ConfigLoad good = load_config(path, kModules);
  std::remove(path);
  BOOST_TEST_REQUIRE(good.ok());
  BOOST_TEST(good.config->path == path);
  BOOST_TEST(good.config->listeners.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scalars)

BOOST_AUTO_TEST_CASE(durations) {
  Millis ms{-1};
  BOOST_TEST(parse_duration("250ms", ms));
  BOOST_TEST(ms.count() == 250);
  BOOST_TEST(parse_duration("5s", ms));
  BOOST_TEST(ms.count() == 5000);
  BOOST_TEST(parse_duration("2m", ms));
  BOOST_TEST(ms.count() == 120000);
  BOOST_TEST(parse_duration("1h", ms));
  BOOST_TEST(ms.count() == 3600000);
  BOOST_TEST(parse_duration("7", ms));
  BOOST_TEST(ms.count() == 7000);
  BOOST_TEST(parse_duration("0", ms));
  BOOST_TEST(ms.count() == 0);
  BOOST_TEST(parse_duration("0ms", ms));
  BOOST_TEST(ms.count() == 0);

  ms = Millis{42};
  for (const char* bad :
       {"", "-1", "-1s", "+1s", "s", "ms", "1.5s", "1 s", " 1s", "1s ", "1S", "1d", "1sec", "10x",
        "0x10", "1h1m", "9223372036854775808ms", "9223372036854776s", "99999999999999999999"}) {
    BOOST_TEST(!parse_duration(bad, ms), "accepted '" << bad << "'");
  }
  BOOST_TEST(ms.count() == 42);  // untouched on failure
  BOOST_TEST(parse_duration("9223372036854775807ms", ms));
  BOOST_TEST(ms.count() == 9223372036854775807LL);
}

BOOST_AUTO_TEST_CASE(sizes) {
  uint64_t n = 0;
  BOOST_TEST(parse_size("0", n));
  BOOST_TEST(n == 0u);
  BOOST_TEST(parse_size("512", n));
  BOOST_TEST(n == 512u);
  BOOST_TEST(parse_size("64k", n));
  BOOST_TEST(n == 65536u);
  BOOST_TEST(parse_size("64K", n));
  BOOST_TEST(n == 65536u);
  BOOST_TEST(parse_size("10m", n));
  BOOST_TEST(n == 10u << 20);
  BOOST_TEST(parse_size("10M", n));
  BOOST_TEST(n == 10u << 20);
  BOOST_TEST(parse_size("1g", n));
  BOOST_TEST(n == 1u << 30);
  BOOST_TEST(parse_size("3G", n));
  BOOST_TEST(n == uint64_t{3} << 30);
  BOOST_TEST(parse_size("18446744073709551615", n));
  BOOST_TEST(n == 18446744073709551615ULL);

  n = 42;
  for (const char* bad : {"", "k", "-1", "+1", "1.5m", "1kb", "1 k", "k1", "1t", "abc",
                          "18446744073709551616", "17179869184g", "18014398509481984k"}) {
    BOOST_TEST(!parse_size(bad, n), "accepted '" << bad << "'");
  }
  BOOST_TEST(n == 42u);
}

BOOST_AUTO_TEST_SUITE_END()
