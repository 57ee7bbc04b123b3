#define BOOST_TEST_MODULE http_head
// HEAD gets the headers GET would get and no body, on every route and every answer (RFC 9110
// section 9.3.2). libevhtp wrote the body anyway, so a keep-alive client read it as the start
// of its next response.
#include <boost/test/unit_test.hpp>
#include <string>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

struct Server : OneListener {
  Server() : OneListener("[stats, publish]") {}
};

struct Case {
  std::string path;
  std::string auth;  // an Authorization header line, or ""
  int status;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(head, Server)

// Several HEADs pipelined on one connection, then a GET: if any HEAD answer carried a body,
// the responses after it would not parse, and the GET's would be off.
BOOST_AUTO_TEST_CASE(every_route_answers_head_without_a_body) {
  std::string auth = "Authorization: " + basic_auth("u", "p") + "\r\n";
  const Case cases[] = {
      {"/stats", "", 200}, {"/stats/fleet", "", 200}, {"/no/such/thing/here", "", 404},
      {"/v/x/k", "", 401}, {"/v/x/k", auth, 405},
  };
  std::string bytes;
  for (const Case& c : cases)
    bytes += "HEAD " + c.path + " HTTP/1.1\r\nHost: t\r\n" + c.auth + "\r\n";
  bytes += "GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  std::string raw = raw_exchange(port, bytes, 5s);
  std::vector<RawResponse> heads = parse_responses(raw, true);
  BOOST_REQUIRE(heads.size() == std::size(cases) + 1);
  for (size_t i = 0; i < std::size(cases); ++i) {
    BOOST_TEST(heads[i].status == cases[i].status, cases[i].path);
    if (cases[i].status == 401) continue;  // statelessd's bare 401
    // The length GET's body would have, announced and not sent.
    BOOST_TEST(std::stoul(heads[i].header("Content-Length")) > 0u, cases[i].path);
    BOOST_TEST(heads[i].header("Content-Type") == "application/json", cases[i].path);
  }
  BOOST_TEST(heads[4].header("Allow") == "POST");
  // No body byte before the GET's response, and the GET's body is the whole rest.
  size_t get_at = raw.rfind("HTTP/1.1 200 OK");
  BOOST_TEST(raw.find('{') > get_at);
  size_t length = std::stoul(heads.back().header("Content-Length"));
  BOOST_REQUIRE(raw.size() >= length);
  BOOST_TEST(parse_json(raw.substr(raw.size() - length)).HasMember("worker"));
}

BOOST_AUTO_TEST_CASE(head_and_get_announce_the_same_headers) {
  HttpResponse got = http_get(port, "/no/such/thing/here");
  std::string raw = raw_exchange(
      port, "HEAD /no/such/thing/here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 3s);
  std::vector<RawResponse> head = parse_responses(raw, true);
  BOOST_REQUIRE(head.size() == 1u);
  BOOST_TEST(head[0].status == got.status);
  BOOST_TEST(head[0].header("Content-Length") == std::to_string(got.body.size()));
  BOOST_TEST(raw.size() == raw.find("\r\n\r\n") + 4);  // nothing after the headers
}

BOOST_AUTO_TEST_SUITE_END()
