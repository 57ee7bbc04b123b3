#include "common/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

namespace sluice::common {

namespace {

using kind::Duration;
using kind::Int;
using kind::NonEmptyString;
using kind::Size;
using kind::String;
using Field = ConfigReader::Field;

constexpr Bounds<Int> kRedisDbBounds{0, 1023};
constexpr Bounds<Size> kBodySizeBounds{1, uint64_t{1} << 30};
constexpr Bounds<Duration> kShutdownBounds{Millis{0}, std::chrono::seconds{3600}};
constexpr Bounds<Duration> kHeartbeatBounds{Millis{0}, std::chrono::seconds{3600}};
constexpr Bounds<Duration> kConfirmBounds{Millis{100}, std::chrono::seconds{600}};
constexpr Bounds<Duration> kClientTimeoutBounds{std::chrono::seconds{1},
                                                std::chrono::seconds{3600}};

// Family byte + address bytes, so "::1" and "0:0::1" compare equal. Empty when invalid.
std::string normalize_address(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    return "4" + std::string(reinterpret_cast<char*>(buf), sizeof(in_addr));
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return "6" + std::string(reinterpret_cast<char*>(buf), sizeof(in6_addr));
  }
  return {};
}

// Where one port of one listen entry was written, for the cross-field check.
struct PortUse {
  std::string address;     // as written
  std::string normalized;  // empty when the address is invalid
  uint16_t port;
  size_t entry;
  YAML::Mark mark;
  std::string key;
};

class Parser {
 public:
  Parser(ConfigReader& reader, const std::vector<ModuleSchema>& modules)
      : r_(reader), modules_(modules) {}

  void parse(const std::string& text, Config& config);

 private:
  void parse_root(const YAML::Node& root, Config& config);
  void parse_daemon(const YAML::Node& node, DaemonConfig& daemon);
  void parse_rabbitmq(const YAML::Node& node, RabbitmqConfig& rabbitmq);
  void parse_rabbit_hosts(const YAML::Node& node, const std::string& key,
                          std::vector<RabbitHost>& hosts);
  void parse_redis(const YAML::Node& node, RedisConfig& redis);
  void parse_listen_entry(const YAML::Node& node, size_t index,
                          std::vector<ListenConfig>& listeners);
  void parse_module_names(const YAML::Node& node, const std::string& key,
                          std::vector<std::string>& names);
  void check_port_conflicts();
  void parse_modules(const std::map<std::string, YAML::Node>& sections, Config& config);
  void guarded(const YAML::Node& where, const std::string& key, const std::string& what,
               const std::function<void()>& body);

  ConfigReader& r_;
  const std::vector<ModuleSchema>& modules_;
  std::vector<PortUse> port_uses_;
};

void Parser::parse(const std::string& text, Config& config) {
  try {
    // Load(), not LoadAll(): yaml-cpp 0.7's LoadAll() never consumes a top-level ","
    // and builds empty documents until memory runs out.
    parse_root(YAML::Load(text), config);
  } catch (const YAML::Exception& e) {
    // A syntax error (ParserException) lands here with its mark. Every expected conversion
    // is checked by the reader; anything else from yaml-cpp is still a problem, not a crash.
    r_.add(e.mark, "yaml", e.msg);
  } catch (const std::exception& e) {
    // sluiced -t and SIGHUP must report, never die, whatever the file holds.
    r_.add(YAML::Mark::null_mark(), "config", e.what());
  } catch (...) {
    r_.add(YAML::Mark::null_mark(), "config", "unknown exception");
  }
}

void Parser::parse_root(const YAML::Node& root, Config& config) {
  bool has_listen = false;
  std::map<std::string, YAML::Node> sections;  // by module name, for the modules' own parse
  std::vector<Field> fields = {
      {"daemon", [&](const YAML::Node& v, const auto&) { parse_daemon(v, config.daemon); }},
      {"rabbitmq",
       [&](const YAML::Node& v, const auto&) { parse_rabbitmq(v, config.rabbitmq.emplace()); }},
      {"redis", [&](const YAML::Node& v, const auto&) { parse_redis(v, config.redis.emplace()); }},
      {"listen",
       [&](const YAML::Node& v, const std::string& k) {
         has_listen = true;
         size_t index = 0;
         r_.list(v, k, false, [&](const YAML::Node& entry, const std::string&) {
           parse_listen_entry(entry, index++, config.listeners);
         });
       }},
  };
  for (const auto& module : modules_) {
    fields.push_back({module.name, [&](const YAML::Node& v, const std::string& key) {
                        // A module reads a map, or a null node, never anything else.
                        if (v.IsMap() || v.IsNull()) {
                          sections[module.name] = v;
                        } else {
                          r_.add(v, key, "must be a map");
                        }
                      }});
  }
  if (!r_.walk(root, "", false, fields)) return;
  if (!has_listen) r_.add(root, "listen", "is required");
  check_port_conflicts();
  parse_modules(sections, config);
}

// Every module reads its section (null when absent, so its defaults are set too), then the
// whole-file checks run with every module's settings in place.
void Parser::parse_modules(const std::map<std::string, YAML::Node>& sections, Config& config) {
  const auto section_of = [&](const std::string& name) {
    const auto it = sections.find(name);
    return it == sections.end() ? YAML::Node() : it->second;
  };
  for (const auto& module : modules_) {
    std::shared_ptr<const ModuleSettings> settings;
    if (module.parse) {
      guarded(section_of(module.name), module.name, "cannot be read",
              [&] { settings = module.parse(r_, section_of(module.name)); });
    }
    config.module_settings[module.name] = std::move(settings);
  }
  for (const auto& module : modules_) {
    if (!module.check) continue;
    guarded(section_of(module.name), module.name, "cannot be checked",
            [&] { module.check(r_, config); });
  }
}

// Module code is not ours to trust: whatever it throws is a problem at its section, so
// `sluiced -t` reports it and a SIGHUP keeps the running config instead of killing the
// supervisor.
void Parser::guarded(const YAML::Node& where, const std::string& key, const std::string& what,
                     const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    r_.add(where, key, what + ": " + e.what());
  } catch (...) {
    r_.add(where, key, what + ": unknown exception");
  }
}

void Parser::parse_daemon(const YAML::Node& node, DaemonConfig& daemon) {
  r_.walk(node, "daemon", true,
          {
              {"pidfile", [&](const auto& v,
                              const auto& k) { r_.read<NonEmptyString>(v, k, daemon.pidfile); }},
              {"user",
               [&](const auto& v, const auto& k) {
                 std::string user;
                 if (!r_.read<String>(v, k, user)) return;
                 if (getpwnam(user.c_str()) == nullptr) r_.add(v, k, "no such user '" + user + "'");
                 daemon.user = user;
               }},
              {"group",
               [&](const auto& v, const auto& k) {
                 std::string group;
                 if (!r_.read<String>(v, k, group)) return;
                 if (getgrnam(group.c_str()) == nullptr) {
                   r_.add(v, k, "no such group '" + group + "'");
                 }
                 daemon.group = group;
               }},
              {"error_log",
               [&](const auto& v, const auto& k) { r_.read<String>(v, k, daemon.error_log); }},
              {"log_level",
               [&](const auto& v, const auto& k) {
                 std::string level;
                 if (r_.read<String>(v, k, level) && !log::parse_level(level, daemon.log_level)) {
                   r_.add(v, k, "must be one of debug, info, warn, error");
                 }
               }},
              {"shutdown_timeout",
               [&](const auto& v, const auto& k) {
                 r_.read<Duration>(v, k, daemon.shutdown_timeout, kShutdownBounds);
               }},
              {"working_directory",
               [&](const auto& v, const auto& k) {
                 // Workers chdir() after dropping privileges, long after the supervisor's own
                 // working directory could have given a relative path a meaning.
                 if (r_.read<String>(v, k, daemon.working_directory) &&
                     daemon.working_directory.rfind('/', 0) != 0) {
                   r_.add(v, k, "must be an absolute path");
                 }
               }},
          });
}

void Parser::parse_rabbitmq(const YAML::Node& node, RabbitmqConfig& rabbitmq) {
  r_.walk(node, "rabbitmq", true,
          {
              {"hosts",
               [&](const auto& v, const auto& k) { parse_rabbit_hosts(v, k, rabbitmq.hosts); }},
              {"heartbeat",
               [&](const auto& v, const auto& k) {
                 r_.read<Duration>(v, k, rabbitmq.heartbeat, kHeartbeatBounds);
               }},
              {"confirm_timeout",
               [&](const auto& v, const auto& k) {
                 r_.read<Duration>(v, k, rabbitmq.confirm_timeout, kConfirmBounds);
               }},
          });
}

void Parser::parse_rabbit_hosts(const YAML::Node& node, const std::string& key,
                                std::vector<RabbitHost>& hosts) {
  std::vector<RabbitHost> read;
  const bool is_list = r_.list(node, key, false, [&](const YAML::Node& item, const auto& k) {
    kind::HostPort::Value value;
    if (!r_.read<kind::HostPort>(item, k, value)) return;
    RabbitHost host;
    host.host = value.host;
    host.port = value.port.value_or(host.port);
    read.push_back(host);
  });
  if (is_list) hosts = std::move(read);
}

void Parser::parse_redis(const YAML::Node& node, RedisConfig& redis) {
  r_.walk(node, "redis", true,
          {
              {"host",
               [&](const auto& v, const auto& k) { r_.read<NonEmptyString>(v, k, redis.host); }},
              {"port",
               [&](const auto& v, const auto& k) { r_.read<Int>(v, k, redis.port, kPortBounds); }},
              {"db",
               [&](const auto& v, const auto& k) { r_.read<Int>(v, k, redis.db, kRedisDbBounds); }},
              {"password",
               [&](const auto& v, const auto& k) { r_.read<String>(v, k, redis.password); }},
          });
}

void Parser::parse_listen_entry(const YAML::Node& node, size_t index,
                                std::vector<ListenConfig>& listeners) {
  const std::string path = index_key("listen", index);
  ListenConfig base;
  base.line = node.Mark().line + 1;
  base.column = node.Mark().column + 1;
  std::vector<PortUse> uses;
  const auto add_port = [&](const YAML::Node& v, const std::string& k) {
    PortUse use{{}, {}, 0, index, v.Mark(), k};
    if (r_.read<Int>(v, k, use.port, kPortBounds)) uses.push_back(use);
  };
  std::optional<YAML::Node> port_node;
  std::optional<YAML::Node> ports_node;
  const bool is_map = r_.walk(
      node, path, false,
      {
          {"address",
           [&](const auto& v, const auto& k) {
             if (r_.read<String>(v, k, base.address) && normalize_address(base.address).empty()) {
               r_.add(v, k, "must be an IPv4 or IPv6 address");
             }
           }},
          {"port",
           [&](const auto& v, const auto& k) {
             port_node = v;
             add_port(v, k);
           }},
          {"ports",
           [&](const auto& v, const auto& k) {
             ports_node = v;
             r_.list(v, k, false, add_port);
           }},
          {"modules",
           [&](const auto& v, const auto& k) { parse_module_names(v, k, base.modules); }},
          {"max_body_size",
           [&](const auto& v, const auto& k) {
             r_.read<Size>(v, k, base.max_body_size, kBodySizeBounds);
           }},
          {"client_timeout",
           [&](const auto& v, const auto& k) {
             r_.read<Duration>(v, k, base.client_timeout, kClientTimeoutBounds);
           }},
          {"request_timeout",
           [&](const auto& v, const auto& k) {
             r_.read<Duration>(v, k, base.request_timeout, kClientTimeoutBounds);
           }},
      });
  if (!is_map) return;
  if (port_node && ports_node) {
    r_.add(*ports_node, path + ".ports", "cannot be used together with port");
    return;
  }
  if (!port_node && !ports_node) r_.add(node, path + ".port", "is required (or ports)");
  for (auto& use : uses) {
    ListenConfig listener = base;
    listener.port = use.port;
    listeners.push_back(listener);
    use.address = base.address;
    use.normalized = normalize_address(base.address);
    port_uses_.push_back(std::move(use));
  }
}

void Parser::parse_module_names(const YAML::Node& node, const std::string& key,
                                std::vector<std::string>& names) {
  r_.list(node, key, true, [&](const YAML::Node& item, const std::string& item_key) {
    std::string name;
    if (!r_.read<String>(item, item_key, name)) return;
    const auto known = std::find_if(modules_.begin(), modules_.end(),
                                    [&](const ModuleSchema& m) { return m.name == name; });
    if (known == modules_.end()) {
      std::string list;
      for (const auto& m : modules_)
        list += (list.empty() ? "" : ", ") + m.name;
      r_.add(item, item_key,
             "unknown module '" + name + "' (known: " + (list.empty() ? "none" : list) + ")");
    } else if (std::find(names.begin(), names.end(), name) != names.end()) {
      r_.add(item, item_key, "duplicate module '" + name + "'");
    } else {
      names.push_back(name);
    }
  });
}

// Two listeners on one address and port would fail at bind() time, after -t said yes.
void Parser::check_port_conflicts() {
  std::map<std::pair<std::string, uint16_t>, size_t> owners;
  for (const auto& use : port_uses_) {
    if (use.normalized.empty()) continue;  // already reported as a bad address
    const auto [it, inserted] = owners.emplace(std::pair{use.normalized, use.port}, use.entry);
    if (!inserted) {
      r_.add(use.mark, use.key,
             "port " + std::to_string(use.port) + " on " + use.address + " is already used by " +
                 index_key("listen", it->second));
    }
  }
}

// Reads a whole file; on failure returns false with the errno text in `error`.
bool read_file(const std::string& path, std::string& text, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::strerror(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = std::strerror(errno);
      ::close(fd);
      return false;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace

ConfigLoad parse_config(const std::string& text, const std::string& file,
                        const std::vector<ModuleSchema>& modules) {
  ConfigLoad load;
  auto config = std::make_shared<Config>();
  config->path = file;
  ConfigReader reader(file);
  Parser(reader, modules).parse(text, *config);
  load.problems = reader.take_problems();
  if (load.problems.empty()) load.config = std::move(config);
  return load;
}

ConfigLoad load_config(const std::string& path, const std::vector<ModuleSchema>& modules) {
  std::string text;
  std::string error;
  if (!read_file(path, text, error)) {
    ConfigLoad load;
    load.problems.push_back(ConfigProblem{path, 0, 0, "file", "cannot read: " + error});
    return load;
  }
  return parse_config(text, path, modules);
}

}  // namespace sluice::common
