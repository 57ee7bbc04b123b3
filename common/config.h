#pragma once
// The configuration model. The whole YAML file is parsed into these plain structs, then
// validated as a whole (types, bounds, unknown keys, cross-field rules); every problem is
// reported with its position as "FILE:LINE:COL: key: reason". `sluiced -t` runs exactly
// this path, and SIGHUP keeps the old Config when the new one has problems.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"

namespace sluice::common {

using Millis = std::chrono::milliseconds;

struct ConfigProblem {
  std::string file;
  int line = 0;     // 1-based; 0 when the problem has no position (file unreadable)
  int column = 0;   // 1-based
  std::string key;  // dotted path from the root: "listen[1].ports[0]", "daemon.user"
  std::string reason;
  // "FILE:LINE:COL: key: reason"
  std::string to_string() const;
};

struct DaemonConfig {
  std::string pidfile = "/run/sluice/sluiced.pid";
  std::optional<std::string> user;   // workers run as this user; required when started as root
  std::optional<std::string> group;  // default: the user's primary group
  std::string error_log;             // empty: stderr
  log::Level log_level = log::Level::info;
  Millis shutdown_timeout{10000};  // 0..3600 s
  std::string working_directory;   // workers chdir() here after dropping privileges; empty: none
};

struct RabbitHost {
  std::string host;
  uint16_t port = 5672;
};

struct RabbitmqConfig {
  std::vector<RabbitHost> hosts{{"127.0.0.1", 5672}};  // tried in order
  Millis heartbeat{30000};                             // 0 (off) .. 3600 s
  Millis confirm_timeout{5000};                        // 100 ms .. 600 s
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;            // 0..1023
  std::string password;  // never logged; empty: no AUTH
};

// One per port: `ports: [8000, 8001]` expands to two ListenConfig.
struct ListenConfig {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 0;
  std::vector<std::string> modules;  // empty: every module the build knows
  uint64_t max_body_size = 1 << 20;  // bytes, 1 .. 1 GiB; accepts 512, "64k", "10m", "1g"
  Millis client_timeout{60000};      // idle read timeout, 1 .. 3600 s
  // The whole request (line, headers and body) must arrive within this of its first line,
  // however it trickles in (client_timeout restarts with every byte); past it, 408.
  Millis request_timeout{30000};  // 1 .. 3600 s
  int line = 0;                   // where the listen entry starts, for later messages
  int column = 0;
};

struct Config {
  std::string path;
  DaemonConfig daemon;
  std::optional<RabbitmqConfig> rabbitmq;  // set when the file has a rabbitmq section
  std::optional<RedisConfig> redis;        // set when the file has a redis section
  std::vector<ListenConfig> listeners;
  // Sections named after a module (publish, queues, push, ...), kept raw for the module's
  // own configure(); the worker registry validates them.
  std::map<std::string, YAML::Node> module_sections;
};

struct ConfigLoad {
  std::shared_ptr<const Config> config;  // null when there is any problem
  std::vector<ConfigProblem> problems;
  bool ok() const { return config != nullptr; }
};

// Parses and validates `text`; `file` names it in problems. `known_modules` are the module
// names this build has: anything else in listen[].modules or at the top level is an error.
ConfigLoad parse_config(const std::string& text, const std::string& file,
                        const std::vector<std::string>& known_modules);
// Reads the file, then parse_config().
ConfigLoad load_config(const std::string& path, const std::vector<std::string>& known_modules);

// "250ms", "5s", "2m", "1h", or a bare integer meaning seconds.
bool parse_duration(const std::string& text, Millis& out);
// "1024", "64k", "10m", "1g" (powers of 1024, case-insensitive).
bool parse_size(const std::string& text, uint64_t& out);

}  // namespace sluice::common
