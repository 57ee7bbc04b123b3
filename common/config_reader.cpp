#include "common/config_reader.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

namespace sluice::common {
namespace {

std::string key_text(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : YAML::Dump(key);
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
  const std::string digits = factor == 1 ? text : text.substr(0, text.size() - 1);
  uint64_t value = 0;
  return parse_unsigned(digits, value) &&
         checked_multiply(value, factor, std::numeric_limits<uint64_t>::max(), out);
}

namespace kind {

std::string Int::convert(const YAML::Node& node, Value& out) {
  static const std::string kReason = "must be an integer";
  if (!node.IsScalar()) return kReason;
  // yaml-cpp throws on a bad conversion; this is the parse boundary, so catch it here.
  try {
    out = node.as<Value>();
    return {};
  } catch (const YAML::Exception&) {
    return kReason;
  }
}

std::string Int::show(Value value) {
  return std::to_string(value);
}

std::string String::convert(const YAML::Node& node, Value& out) {
  if (!node.IsScalar()) return "must be a string";
  out = node.Scalar();
  return {};
}

std::string NonEmptyString::convert(const YAML::Node& node, Value& out) {
  if (!node.IsScalar() || node.Scalar().empty()) return "must be a non-empty string";
  out = node.Scalar();
  return {};
}

std::string Bool::convert(const YAML::Node& node, Value& out) {
  if (node.IsScalar() && YAML::convert<bool>::decode(node, out)) return {};
  return "must be true or false";
}

std::string Duration::convert(const YAML::Node& node, Value& out) {
  if (node.IsScalar() && parse_duration(node.Scalar(), out)) return {};
  return "must be a duration such as 500ms, 10s, 2m";
}

std::string Duration::show(Value value) {
  const auto ms = value.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string Size::convert(const YAML::Node& node, Value& out) {
  if (node.IsScalar() && parse_size(node.Scalar(), out)) return {};
  return "must be a size such as 512k, 10m";
}

// Bounds are printed in the syntax the file uses: "1g", "64k", "512".
std::string Size::show(Value value) {
  for (const auto& [suffix, shift] : {std::pair{'g', 30}, {'m', 20}, {'k', 10}}) {
    const uint64_t unit = uint64_t{1} << shift;
    if (value != 0 && value % unit == 0) return std::to_string(value / unit) + suffix;
  }
  return std::to_string(value);
}

std::string HostPort::convert(const YAML::Node& node, Value& out) {
  if (!node.IsScalar()) return "must be a string";
  const std::string& text = node.Scalar();
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
  uint64_t number = 0;
  if (!port.empty() && (port.size() > 5 || !parse_unsigned(port, number) ||
                        number < static_cast<uint64_t>(kPortBounds.min) ||
                        number > static_cast<uint64_t>(kPortBounds.max))) {
    return "port " + range_reason(kPortBounds);
  }
  out.host = host;
  out.port = port.empty() ? std::nullopt : std::optional<uint16_t>(number);
  return {};
}

}  // namespace kind

std::string join_key(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

std::string index_key(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

void ConfigReader::add(const YAML::Node& node, const std::string& key, const std::string& reason) {
  // An undefined node (a key the map does not have) carries no position of its own.
  add(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), key, reason);
}

void ConfigReader::add(const YAML::Mark& mark, const std::string& key, const std::string& reason) {
  ConfigProblem problem;
  problem.file = file_;
  // yaml-cpp marks are 0-based; a null mark (-1) means "no position".
  problem.line = mark.line < 0 ? 0 : mark.line + 1;
  problem.column = mark.line < 0 ? 0 : mark.column + 1;
  problem.key = key;
  problem.reason = reason;
  problems_.push_back(std::move(problem));
}

bool ConfigReader::walk(const YAML::Node& node, const std::string& path, bool allow_null,
                        const std::vector<Field>& fields) {
  // IsDefined() first: yaml-cpp throws on any other question to an invalid node.
  if (allow_null && (!node.IsDefined() || node.IsNull())) return true;
  if (!node.IsDefined() || !node.IsMap()) {
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

bool ConfigReader::list(const YAML::Node& node, const std::string& key, bool allow_empty,
                        const Handler& item) {
  if (!node.IsDefined() || !node.IsSequence()) {
    add(node, key, "must be a list");
    return false;
  }
  if (node.size() == 0 && !allow_empty) {
    add(node, key, "must not be empty");
    return false;
  }
  for (size_t i = 0; i < node.size(); ++i)
    item(node[i], index_key(key, i));
  return true;
}

std::vector<ConfigProblem> ConfigReader::take_problems() {
  // Problems are found section by section; the operator reads them in file order.
  std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  });
  std::vector<ConfigProblem> out = std::move(problems_);
  problems_.clear();
  return out;
}

}  // namespace sluice::common
