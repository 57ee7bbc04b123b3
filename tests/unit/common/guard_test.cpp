#define BOOST_TEST_MODULE guard
#include "common/guard.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace common = sluice::common;
namespace log = sluice::common::log;

namespace {

// What `fn` logs, with the log sent to a file meanwhile.
template <class Fn>
std::string logged_by(Fn fn) {
  std::string path = "/tmp/sluice-guard-test-" + std::to_string(getpid()) + ".log";
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  fn();
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::remove(path.c_str());
  return s.str();
}

struct NotAnException {};

}  // namespace

BOOST_AUTO_TEST_CASE(a_normal_return_is_true_and_logs_nothing) {
  int ran = 0;
  bool ok = false;
  std::string text = logged_by([&] { ok = common::guard("quiet", [&] { ++ran; }); });
  BOOST_TEST(ok);
  BOOST_TEST(ran == 1);
  BOOST_TEST(text == "");
}

BOOST_AUTO_TEST_CASE(an_exception_is_logged_with_its_message_and_swallowed) {
  bool ok = true;
  std::string text = logged_by(
      [&] { ok = common::guard("redis reply", [] { throw std::runtime_error("no such key"); }); });
  BOOST_TEST(!ok);
  BOOST_TEST(text.find("ERROR callback: redis reply: unexpected exception: no such key") !=
                 std::string::npos,
             text);
}

BOOST_AUTO_TEST_CASE(anything_thrown_is_caught) {
  bool ok = true;
  std::string text =
      logged_by([&] { ok = common::guard("amqp read", [] { throw NotAnException{}; }); });
  BOOST_TEST(!ok);
  BOOST_TEST(text.find("ERROR callback: amqp read: unexpected exception\n") != std::string::npos,
             text);
}

BOOST_AUTO_TEST_CASE(the_guard_itself_never_throws) {
  auto throws = [] { throw 1; };
  static_assert(noexcept(common::guard("x", throws)));
  BOOST_TEST(!common::guard("x", throws));
}
