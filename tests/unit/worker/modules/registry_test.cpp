#define BOOST_TEST_MODULE registry
// The registry pairs each module class with its config schema: the names agree, and the
// real schemas read a file the way `sluiced -t` does.
#include "worker/modules/registry.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "worker/modules/publish/publish_config.h"

using namespace sluice;

namespace {

std::string problems_of(const std::string& yaml) {
  const common::ConfigLoad load = common::parse_config(yaml, "s.yaml", worker::module_schemas());
  std::string out;
  for (const auto& p : load.problems)
    out += p.to_string() + "\n";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_schema_is_named_after_its_module_in_route_order) {
  const auto modules = worker::make_modules({});
  const auto& schemas = worker::module_schemas();
  BOOST_TEST_REQUIRE(modules.size() == schemas.size());
  for (size_t i = 0; i < schemas.size(); ++i) {
    BOOST_TEST(std::string(modules[i]->name()) == schemas[i].name);
    BOOST_TEST(static_cast<bool>(schemas[i].parse), schemas[i].name);
  }
  BOOST_TEST(worker::known_modules() == (std::vector<std::string>{"stats", "publish"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stats_takes_no_settings_and_publish_has_defaults) {
  const std::string listen = "listen: [{ port: 8000 }]\n";
  BOOST_TEST(problems_of(listen + "stats:\n") == "");
  BOOST_TEST(problems_of(listen + "stats: {}\n") == "");
  BOOST_TEST(problems_of(listen + "stats:\n  fleet: true\n  pretty: 1\n") ==
             "s.yaml:3:3: stats.fleet: unknown key\n"
             "s.yaml:4:3: stats.pretty: unknown key\n");
  const common::ConfigLoad load = common::parse_config(listen, "s.yaml", worker::module_schemas());
  BOOST_TEST_REQUIRE(load.ok());
  const auto publish = load.config->settings<worker::publish::PublishSettings>("publish");
  BOOST_TEST_REQUIRE(publish);
  BOOST_TEST(publish->message.delivery_mode == 2);
  BOOST_TEST(!publish->message.mandatory);
}
