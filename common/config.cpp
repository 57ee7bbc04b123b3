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
#include <limits>
#include <set>
#include <utility>

namespace sluice::common {

namespace {

// Each kind of scalar knows how to convert a node, what to say when it cannot, and how to
// print a bound, so that read() below is the only place where fields are checked.
struct Int {
  using Value = int64_t;
  static constexpr const char* kReason = "must be an integer";
  static bool convert(const YAML::Node& node, Value& out) {
    if (!node.IsScalar()) return false;
    // yaml-cpp throws on a bad conversion; this is the parse boundary, so catch it here.
    try {
      out = node.as<Value>();
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  }
  static std::string show(Value value) { return std::to_string(value); }
};

struct String {
  using Value = std::string;
  static constexpr const char* kReason = "must be a string";
  static bool convert(const YAML::Node& node, Value& out) {
    if (!node.IsScalar()) return false;
    out = node.Scalar();
    return true;
  }
  static std::string show(const Value& value) { return value; }
};

struct NonEmptyString : String {
  static constexpr const char* kReason = "must be a non-empty string";
  static bool convert(const YAML::Node& node, Value& out) {
    return String::convert(node, out) && !out.empty();
  }
};

struct Duration {
  using Value = Millis;
  static constexpr const char* kReason = "must be a duration such as 500ms, 10s, 2m";
  static bool convert(const YAML::Node& node, Value& out) {
    return node.IsScalar() && parse_duration(node.Scalar(), out);
  }
  static std::string show(Value value) {
    const auto ms = value.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
  }
};

struct Size {
  using Value = uint64_t;
  static constexpr const char* kReason = "must be a size such as 512k, 10m";
  static bool convert(const YAML::Node& node, Value& out) {
    return node.IsScalar() && parse_size(node.Scalar(), out);
  }
  // Bounds are printed in the syntax the file uses: "1g", "64k", "512".
  static std::string show(Value value) {
    for (const auto& [suffix, shift] : {std::pair{'g', 30}, {'m', 20}, {'k', 10}}) {
      const uint64_t unit = uint64_t{1} << shift;
      if (value != 0 && value % unit == 0) return std::to_string(value / unit) + suffix;
    }
    return std::to_string(value);
  }
};

template <class Kind>
struct Bounds {
  typename Kind::Value min;
  typename Kind::Value max;
};

constexpr Bounds<Int> kPortBounds{1, 65535};
constexpr Bounds<Int> kRedisDbBounds{0, 1023};
constexpr Bounds<Size> kBodySizeBounds{1, uint64_t{1} << 30};
constexpr Bounds<Duration> kShutdownBounds{Millis{0}, std::chrono::seconds{3600}};
constexpr Bounds<Duration> kHeartbeatBounds{Millis{0}, std::chrono::seconds{3600}};
constexpr Bounds<Duration> kConfirmBounds{Millis{100}, std::chrono::seconds{600}};
constexpr Bounds<Duration> kClientTimeoutBounds{std::chrono::seconds{1},
                                                std::chrono::seconds{3600}};

// The one wording for every range problem.
template <class Kind>
std::string range_reason(const Bounds<Kind>& bounds) {
  return "must be between " + Kind::show(bounds.min) + " and " + Kind::show(bounds.max);
}

std::string join_key(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

std::string index_key(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string key_text(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : YAML::Dump(key);
}

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

// "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 literal has several colons and
// cannot carry a port. Returns the reason on failure, empty on success.
std::string split_host_port(const std::string& text, RabbitHost& out) {
  const std::string kShape = "must be \"host\" or \"host:port\"";
  std::string host = text;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return kShape;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return kShape;
      port = text.substr(close + 2);
      if (port.empty()) return kShape;
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return kShape;
  }
  if (host.empty()) return kShape;
  out.host = host;
  if (port.empty()) return {};
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "port " + range_reason(kPortBounds);
  }
  const int64_t value = std::stoll(port);
  if (value < kPortBounds.min || value > kPortBounds.max) {
    return "port " + range_reason(kPortBounds);
  }
  out.port = static_cast<uint16_t>(value);
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
  Parser(const std::string& file, const std::vector<std::string>& known_modules)
      : file_(file), known_modules_(known_modules) {}

  void parse(const std::string& text, Config& config);
  std::vector<ConfigProblem> take_problems();

 private:
  using Handler = std::function<void(const YAML::Node& value, const std::string& key)>;
  struct Field {
    std::string name;
    Handler handler;
  };

  void add(const YAML::Mark& mark, const std::string& key, const std::string& reason);
  void add(const YAML::Node& node, const std::string& key, const std::string& reason) {
    add(node.Mark(), key, reason);
  }

  template <class Kind, class Out>
  bool read(const YAML::Node& node, const std::string& key, Out& out,
            const std::optional<Bounds<Kind>>& bounds = std::nullopt);
  bool walk(const YAML::Node& node, const std::string& path, bool allow_null,
            const std::vector<Field>& fields);

  void parse_root(const YAML::Node& root, Config& config);
  void parse_daemon(const YAML::Node& node, DaemonConfig& daemon);
  void parse_rabbitmq(const YAML::Node& node, RabbitmqConfig& rabbitmq);
  void parse_rabbit_hosts(const YAML::Node& node, const std::string& key,
                          std::vector<RabbitHost>& hosts);
  void parse_redis(const YAML::Node& node, RedisConfig& redis);
  void parse_listen(const YAML::Node& node, std::vector<ListenConfig>& listeners);
  void parse_listen_entry(const YAML::Node& node, size_t index,
                          std::vector<ListenConfig>& listeners);
  void parse_ports(const YAML::Node& node, const std::string& key, size_t entry,
                   std::vector<PortUse>& uses);
  void parse_modules(const YAML::Node& node, const std::string& key,
                     std::vector<std::string>& modules);
  void check_port_conflicts();
  bool is_known_module(const std::string& name) const;

  std::string file_;
  const std::vector<std::string>& known_modules_;
  std::vector<ConfigProblem> problems_;
  std::vector<PortUse> port_uses_;
};

void Parser::add(const YAML::Mark& mark, const std::string& key, const std::string& reason) {
  ConfigProblem problem;
  problem.file = file_;
  // yaml-cpp marks are 0-based; a null mark (-1) means "no position".
  problem.line = mark.line < 0 ? 0 : mark.line + 1;
  problem.column = mark.line < 0 ? 0 : mark.column + 1;
  problem.key = key;
  problem.reason = reason;
  problems_.push_back(std::move(problem));
}

std::vector<ConfigProblem> Parser::take_problems() {
  // Problems are found section by section; the operator reads them in file order.
  std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  });
  return std::move(problems_);
}

template <class Kind, class Out>
bool Parser::read(const YAML::Node& node, const std::string& key, Out& out,
                  const std::optional<Bounds<Kind>>& bounds) {
  typename Kind::Value value{};
  if (!Kind::convert(node, value)) {
    add(node, key, Kind::kReason);
    return false;
  }
  if (bounds && (value < bounds->min || value > bounds->max)) {
    add(node, key, range_reason(*bounds));
    return false;
  }
  out = static_cast<Out>(value);
  return true;
}

// Walks a map: unknown and repeated keys become problems, known ones go to their handler.
// Returns false when `node` is not a map (null counts as an empty map when allowed).
bool Parser::walk(const YAML::Node& node, const std::string& path, bool allow_null,
                  const std::vector<Field>& fields) {
  if (allow_null && node.IsNull()) return true;
  if (!node.IsMap()) {
    add(node, path.empty() ? "(root)" : path, "must be a map");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    const std::string name = key_text(entry.first);
    const std::string key = join_key(path, name);
    const auto field =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
    if (field == fields.end()) {
      add(entry.first, key, "unknown key");
    } else if (!seen.insert(name).second) {
      // yaml-cpp keeps both pairs silently; the second would otherwise win unnoticed.
      add(entry.first, key, "duplicate key");
    } else {
      field->handler(entry.second, key);
    }
  }
  return true;
}

void Parser::parse(const std::string& text, Config& config) {
  try {
    // Load(), not LoadAll(): yaml-cpp 0.7's LoadAll() never consumes a top-level ","
    // and builds empty documents until memory runs out.
    parse_root(YAML::Load(text), config);
  } catch (const YAML::Exception& e) {
    // A syntax error (ParserException) lands here with its mark. Every expected conversion
    // is checked in read(); anything else from yaml-cpp is still a problem, not a crash.
    add(e.mark, "yaml", e.msg);
  } catch (const std::exception& e) {
    // sluiced -t and SIGHUP must report, never die, whatever the file holds.
    add(YAML::Mark::null_mark(), "config", e.what());
  }
}

void Parser::parse_root(const YAML::Node& root, Config& config) {
  bool has_listen = false;
  std::vector<Field> fields = {
      {"daemon", [&](const YAML::Node& v, const auto&) { parse_daemon(v, config.daemon); }},
      {"rabbitmq",
       [&](const YAML::Node& v, const auto&) { parse_rabbitmq(v, config.rabbitmq.emplace()); }},
      {"redis", [&](const YAML::Node& v, const auto&) { parse_redis(v, config.redis.emplace()); }},
      {"listen",
       [&](const YAML::Node& v, const auto&) {
         has_listen = true;
         parse_listen(v, config.listeners);
       }},
  };
  for (const auto& name : known_modules_) {
    if (std::any_of(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; }))
      continue;
    fields.push_back({name, [&, name](const YAML::Node& v, const std::string& key) {
                        // The module's own configure() validates the contents.
                        if (v.IsMap() || v.IsNull()) {
                          config.module_sections[name] = v;
                        } else {
                          add(v, key, "must be a map");
                        }
                      }});
  }
  if (!walk(root, "", false, fields)) return;
  if (!has_listen) add(root, "listen", "is required");
  check_port_conflicts();
}

void Parser::parse_daemon(const YAML::Node& node, DaemonConfig& daemon) {
  walk(node, "daemon", true,
       {
           {"pidfile",
            [&](const auto& v, const auto& k) { read<NonEmptyString>(v, k, daemon.pidfile); }},
           {"user",
            [&](const auto& v, const auto& k) {
              std::string user;
              if (!read<String>(v, k, user)) return;
              if (getpwnam(user.c_str()) == nullptr) add(v, k, "no such user '" + user + "'");
              daemon.user = user;
            }},
           {"group",
            [&](const auto& v, const auto& k) {
              std::string group;
              if (!read<String>(v, k, group)) return;
              if (getgrnam(group.c_str()) == nullptr) add(v, k, "no such group '" + group + "'");
              daemon.group = group;
            }},
           {"error_log",
            [&](const auto& v, const auto& k) { read<String>(v, k, daemon.error_log); }},
           {"log_level",
            [&](const auto& v, const auto& k) {
              std::string level;
              if (read<String>(v, k, level) && !log::parse_level(level, daemon.log_level)) {
                add(v, k, "must be one of debug, info, warn, error");
              }
            }},
           {"shutdown_timeout",
            [&](const auto& v, const auto& k) {
              read<Duration>(v, k, daemon.shutdown_timeout, kShutdownBounds);
            }},
           {"working_directory",
            [&](const auto& v, const auto& k) {
              // Workers chdir() after dropping privileges, long after the supervisor's own
              // working directory could have given a relative path a meaning.
              if (read<String>(v, k, daemon.working_directory) &&
                  daemon.working_directory.rfind('/', 0) != 0) {
                add(v, k, "must be an absolute path");
              }
            }},
       });
}

void Parser::parse_rabbitmq(const YAML::Node& node, RabbitmqConfig& rabbitmq) {
  walk(node, "rabbitmq", true,
       {
           {"hosts",
            [&](const auto& v, const auto& k) { parse_rabbit_hosts(v, k, rabbitmq.hosts); }},
           {"heartbeat",
            [&](const auto& v, const auto& k) {
              read<Duration>(v, k, rabbitmq.heartbeat, kHeartbeatBounds);
            }},
           {"confirm_timeout",
            [&](const auto& v, const auto& k) {
              read<Duration>(v, k, rabbitmq.confirm_timeout, kConfirmBounds);
            }},
       });
}

void Parser::parse_rabbit_hosts(const YAML::Node& node, const std::string& key,
                                std::vector<RabbitHost>& hosts) {
  if (!node.IsSequence()) return add(node, key, "must be a list");
  if (node.size() == 0) return add(node, key, "must not be empty");
  hosts.clear();
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_key = index_key(key, i);
    std::string text;
    if (!read<String>(node[i], item_key, text)) continue;
    RabbitHost host;
    const std::string reason = split_host_port(text, host);
    if (!reason.empty()) {
      add(node[i], item_key, reason);
      continue;
    }
    hosts.push_back(host);
  }
}

void Parser::parse_redis(const YAML::Node& node, RedisConfig& redis) {
  walk(
      node, "redis", true,
      {
          {"host", [&](const auto& v, const auto& k) { read<NonEmptyString>(v, k, redis.host); }},
          {"port", [&](const auto& v, const auto& k) { read<Int>(v, k, redis.port, kPortBounds); }},
          {"db", [&](const auto& v, const auto& k) { read<Int>(v, k, redis.db, kRedisDbBounds); }},
          {"password", [&](const auto& v, const auto& k) { read<String>(v, k, redis.password); }},
      });
}

void Parser::parse_listen(const YAML::Node& node, std::vector<ListenConfig>& listeners) {
  if (!node.IsSequence()) return add(node, "listen", "must be a list");
  if (node.size() == 0) return add(node, "listen", "must not be empty");
  for (size_t i = 0; i < node.size(); ++i)
    parse_listen_entry(node[i], i, listeners);
}

void Parser::parse_listen_entry(const YAML::Node& node, size_t index,
                                std::vector<ListenConfig>& listeners) {
  const std::string path = index_key("listen", index);
  ListenConfig base;
  base.line = node.Mark().line + 1;
  base.column = node.Mark().column + 1;
  std::vector<PortUse> uses;
  std::optional<YAML::Node> port_node;
  std::optional<YAML::Node> ports_node;
  const bool is_map = walk(
      node, path, false,
      {
          {"address",
           [&](const auto& v, const auto& k) {
             if (read<String>(v, k, base.address) && normalize_address(base.address).empty()) {
               add(v, k, "must be an IPv4 or IPv6 address");
             }
           }},
          {"port",
           [&](const auto& v, const auto& k) {
             port_node = v;
             PortUse use{{}, {}, 0, index, v.Mark(), k};
             if (read<Int>(v, k, use.port, kPortBounds)) uses.push_back(use);
           }},
          {"ports",
           [&](const auto& v, const auto& k) {
             ports_node = v;
             parse_ports(v, k, index, uses);
           }},
          {"modules", [&](const auto& v, const auto& k) { parse_modules(v, k, base.modules); }},
          {"max_body_size",
           [&](const auto& v, const auto& k) {
             read<Size>(v, k, base.max_body_size, kBodySizeBounds);
           }},
          {"client_timeout",
           [&](const auto& v, const auto& k) {
             read<Duration>(v, k, base.client_timeout, kClientTimeoutBounds);
           }},
          {"request_timeout",
           [&](const auto& v, const auto& k) {
             read<Duration>(v, k, base.request_timeout, kClientTimeoutBounds);
           }},
      });
  if (!is_map) return;
  if (port_node && ports_node) {
    add(*ports_node, path + ".ports", "cannot be used together with port");
    return;
  }
  if (!port_node && !ports_node) add(node, path + ".port", "is required (or ports)");
  for (auto& use : uses) {
    ListenConfig listener = base;
    listener.port = use.port;
    listeners.push_back(listener);
    use.address = base.address;
    use.normalized = normalize_address(base.address);
    port_uses_.push_back(std::move(use));
  }
}

void Parser::parse_ports(const YAML::Node& node, const std::string& key, size_t entry,
                         std::vector<PortUse>& uses) {
  if (!node.IsSequence()) return add(node, key, "must be a list");
  if (node.size() == 0) return add(node, key, "must not be empty");
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_key = index_key(key, i);
    PortUse use{{}, {}, 0, entry, node[i].Mark(), item_key};
    if (read<Int>(node[i], item_key, use.port, kPortBounds)) uses.push_back(use);
  }
}

void Parser::parse_modules(const YAML::Node& node, const std::string& key,
                           std::vector<std::string>& modules) {
  if (!node.IsSequence()) return add(node, key, "must be a list");
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_key = index_key(key, i);
    std::string name;
    if (!read<String>(node[i], item_key, name)) continue;
    if (!is_known_module(name)) {
      std::string known;
      for (const auto& m : known_modules_)
        known += (known.empty() ? "" : ", ") + m;
      add(node[i], item_key,
          "unknown module '" + name + "' (known: " + (known.empty() ? "none" : known) + ")");
    } else if (std::find(modules.begin(), modules.end(), name) != modules.end()) {
      add(node[i], item_key, "duplicate module '" + name + "'");
    } else {
      modules.push_back(name);
    }
  }
}

bool Parser::is_known_module(const std::string& name) const {
  return std::find(known_modules_.begin(), known_modules_.end(), name) != known_modules_.end();
}

// Two listeners on one address and port would fail at bind() time, after -t said yes.
void Parser::check_port_conflicts() {
  std::map<std::pair<std::string, uint16_t>, size_t> owners;
  for (const auto& use : port_uses_) {
    if (use.normalized.empty()) continue;  // already reported as a bad address
    const auto [it, inserted] = owners.emplace(std::pair{use.normalized, use.port}, use.entry);
    if (!inserted) {
      add(use.mark, use.key,
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

// Digits only, no sign: "-5" and "+5" are refused. Returns false on overflow.
bool parse_unsigned(const std::string& digits, uint64_t& out) {
  if (digits.empty()) return false;
  uint64_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// value * factor, refusing anything beyond `max`.
bool checked_multiply(uint64_t value, uint64_t factor, uint64_t max, uint64_t& out) {
  if (factor != 0 && value > max / factor) return false;
  out = value * factor;
  return true;
}

}  // namespace

std::string ConfigProblem::to_string() const {
  if (line == 0) return file + ": " + key + ": " + reason;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + key + ": " +
         reason;
}

ConfigLoad parse_config(const std::string& text, const std::string& file,
                        const std::vector<std::string>& known_modules) {
  ConfigLoad load;
  auto config = std::make_shared<Config>();
  config->path = file;
  Parser parser(file, known_modules);
  parser.parse(text, *config);
  load.problems = parser.take_problems();
  if (load.problems.empty()) load.config = std::move(config);
  return load;
}

ConfigLoad load_config(const std::string& path, const std::vector<std::string>& known_modules) {
  std::string text;
  std::string error;
  if (!read_file(path, text, error)) {
    ConfigLoad load;
    load.problems.push_back(ConfigProblem{path, 0, 0, "file", "cannot read: " + error});
    return load;
  }
  return parse_config(text, path, known_modules);
}

bool parse_duration(const std::string& text, Millis& out) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
  const auto digits_end = text.find_first_not_of("0123456789");
  const std::string digits = text.substr(0, digits_end);
  const std::string unit = digits_end == std::string::npos ? "" : text.substr(digits_end);
  uint64_t factor = 1000;  // a bare number means seconds
  if (!unit.empty()) {
    const auto it = std::find_if(std::begin(kUnits), std::end(kUnits),
                                 [&](const auto& u) { return unit == u.first; });
    if (it == std::end(kUnits)) return false;
    factor = it->second;
  }
  uint64_t value = 0;
  uint64_t ms = 0;
  const auto max = static_cast<uint64_t>(std::numeric_limits<Millis::rep>::max());
  if (!parse_unsigned(digits, value) || !checked_multiply(value, factor, max, ms)) return false;
  out = Millis{static_cast<Millis::rep>(ms)};
  return true;
}

bool parse_size(const std::string& text, uint64_t& out) {
  if (text.empty()) return false;
  uint64_t factor = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'k':
    case 'K':
      factor = uint64_t{1} << 10;
      break;
    case 'm':
    case 'M':
      factor = uint64_t{1} << 20;
      break;
    case 'g':
    case 'G':
      factor = uint64_t{1} << 30;
      break;
    default:
      break;
  }
  if (factor != 1) digits.pop_back();
  uint64_t value = 0;
  return parse_unsigned(digits, value) &&
         checked_multiply(value, factor, std::numeric_limits<uint64_t>::max(), out);
}

}  // namespace sluice::common
