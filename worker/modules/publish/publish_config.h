#pragma once
// The `publish:` YAML section: default_delivery_mode (1 or 2, default 2) and mandatory
// (a boolean, default false).
#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "worker/modules/publish/message_fields.h"

namespace sluice::worker::publish {

// Every problem is reported: the first one's key path ("publish.default_delivery_mode") is
// the error's short_code and its message carries the others as "; <key>: <reason>", each
// with its line and column (the caller positions the error at the section).
common::Result<MessageDefaults> parse_publish_settings(const YAML::Node& section);

}  // namespace sluice::worker::publish
