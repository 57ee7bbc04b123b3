#include "worker/modules/publish/publish_config.h"

#include <string>

namespace sluice::worker::publish {

std::shared_ptr<const PublishSettings> parse_publish_settings(common::ConfigReader& reader,
                                                              const YAML::Node& section) {
  auto settings = std::make_shared<PublishSettings>();
  MessageDefaults& message = settings->message;
  reader.walk(section, kModuleName, true,
              {
                  {"default_delivery_mode",
                   [&](const YAML::Node& v, const std::string& k) {
                     // Exactly "1" or "2": AMQP's two modes, not an integer that happens to
                     // be in range ("0x2", "2.0" and "+2" are refused).
                     const std::string text = v.IsScalar() ? v.Scalar() : std::string();
                     if (text == "1" || text == "2") {
                       message.delivery_mode = static_cast<uint8_t>(text[0] - '0');
                     } else {
                       reader.add(v, k, "must be 1 (transient) or 2 (persistent)");
                     }
                   }},
                  {"mandatory",
                   [&](const YAML::Node& v, const std::string& k) {
                     reader.read<common::kind::Bool>(v, k, message.mandatory);
                   }},
              });
  return settings;
}

}  // namespace sluice::worker::publish
