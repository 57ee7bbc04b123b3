#pragma once
// The `publish:` YAML section: default_delivery_mode (1 or 2, default 2) and mandatory
// (a boolean, default false), read with the config's own reader so each problem is reported
// at its own position.
#include <yaml-cpp/yaml.h>

#include <memory>

#include "common/config.h"
#include "worker/modules/publish/message_fields.h"

namespace sluice::worker::publish {

constexpr const char* kModuleName = "publish";

struct PublishSettings : common::ModuleSettings {
  // Persistent unless configured otherwise: a 204 then means the message survives a broker
  // restart in a durable queue, which a transient message does not.
  MessageDefaults message{2, false};
};

// Reads the section (a map, or null when absent: the defaults); every problem goes to
// `reader` as publish.<name> at the value's own line and column. Never null.
std::shared_ptr<const PublishSettings> parse_publish_settings(common::ConfigReader& reader,
                                                              const YAML::Node& section);

}  // namespace sluice::worker::publish
