#define BOOST_TEST_MODULE http_framing
// Request framing as RFC 9112 has it, whatever libevhtp 1.2.18 makes of it: Transfer-Encoding
// in any case, with chunk extensions, only chunked as the final coding; a chunk size that
// overflows; Content-Length with and without whitespace, and its malformed spellings; no space
// before a colon; Host; NUL bytes; reason phrases. Each refusal is a JSON 4xx/5xx and the
// worker keeps serving. Before, `CHUNKED` and `gzip, chunked` were read as an empty body and
// the body parsed as the next request.
#include <boost/test/unit_test.hpp>
#include <string>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const std::string kGuest = basic_auth("guest", "guest");

struct Gateway : QueueGateway {
  // The head of a publish into `queue`; `framing` ends with the blank line's first CRLF.
  std::string head(const std::string& framing) const {
    return "POST " + path() + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + kGuest +
           "\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n" +
           framing + "\r\n";
  }
  RawResponse exchange(const std::string& bytes) {
    std::vector<RawResponse> answers = parse_responses(raw_exchange(port, bytes, 5s));
    BOOST_REQUIRE_MESSAGE(answers.size() == 1u, "expected one answer to: " << bytes);
    return answers[0];
  }
  void check_error(const RawResponse& r, int status, const std::string& code) {
    BOOST_TEST(r.status == status, r.status_line << " " << r.body);
    rapidjson::Document doc = parse_json(r.body);
    BOOST_TEST(doc["error"].GetString() == code);
  }
  std::string next_body() {
    auto m = amqp.get(queue);
    BOOST_REQUIRE(m.has_value());
    return m->body;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(framing, Gateway)

BOOST_AUTO_TEST_CASE(transfer_encoding_is_case_insensitive_and_takes_chunk_extensions) {
  for (const char* te : {"chunked", "CHUNKED", "Chunked", "chunked ", " , chunked"}) {
    std::string body = "6;name=value\r\nbody=h\r\n4 ; x\r\nello\r\n0\r\nX-Trailer: 1\r\n\r\n";
    RawResponse r = exchange(head(std::string("Transfer-Encoding: ") + te + "\r\n") + body);
    BOOST_TEST(r.status == 204, te << ": " << r.status_line << " " << r.body);
    BOOST_TEST(next_body() == "hello", te);
  }
  check_alive();
}

BOOST_AUTO_TEST_CASE(codings_other_than_a_final_chunked_are_refused) {
  std::string body = "5\r\nbody=\r\n0\r\n\r\n";
  check_error(exchange(head("Transfer-Encoding: gzip, chunked\r\n") + body), 501,
              "unsupported_transfer_coding");
  check_error(exchange(head("Transfer-Encoding: chunked, gzip\r\n") + body), 400,
              "invalid_transfer_encoding");
  check_error(exchange(head("Transfer-Encoding: chunked, chunked\r\n") + body), 400,
              "invalid_transfer_encoding");
  check_error(exchange(head("Transfer-Encoding: identity\r\n") + body), 400,
              "invalid_transfer_encoding");
  check_error(exchange(head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n") + body),
              501, "unsupported_transfer_coding");
  BOOST_TEST(amqp.count(queue) == 0u);
  check_alive();
}

// 0x1_0000_0000_0000_0005 wraps to 5 in a 64-bit accumulator: the "body" would end early and
// the rest be read as a request of its own.
BOOST_AUTO_TEST_CASE(a_chunk_size_that_overflows_is_a_400_and_nothing_is_smuggled) {
  std::string smuggled = "GET /stats/fleet HTTP/1.1\r\nHost: t\r\n\r\n";
  std::string raw = raw_exchange(
      port, head("Transfer-Encoding: chunked\r\n") + "10000000000000005\r\nbody=" + smuggled, 5s);
  std::vector<RawResponse> answers = parse_responses(raw);
  BOOST_REQUIRE(answers.size() == 1u);
  check_error(answers[0], 400, "invalid_chunked_body");
  BOOST_TEST(raw.find("workers") == std::string::npos);  // no /stats/fleet answer
  BOOST_TEST(amqp.count(queue) == 0u);
  check_alive();
}

BOOST_AUTO_TEST_CASE(content_length_takes_whitespace_and_refuses_anything_but_digits) {
  RawResponse r = exchange(head("Content-Length:   6  \r\n") + "body=x");
  BOOST_TEST(r.status == 204, r.status_line << " " << r.body);
  BOOST_TEST(next_body() == "x");
  for (const char* bad : {"+6", "6, 6", "-1", "0x6", "six"}) {
    RawResponse refused = exchange(head(std::string("Content-Length: ") + bad + "\r\n") + "body=x");
    check_error(refused, 400, "invalid_content_length");
    BOOST_TEST(refused.body.find("Content-Length") != std::string::npos, bad);
  }
  BOOST_TEST(amqp.count(queue) == 0u);
  check_alive();
}

BOOST_AUTO_TEST_CASE(a_space_before_the_colon_is_a_400) {
  // libevhtp would read a field named "Content-Length " and take the body for a request.
  std::string smuggled = "GET /stats/fleet HTTP/1.1\r\nHost: t\r\n\r\n";
  std::string raw = raw_exchange(
      port, head("Content-Length : " + std::to_string(smuggled.size()) + "\r\n") + smuggled, 5s);
  std::vector<RawResponse> answers = parse_responses(raw);
  BOOST_REQUIRE(answers.size() == 1u);
  check_error(answers[0], 400, "invalid_header");
  BOOST_TEST(raw.find("workers") == std::string::npos);
  check_alive();
}

BOOST_AUTO_TEST_CASE(http11_needs_one_host) {
  check_error(exchange("GET /stats HTTP/1.1\r\n\r\n"), 400, "missing_host");
  check_error(exchange("GET /stats HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "invalid_host");
  RawResponse old = exchange("GET /stats HTTP/1.0\r\n\r\n");  // HTTP/1.0 has no Host rule
  BOOST_TEST(old.status_line == "HTTP/1.0 200 OK");
  check_alive();
}

BOOST_AUTO_TEST_CASE(a_nul_byte_in_the_head_is_a_400_and_in_a_body_is_data) {
  check_error(
      exchange(std::string("GET /stats HTTP/1.1\r\nHost: t\r\nX-User: alice\0admin\r\n\r\n", 53)),
      400, "invalid_header");
  check_error(
      exchange(std::string("GET /stats HTTP/1.1\r\nHost: t\r\nX-Us\0er: alice\r\n\r\n", 48)), 400,
      "invalid_header");
  std::string body("body=a\0b", 8);
  RawResponse r = exchange(head("Content-Length: 8\r\n") + body);
  BOOST_TEST(r.status == 204, r.status_line << " " << r.body);
  BOOST_TEST(next_body() == std::string("a\0b", 3));
  check_alive();
}

// Two of a field sluice reads once: a proxy in front may have read the other one.
BOOST_AUTO_TEST_CASE(a_second_authorization_or_content_type_is_a_400) {
  std::string second = "Authorization: " + basic_auth("other", "x") + "\r\n";
  check_error(exchange(head(second + "Content-Length: 6\r\n") + "body=x"), 400, "ambiguous_header");
  check_error(exchange(head("Content-Type: text/plain\r\nContent-Length: 6\r\n") + "body=x"), 400,
              "ambiguous_header");
  BOOST_TEST(amqp.count(queue) == 0u);
  check_alive();
}

BOOST_AUTO_TEST_CASE(a_host_that_is_no_host_is_a_400) {
  for (const char* host : {"Host:\r\n", "Host: a b\r\n",
                           "Host: a\x01"
                           "b\r\n",
                           "Host: a/b\r\n"})
    check_error(exchange(std::string("GET /stats HTTP/1.1\r\n") + host + "\r\n"), 400,
                "invalid_host");
  BOOST_TEST(exchange("GET /stats HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n").status == 200);
  check_alive();
}

// rabbitmq-c takes names and credentials as C strings: "q%00x" was the queue "q", and
// "guest\0x" logged in as guest while counting as a user of its own.
BOOST_AUTO_TEST_CASE(a_nul_in_a_name_or_in_the_credentials_is_refused) {
  std::string request = head("Content-Length: 6\r\n") + "body=x";
  std::string nul_queue = request;
  nul_queue.replace(nul_queue.find(queue), queue.size(), queue + "%00x");
  check_error(exchange(nul_queue), 400, "invalid_path");
  std::string nul_user = request;
  nul_user.replace(nul_user.find(kGuest), kGuest.size(),
                   basic_auth(std::string("guest\0x", 7), "guest"));
  RawResponse r = exchange(nul_user);
  BOOST_TEST(r.status == 401);
  BOOST_TEST(r.body.empty());
  BOOST_TEST(amqp.count(queue) == 0u);
  check_alive();
}

BOOST_AUTO_TEST_CASE(every_status_line_has_its_reason_phrase) {
  std::string request = "GET /stats HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 200; ++i)
    request += "X-Flood-" + std::to_string(i) + ": f\r\n";
  RawResponse r = exchange(request + "\r\n");
  BOOST_TEST(r.status_line == "HTTP/1.1 431 Request Header Fields Too Large");
  r = exchange(head("Expect: 200-ok\r\nContent-Length: 6\r\n") + "body=x");
  BOOST_TEST(r.status_line == "HTTP/1.1 417 Expectation Failed");
  r = exchange(head("Transfer-Encoding: gzip, chunked\r\n"));
  BOOST_TEST(r.status_line == "HTTP/1.1 501 Not Implemented");
  check_alive();
}

BOOST_AUTO_TEST_SUITE_END()
