#pragma once
// The typed reader every part of the config file goes through, the core sections in
// common/config.cpp and each module's own section alike: walk a map (unknown and repeated
// keys are problems), read a scalar of a kind with optional bounds (one wording for range
// problems), and add any other problem. Nothing stops at the first problem: each one is
// collected with its own position, "FILE:LINE:COL: key.path: reason", and the operator gets
// them all in file order.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// "250ms", "5s", "2m", "1h", or a bare integer meaning seconds.
bool parse_duration(const std::string& text, Millis& out);
// "1024", "64k", "10m", "1g" (powers of 1024, case-insensitive).
bool parse_size(const std::string& text, uint64_t& out);

// What ConfigReader::read() can read. Each kind converts a node and returns why it cannot
// (empty on success), and prints a value the way the file would spell it, for bounds.
namespace kind {

struct Int {
  using Value = int64_t;
  static std::string convert(const YAML::Node& node, Value& out);
  static std::string show(Value value);
};

struct String {
  using Value = std::string;
  static std::string convert(const YAML::Node& node, Value& out);
};

struct NonEmptyString {
  using Value = std::string;
  static std::string convert(const YAML::Node& node, Value& out);
};

// YAML's booleans: true/false, yes/no, on/off (any case yaml-cpp accepts).
struct Bool {
  using Value = bool;
  static std::string convert(const YAML::Node& node, Value& out);
};

struct Duration {
  using Value = Millis;
  static std::string convert(const YAML::Node& node, Value& out);
  static std::string show(Value value);  // "3600s", "250ms"
};

struct Size {
  using Value = uint64_t;
  static std::string convert(const YAML::Node& node, Value& out);
  static std::string show(Value value);  // "1g", "64k", "512"
};

// "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 literal has several colons and
// cannot carry a port. The port, when given, is 1..65535.
struct HostPort {
  struct Value {
    std::string host;
    std::optional<uint16_t> port;  // unset: the caller's default
  };
  static std::string convert(const YAML::Node& node, Value& out);
};

}  // namespace kind

template <class Kind>
struct Bounds {
  typename Kind::Value min;
  typename Kind::Value max;
};

// A TCP port, wherever the file names one.
inline constexpr Bounds<kind::Int> kPortBounds{1, 65535};

// The one wording for every range problem: "must be between 1 and 65535".
template <class Kind>
std::string range_reason(const Bounds<Kind>& bounds) {
  return "must be between " + Kind::show(bounds.min) + " and " + Kind::show(bounds.max);
}

// "daemon" + "user" -> "daemon.user"; "" + "listen" -> "listen".
std::string join_key(const std::string& path, const std::string& name);
// "listen" + 2 -> "listen[2]".
std::string index_key(const std::string& path, size_t index);

class ConfigReader {
 public:
  // Called with a field's value and its full key ("publish.mandatory").
  using Handler = std::function<void(const YAML::Node& value, const std::string& key)>;
  struct Field {
    std::string name;
    Handler handler;
  };

  explicit ConfigReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  // A problem at `node` (no position when it has none, e.g. an absent section).
  void add(const YAML::Node& node, const std::string& key, const std::string& reason);
  void add(const YAML::Mark& mark, const std::string& key, const std::string& reason);

  // Converts `node` to `Kind` and stores it in `out`; otherwise adds the kind's problem at
  // the node and leaves `out` alone ("is required" when `node` is a key its map does not
  // have). The bounded form also refuses values outside `bounds` (which must fit in `Out`).
  template <class Kind, class Out>
  bool read(const YAML::Node& node, const std::string& key, Out& out);
  template <class Kind, class Out>
  bool read(const YAML::Node& node, const std::string& key, Out& out, const Bounds<Kind>& bounds);

  // Walks a map at `path`: each key of `fields` goes to its handler, any other key is an
  // "unknown key" and a repeated one a "duplicate key", each at the key's own position.
  // Returns false (with a problem) when `node` is not a map; a null or undefined node counts
  // as an empty map when `allow_null`.
  bool walk(const YAML::Node& node, const std::string& path, bool allow_null,
            const std::vector<Field>& fields);
  // Calls `item` with each element of the sequence at `key` and its key ("key[3]").
  // Returns false (with a problem) when `node` is not a list, or is empty and `allow_empty`
  // is false.
  bool list(const YAML::Node& node, const std::string& key, bool allow_empty, const Handler& item);

  size_t problem_count() const { return problems_.size(); }
  // Every problem so far, in file order (problems without a position first).
  std::vector<ConfigProblem> take_problems();

 private:
  std::string file_;
  std::vector<ConfigProblem> problems_;
};

template <class Kind, class Out>
bool ConfigReader::read(const YAML::Node& node, const std::string& key, Out& out) {
  typename Kind::Value value{};
  // Undefined: `node` is a key its map does not have (yaml-cpp throws on any other use).
  if (!node.IsDefined()) {
    add(node, key, "is required");
    return false;
  }
  if (const std::string reason = Kind::convert(node, value); !reason.empty()) {
    add(node, key, reason);
    return false;
  }
  out = static_cast<Out>(value);
  return true;
}

template <class Kind, class Out>
bool ConfigReader::read(const YAML::Node& node, const std::string& key, Out& out,
                        const Bounds<Kind>& bounds) {
  typename Kind::Value value{};
  if (!read<Kind>(node, key, value)) return false;
  if (value < bounds.min || value > bounds.max) {
    add(node, key, range_reason(bounds));
    return false;
  }
  out = static_cast<Out>(value);
  return true;
}

}  // namespace sluice::common
