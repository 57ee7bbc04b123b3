#define BOOST_TEST_MODULE publish_config
#include "worker/modules/publish/publish_config.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "worker/modules/publish/publish_module.h"

using sluice::common::ConfigReader;
using sluice::worker::publish::parse_publish_settings;
using sluice::worker::publish::PublishModule;
using sluice::worker::publish::PublishSettings;

namespace {

// The problems of reading `yaml`'s publish section, one "FILE:LINE:COL: key: reason" a line.
std::string problems_of(const std::string& yaml, PublishSettings* out = nullptr) {
  ConfigReader reader("sluice.yaml");
  const YAML::Node root = YAML::Load(yaml);
  const auto settings = parse_publish_settings(reader, root["publish"]);
  BOOST_TEST_REQUIRE(settings);
  if (out) *out = *settings;
  std::string text;
  for (const auto& p : reader.take_problems())
    text += p.to_string() + "\n";
  return text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(publish_settings_default_to_persistent_and_not_mandatory) {
  for (const char* yaml : {"", "publish:", "publish: {}"}) {
    PublishSettings s;
    s.message.delivery_mode = 0;
    s.message.mandatory = true;
    BOOST_TEST(problems_of(yaml, &s) == "", yaml);
    BOOST_TEST(s.message.delivery_mode == 2, yaml);
    BOOST_TEST(!s.message.mandatory, yaml);
  }
  PublishSettings s;
  BOOST_TEST(problems_of("publish: {default_delivery_mode: 1, mandatory: true}", &s) == "");
  BOOST_TEST(s.message.delivery_mode == 1);
  BOOST_TEST(s.message.mandatory);
  BOOST_TEST(problems_of("publish: {default_delivery_mode: 2, mandatory: no}", &s) == "");
  BOOST_TEST(s.message.delivery_mode == 2);
  BOOST_TEST(!s.message.mandatory);
}

BOOST_AUTO_TEST_CASE(every_bad_publish_setting_is_reported_at_its_own_position) {
  BOOST_TEST(problems_of("publish:\n"
                         "  default_delivery_mode: 3\n"
                         "  mandatory: sometimes\n"
                         "  confirm: yes\n"
                         "  mandatory: true\n") ==
             "sluice.yaml:2:26: publish.default_delivery_mode: "
             "must be 1 (transient) or 2 (persistent)\n"
             "sluice.yaml:3:14: publish.mandatory: must be true or false\n"
             "sluice.yaml:4:3: publish.confirm: unknown key\n"
             "sluice.yaml:5:3: publish.mandatory: duplicate key\n");
  for (const char* bad : {"[2]", "persistent", "0", "2.0", "0x2", "+2", "''"}) {
    BOOST_TEST(problems_of(std::string("publish: { default_delivery_mode: ") + bad + " }") ==
                   "sluice.yaml:1:35: publish.default_delivery_mode: "
                   "must be 1 (transient) or 2 (persistent)\n",
               bad);
  }
  BOOST_TEST(problems_of("publish: { mandatory: [true] }") ==
             "sluice.yaml:1:23: publish.mandatory: must be true or false\n");
  BOOST_TEST(problems_of("publish: [1, 2]") == "sluice.yaml:1:10: publish: must be a map\n");
}

// Through parse_config, as sluiced -t and a reload read it: the worker gets the typed
// settings back by the module's name.
BOOST_AUTO_TEST_CASE(the_schema_keeps_the_settings_in_the_config) {
  const auto load = sluice::common::parse_config(
      "listen: [{ port: 8000 }]\npublish: { default_delivery_mode: 1 }\n", "sluice.yaml",
      {PublishModule::schema()});
  BOOST_TEST_REQUIRE(load.ok());
  const auto settings = load.config->settings<PublishSettings>(PublishModule().name());
  BOOST_TEST_REQUIRE(settings);
  BOOST_TEST(settings->message.delivery_mode == 1);
  BOOST_TEST(!settings->message.mandatory);
}
