#define BOOST_TEST_MODULE router
#include "worker/router.h"

#include <boost/test/unit_test.hpp>

#include "worker/modules/registry.h"

using namespace sluice::worker;

namespace {

Router sample() {
  Router r;
  MethodSet post = method_bit(htp_method_POST);
  MethodSet get = method_bit(htp_method_GET);
  r.add("/*/*/*", post, nullptr, "publish");  // registered first, must still match last
  r.add("/q/*", get | post, nullptr, "queues");
  r.add("/stats", get, nullptr, "stats");
  r.add("/stats/fleet", get, nullptr, "stats");
  r.add("/files/**", get, nullptr, "files");
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(exact_routes_come_before_patterns_and_catch_alls_last) {
  Router r = sample();
  std::vector<std::string> order;
  for (const auto& route : r.routes())
    order.push_back(route.pattern);
  std::vector<std::string> expected = {"/stats", "/stats/fleet", "/q/*", "/files/**", "/*/*/*"};
  BOOST_TEST(order == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(exact_match_beats_the_three_segment_catch_all) {
  Router r = sample();
  RouteMatch m = r.match("/stats/fleet/x", htp_method_POST);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.route->module == "publish");
  BOOST_TEST(m.params.size() == 3u);
  BOOST_TEST(m.params[2] == "x");
  m = r.match("/stats/fleet", htp_method_GET);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.route->pattern == "/stats/fleet");
}

BOOST_AUTO_TEST_CASE(wildcards_capture_one_non_empty_segment) {
  Router r = sample();
  RouteMatch m = r.match("/q/jobs", htp_method_GET);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.params.at(0) == "jobs");
  BOOST_TEST(r.match("/q/", htp_method_GET).route == nullptr);
  BOOST_TEST(r.match("/q/a/b/c/d", htp_method_GET).route == nullptr);
  // Percent-encoded segments are captured raw; decoding is the module's job.
  m = r.match("/%2F/amq.direct/key", htp_method_POST);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.params.at(0) == "%2F");
}

BOOST_AUTO_TEST_CASE(double_star_captures_the_rest) {
  Router r = sample();
  RouteMatch m = r.match("/files/a/b/c", htp_method_GET);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.params.at(0) == "a/b/c");
  m = r.match("/files", htp_method_GET);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.params.at(0) == "");
  // The rest is taken as sent: empty segments and a trailing slash are kept.
  m = r.match("/files/a//b/", htp_method_GET);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.params.at(0) == "a//b/");
}

BOOST_AUTO_TEST_CASE(head_is_served_by_get_routes) {
  Router r = sample();
  RouteMatch m = r.match("/stats", htp_method_HEAD);
  BOOST_REQUIRE(m.route != nullptr);
  BOOST_TEST(m.route->pattern == "/stats");
  m = r.match("/a/b/c", htp_method_HEAD);  // publish takes POST only
  BOOST_TEST(m.route == nullptr);
}

BOOST_AUTO_TEST_CASE(wrong_method_reports_the_allowed_ones) {
  Router r = sample();
  RouteMatch m = r.match("/stats", htp_method_DELETE);
  BOOST_TEST(m.route == nullptr);
  BOOST_TEST(allow_header(m.allowed) == "GET, HEAD");  // a GET route takes HEAD too
  m = r.match("/nothing/here", htp_method_GET);
  BOOST_TEST(m.route == nullptr);
  BOOST_TEST(m.allowed == 0u);
}

BOOST_AUTO_TEST_CASE(a_later_route_can_take_a_method_an_earlier_one_refused) {
  Router r = sample();
  // Only publish's catch-all matches, and it takes POST alone: 405 with Allow: POST.
  RouteMatch m = r.match("/a/b/c", htp_method_GET);
  BOOST_TEST(m.route == nullptr);
  BOOST_TEST(allow_header(m.allowed) == "POST");
}

// Pins the real route table of the modules this build has: a precedence change shows up
// here in review.
BOOST_AUTO_TEST_CASE(registry_route_table) {
  Router r;
  for (auto& m : make_modules({}))
    m->add_routes(r);
  std::vector<std::string> table;
  for (const auto& route : r.routes())
    table.push_back(route.module + " " + route.pattern);
  std::vector<std::string> expected = {"stats /stats", "stats /stats/fleet", "publish /*/*/*"};
  BOOST_TEST(table == expected, boost::test_tools::per_element());
  std::vector<std::string> modules = {"stats", "publish"};
  BOOST_TEST(known_modules() == modules, boost::test_tools::per_element());
}
