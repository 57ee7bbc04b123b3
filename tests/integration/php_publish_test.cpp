#define BOOST_TEST_MODULE php_publish
// The PHP example from statelessd's README, run by php-cli with php-curl (a multipart
// body), publishes through sluice and the message arrives with its properties.
#include <boost/test/unit_test.hpp>
#include <ctime>

#include "tests/harness/amqp_client.h"
#include "tests/integration/fixtures.h"

using namespace sluice::test;

BOOST_AUTO_TEST_CASE(statelessds_php_example_publishes) {
  TempDir dir;
  uint16_t port = free_port();
  RabbitServer& rabbit = shared_rabbit();
  AmqpClient amqp(rabbit.amqp_port());
  amqp.declare_exchange("test", "topic");
  amqp.declare_queue("php-example");
  amqp.bind("php-example", "test", "foo.bar.baz");
  Sluiced s(dir, daemon_yaml(dir) + "rabbitmq: { hosts: [\"127.0.0.1:" +
                     std::to_string(rabbit.amqp_port()) + "\"] }\n" +
                     "listen:\n  - { address: 127.0.0.1, port: " + std::to_string(port) +
                     ", modules: [publish] }\n");
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  long before = static_cast<long>(time(nullptr));
  CommandResult php =
      run_command({"php", std::string(SLUICE_SOURCE_DIR) + "/tests/php/publisher.php"},
                  {"SLUICE_PORT=" + std::to_string(port)});
  BOOST_TEST(php.exit_code == 0, php.output);
  BOOST_TEST(php.output.find("Success") == 0u, php.output);
  auto m = amqp.get("php-example");
  BOOST_REQUIRE(m.has_value());
  BOOST_TEST(m->body == "This is a message body published through statelessd");
  BOOST_TEST(m->properties["app_id"] == "PHP Example");
  BOOST_TEST(m->properties["content_type"] == "text/plain");
  BOOST_TEST(m->properties["type"] == "Example message");
  BOOST_TEST(m->properties["user_id"] == "guest");
  long stamp = std::stol(m->properties["timestamp"]);
  BOOST_TEST(stamp >= before);
  BOOST_TEST(stamp <= static_cast<long>(time(nullptr)));
}
