#include "worker/modules/publish/publish_config.h"

#include <string>
#include <utility>
#include <vector>

namespace sluice::worker::publish {
namespace {

using common::Errc;
using common::Result;

// One problem of the publish section, with the node's own position: the caller can only
// place the whole error at the section.
void add_problem(std::vector<std::pair<std::string, std::string>>& problems, const std::string& key,
                 const YAML::Node& node, const std::string& reason) {
  std::string where;
  const YAML::Mark mark = node.Mark();
  if (mark.line >= 0) {
    where = " (line " + std::to_string(mark.line + 1) + ", column " +
            std::to_string(mark.column + 1) + ")";
  }
  problems.emplace_back(key, reason + where);
}

void read_setting(const std::string& name, const YAML::Node& value, MessageDefaults& out,
                  std::vector<std::pair<std::string, std::string>>& problems) {
  const std::string key = "publish." + name;
  if (name == "default_delivery_mode") {
    std::string text = value.IsScalar() ? value.Scalar() : std::string();
    if (text == "1" || text == "2") {
      out.delivery_mode = static_cast<uint8_t>(text[0] - '0');
    } else {
      add_problem(problems, key, value, "must be 1 (transient) or 2 (persistent)");
    }
  } else if (name == "mandatory") {
    bool flag = false;
    if (value.IsScalar() && YAML::convert<bool>::decode(value, flag)) {
      out.mandatory = flag;
    } else {
      add_problem(problems, key, value, "must be true or false");
    }
  } else {
    add_problem(problems, key, value, "unknown key");
  }
}

}  // namespace

Result<MessageDefaults> parse_publish_settings(const YAML::Node& section) {
  MessageDefaults settings;
  // Persistent unless configured otherwise: a 204 then means the message survives a broker
  // restart in a durable queue, which a transient message does not.
  settings.delivery_mode = 2;
  if (!section.IsDefined() || section.IsNull()) return settings;
  if (!section.IsMap()) {
    return common::make_error(Errc::bad_request, "publish",
                              "must be a map of settings (default_delivery_mode, mandatory)");
  }
  std::vector<std::pair<std::string, std::string>> problems;
  for (const auto& entry : section) {
    std::string name = entry.first.IsScalar() ? entry.first.Scalar() : std::string("?");
    read_setting(name, entry.second, settings, problems);
  }
  if (problems.empty()) return settings;
  std::string message = problems[0].second;
  for (std::size_t i = 1; i < problems.size(); ++i)
    message.append("; ").append(problems[i].first).append(": ").append(problems[i].second);
  return common::make_error(Errc::bad_request, problems[0].first, std::move(message));
}

}  // namespace sluice::worker::publish
