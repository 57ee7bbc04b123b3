#define BOOST_TEST_MODULE publish_config
#include "worker/modules/publish/publish_config.h"

#include <boost/test/unit_test.hpp>

#include <string>

using sluice::common::Error;
using sluice::worker::publish::parse_publish_settings;

BOOST_AUTO_TEST_CASE(publish_settings_default_to_persistent_and_not_mandatory) {
  for (const char* yaml : {"", "publish:", "publish: {}"}) {
    YAML::Node root = YAML::Load(yaml);
    auto r = parse_publish_settings(root["publish"]);
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r->delivery_mode == 2);
    BOOST_TEST(!r->mandatory);
  }
  auto r = parse_publish_settings(YAML::Load("{default_delivery_mode: 1, mandatory: true}"));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->delivery_mode == 1);
  BOOST_TEST(r->mandatory);
}

BOOST_AUTO_TEST_CASE(every_bad_publish_setting_is_reported_with_its_key) {
  auto r = parse_publish_settings(
      YAML::Load("default_delivery_mode: 3\nmandatory: sometimes\nconfirm: yes\n"));
  BOOST_REQUIRE(!r.ok());
  const Error& e = r.error();
  BOOST_TEST(e.short_code == "publish.default_delivery_mode");
  BOOST_TEST(e.message.find("must be 1 (transient) or 2 (persistent) (line 1, column 24)") == 0u,
             e.message);
  BOOST_TEST(e.message.find("; publish.mandatory: must be true or false (line 2, column 12)") !=
                 std::string::npos,
             e.message);
  BOOST_TEST(e.message.find("; publish.confirm: unknown key") != std::string::npos, e.message);
  for (const char* bad : {"default_delivery_mode: [2]", "default_delivery_mode: persistent",
                          "default_delivery_mode: 0", "default_delivery_mode: 2.0"}) {
    auto one = parse_publish_settings(YAML::Load(bad));
    BOOST_TEST(!one.ok(), bad);
    if (!one.ok()) BOOST_TEST(one.error().short_code == "publish.default_delivery_mode");
  }
  auto list = parse_publish_settings(YAML::Load("[1, 2]"));
  BOOST_REQUIRE(!list.ok());
  BOOST_TEST(list.error().short_code == "publish");
}
