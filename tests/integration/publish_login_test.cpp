#define BOOST_TEST_MODULE publish_login
// Wrong passwords cost the broker little: a refused (user, password) is answered 401 from the
// worker's memory, new logins are bounded per worker and per user (429 too_many_logins
// beyond), and a good login still gets through right after a burst of bad ones. The count
// of login attempts is the broker's own (management API), so the test sees what the broker
// saw.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "tests/harness/amqp_client.h"
#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

// AMQP 0-9-1 login attempts the broker has counted, successful or not (GET
// /api/auth/attempts/<node>, read from the broker's metrics table when asked).
uint64_t broker_login_attempts() {
  RabbitServer& rabbit = shared_rabbit();
  HttpResponse r = http_get(rabbit.mgmt_port(), "/api/auth/attempts/" + rabbit.node_name(),
                            {{"Authorization", basic_auth("guest", "guest")}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  rapidjson::Document doc = parse_json(r.body);
  uint64_t attempts = 0;
  for (const auto& entry : doc.GetArray()) {
    std::string protocol = entry["protocol"].GetString();
    if (protocol.rfind("amqp", 0) == 0) attempts += entry["auth_attempts"].GetUint64();
  }
  return attempts;
}

struct Gateway : OneListener {
  Gateway() : OneListener("[publish, stats]", "", shared_rabbit_yaml()) {}
  HttpResponse post(const std::string& user, const std::string& password,
                    const std::string& path = "/%2F/amq.topic/login") {
    return publish_as(port, path, user, password);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(login, Gateway)

BOOST_AUTO_TEST_CASE(a_burst_of_wrong_passwords_reaches_the_broker_a_few_times_only) {
  shared_rabbit().ctl({"add_user", "victim", "right"});
  shared_rabbit().ctl({"set_permissions", "-p", "/", "victim", ".*", ".*", ".*"});
  shared_rabbit().ctl({"add_user", "bystander", "own"});
  shared_rabbit().ctl({"set_permissions", "-p", "/", "bystander", ".*", ".*", ".*"});
  // guest keeps a connection open from before the burst.
  BOOST_REQUIRE(post("guest", "guest").status == 204);

  uint64_t before = broker_login_attempts();
  auto started = std::chrono::steady_clock::now();
  std::map<int, int> statuses;
  std::string unexpected;
  int requests = 0;
  for (int i = 0; std::chrono::steady_clock::now() - started < 1s; ++i, ++requests) {
    // A new guess each time, the same one every fourth request, and guest's own.
    std::string user = i % 2 == 0 ? "victim" : "guest";
    std::string password = i % 4 == 3 ? "same-wrong" : "guess-" + std::to_string(i);
    HttpResponse r = post(user, password);
    ++statuses[r.status];
    bool throttled = r.status == 429 && r.header("retry-after") == "1" &&
                     r.body.find("too_many_logins") != std::string::npos;
    bool refused = r.status == 401 && r.body.find("login_refused") != std::string::npos &&
                   r.header("www-authenticate") == "Basic realm=\"statelessd\"";
    if (!throttled && !refused && unexpected.empty()) {
      unexpected = std::to_string(r.status) + " " + r.error + " " + r.body;
    }
  }
  auto took = std::chrono::steady_clock::now() - started;

  // Right afterwards: a kept connection needs no login; a fresh login for another user is
  // within the worker's budget; the attacked user's own password gets through in a second.
  BOOST_TEST(post("guest", "guest").status == 204);
  BOOST_TEST(post("bystander", "own").status == 204);
  HttpResponse good = post("victim", "right");
  for (int i = 0; i < 30 && good.status == 429; ++i) {
    std::this_thread::sleep_for(100ms);
    good = post("victim", "right");
  }
  BOOST_TEST(good.status == 204, good.status << " " << good.body);
  BOOST_TEST(sluiced.running());

  uint64_t attempts = broker_login_attempts() - before;
  BOOST_TEST_MESSAGE(requests << " requests in "
                              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                              << " ms: " << statuses[401] << " x 401, " << statuses[429]
                              << " x 429; the broker saw " << attempts << " logins");
  BOOST_TEST(unexpected.empty(), unexpected);
  BOOST_TEST(requests >= 100);
  // Per user 5 at once, then one a second once refused: 2 users, about a second, plus the
  // two good logins afterwards.
  BOOST_TEST(attempts <= 16u);
  BOOST_TEST(sluiced.log().find("guess-") == std::string::npos);
}

// Across vhosts: the broker checks the password before the vhost, so a wrong one is wrong
// everywhere and is answered from memory without another login.
BOOST_AUTO_TEST_CASE(a_refused_password_is_remembered_across_vhosts) {
  shared_rabbit().ctl({"add_vhost", "second"});
  check_error_body(post("guest", "nope"), 401, "login_refused");
  uint64_t before = broker_login_attempts();
  for (const char* vhost : {"second", "%2F", "third"}) {
    check_error_body(post("guest", "nope", std::string("/") + vhost + "/amq.topic/x"), 401,
                     "login_refused");
  }
  BOOST_TEST(broker_login_attempts() - before == 0u);
  BOOST_TEST(post("guest", "guest").status == 204);
}

BOOST_AUTO_TEST_SUITE_END()
