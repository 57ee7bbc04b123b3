#pragma once
// The configuration model. The whole YAML file is parsed into these plain structs, then
// validated as a whole (types, bounds, unknown keys, cross-field rules); every problem is
// reported with its position as "FILE:LINE:COL: key: reason". `sluiced -t` runs exactly
// this path, and SIGHUP keeps the old Config when the new one has problems.
//
// The core sections (daemon, rabbitmq, redis, listen) are read here; each module's section
// is read by the module's own ModuleSchema with the same ConfigReader, and its typed
// settings are kept in the Config for the module to get back at start.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_reader.h"
#include "common/log.h"

namespace sluice::common {

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

// What a module's section parses into; each module derives its own (see ModuleSchema).
struct ModuleSettings {
  virtual ~ModuleSettings() = default;
};

struct Config;

// How one module reads its top-level section, after Redis's config table: a name, a parser
// and an optional whole-file check. Handed to parse_config() by whoever knows the modules
// (the worker registry), so common/ never depends on a module.
struct ModuleSchema {
  std::string name;  // the top-level section and the name listen[].modules uses
  // Reads the section: a map, or a null node when the file has none (or it is empty), so
  // defaults come from here too. Every problem goes to `reader` at its own position, keys
  // starting with `name`. Returns what Config::settings() gives back (null: no settings).
  // An exception becomes a problem at the section.
  std::function<std::shared_ptr<const ModuleSettings>(ConfigReader& reader,
                                                      const YAML::Node& section)>
      parse;
  // Optional: runs once the whole file is parsed, every module's settings in place, for
  // rules that span sections ("a memory store needs exactly one worker"). It runs even when
  // other parts have problems, so it must cope with a module's settings being null.
  std::function<void(ConfigReader& reader, const Config& config)> check;
};

struct Config {
  std::string path;
  DaemonConfig daemon;
  std::optional<RabbitmqConfig> rabbitmq;  // set when the file has a rabbitmq section
  std::optional<RedisConfig> redis;        // set when the file has a redis section
  std::vector<ListenConfig> listeners;
  // What each module's schema parsed, by module name (every schema has an entry).
  std::map<std::string, std::shared_ptr<const ModuleSettings>, std::less<>> module_settings;

  // The settings `module` parsed, as the module's own type; null when it has none (or they
  // are of another type).
  template <class T>
  std::shared_ptr<const T> settings(std::string_view module) const {
    const auto it = module_settings.find(module);
    if (it == module_settings.end()) return nullptr;
    return std::dynamic_pointer_cast<const T>(it->second);
  }
};

struct ConfigLoad {
  std::shared_ptr<const Config> config;  // null when there is any problem
  std::vector<ConfigProblem> problems;
  bool ok() const { return config != nullptr; }
};

// Parses and validates `text`; `file` names it in problems. `modules` are the modules this
// build has: their names are the only other top-level sections and listen[].modules
// entries allowed. Never throws: whatever yaml-cpp or a module throws is a problem.
ConfigLoad parse_config(const std::string& text, const std::string& file,
                        const std::vector<ModuleSchema>& modules);
// Reads the file, then parse_config().
ConfigLoad load_config(const std::string& path, const std::vector<ModuleSchema>& modules);

}  // namespace sluice::common
