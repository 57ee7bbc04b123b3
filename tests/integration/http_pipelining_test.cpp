#define BOOST_TEST_MODULE http_pipelining
// Pipelined requests with bodies, of any size and count, are answered in order, each once,
// and nothing of libevhtp's own output reaches stderr. libevhtp 1.2.18 fed the request behind
// a publish waiting for its confirm to its parser, which refused it as malformed (400 for a
// message that had in fact been published, so clients retried and duplicated), and printed
// "ODDITY, resuming when not paused" on the way.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const std::string kGuest = basic_auth("guest", "guest");

struct Gateway : QueueGateway {
  ~Gateway() {
    std::string out = sluiced.out_log() + sluiced.log();
    BOOST_TEST(out.find("ODDITY") == std::string::npos, "libevhtp printed: " << out);
    BOOST_TEST(out.find("stderr") == std::string::npos, "a worker wrote to stderr: " << out);
  }
};

// A publish to the default exchange straight into `queue`, with a body of `size` bytes.
std::string publish(const std::string& queue, int n, size_t size, bool close = false) {
  std::string body = "message_id=" + std::to_string(n) + "&body=" + std::string(size, 'p');
  return "POST /%2F/amq.default/" + queue + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + kGuest +
         "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
         std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(pipelining, Gateway)

// 40 publishes of 1 KiB in one write: the second and later reads of the socket arrive while
// the first publish waits for its confirm.
BOOST_AUTO_TEST_CASE(pipelined_publishes_are_each_answered_once_in_order) {
  std::string bytes;
  const int count = 40;
  for (int i = 0; i < count; ++i)
    bytes += publish(queue, i, 1024, i == count - 1);
  std::vector<RawResponse> answers = parse_responses(raw_exchange(port, bytes, 15s));
  BOOST_TEST(answers.size() == static_cast<size_t>(count));
  for (const auto& a : answers)
    BOOST_TEST(a.status == 204, a.status_line << " " << a.body);
  // Every message once, in the order sent.
  for (int i = 0; i < count; ++i) {
    auto m = amqp.get(queue);
    BOOST_REQUIRE(m.has_value());
    BOOST_TEST(m->properties["message_id"] == std::to_string(i));
  }
  BOOST_TEST(!amqp.get(queue).has_value());
}

// Answers of every kind, synchronous (404, 400, /stats) and held (publishes), interleaved on
// one connection, come back in request order; bodies beyond the 64 KiB the worker buffers
// per connection make it stop reading and go on once it has answered.
BOOST_AUTO_TEST_CASE(mixed_pipelines_of_any_size_keep_their_order) {
  std::string bytes;
  std::vector<int> expected;
  for (int i = 0; i < 30; ++i) {
    bytes += publish(queue, i, i % 3 == 0 ? 20000 : 300);
    expected.push_back(204);
    if (i % 5 == 0) {
      bytes += "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";
      expected.push_back(200);
    }
    if (i % 7 == 0) {
      bytes += "GET /no/such/thing/here HTTP/1.1\r\nHost: t\r\n\r\n";
      expected.push_back(404);
    }
    if (i % 4 == 0) {
      std::string bad = "priority=high";
      bytes += "POST /%2F/amq.default/" + queue +
               " HTTP/1.1\r\nHost: t\r\nAuthorization: " + kGuest +
               "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
               std::to_string(bad.size()) + "\r\n\r\n" + bad;
      expected.push_back(400);
    }
  }
  bytes += "GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  expected.push_back(200);
  std::string raw = raw_exchange(port, bytes, 20s);
  std::vector<RawResponse> answers = parse_responses(raw);
  std::vector<int> statuses;
  for (const auto& a : answers)
    statuses.push_back(a.status);
  BOOST_TEST(statuses == expected, boost::test_tools::per_element());
  // Each once, whole, in order (a read boundary inside a request line once cut its path).
  std::vector<std::string> ids;
  while (auto m = amqp.get(queue))
    ids.push_back(m->properties["message_id"]);
  std::vector<std::string> sent;
  for (int i = 0; i < 30; ++i)
    sent.push_back(std::to_string(i));
  BOOST_TEST(ids == sent, boost::test_tools::per_element());
}

// The next request arrives in a separate write while the previous publish still waits.
BOOST_AUTO_TEST_CASE(a_request_sent_while_the_previous_one_waits_is_answered_after_it) {
  int fd = connect_loopback(port);
  BOOST_REQUIRE(fd >= 0);
  std::string first = publish(queue, 1, 5000);
  std::string second = publish(queue, 2, 5000, true);
  BOOST_REQUIRE(send(fd, first.data(), first.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(first.size()));
  BOOST_REQUIRE(send(fd, second.data(), 100, MSG_NOSIGNAL) == 100);
  std::this_thread::sleep_for(20ms);
  BOOST_REQUIRE(send(fd, second.data() + 100, second.size() - 100, MSG_NOSIGNAL) ==
                static_cast<ssize_t>(second.size() - 100));
  std::string raw = read_until_closed(fd);
  close(fd);
  std::vector<RawResponse> answers = parse_responses(raw);
  BOOST_REQUIRE(answers.size() == 2u);
  BOOST_TEST(answers[0].status == 204);
  BOOST_TEST(answers[1].status == 204);
  BOOST_TEST(amqp.count(queue) == 2u);
}

// RFC 9112 section 2.2: empty lines before a request line are ignored (libevhtp stalled on
// them before the first request, printing "ODDITY").
BOOST_AUTO_TEST_CASE(empty_lines_before_a_request_are_ignored) {
  for (const std::string& before :
       {std::string("\r\n"), std::string("\n"), std::string("\r\n\r\n")}) {
    std::string raw = raw_exchange(
        port, before + "GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 5s);
    std::vector<RawResponse> answers = parse_responses(raw);
    BOOST_REQUIRE(answers.size() == 1u);
    BOOST_TEST(answers[0].status == 200);
  }
}

// After the answer to a request that ends the connection (Connection: close in any
// spelling, HTTP/1.0 without keep-alive), nothing the client sent behind it is executed: it
// would assume it was not, and send it again.
BOOST_AUTO_TEST_CASE(nothing_is_executed_after_the_last_request_of_a_connection) {
  for (const char* last : {"Connection: close\r\n", "Connection: CLOSE\r\n",
                           "Connection: keep-alive, close\r\n", "Connection: close, te\r\n"}) {
    std::string first = publish(queue, 1, 10);
    first.insert(first.find("\r\n\r\n") + 2, last);
    auto started = std::chrono::steady_clock::now();
    std::string raw = raw_exchange(port, first + publish(queue, 2, 10), 8s);
    std::vector<RawResponse> answers = parse_responses(raw);
    BOOST_REQUIRE_MESSAGE(answers.size() == 1u, last << raw);
    BOOST_TEST(answers[0].status == 204);
    BOOST_TEST(answers[0].header("Connection") == "close", last);
    BOOST_TEST((std::chrono::steady_clock::now() - started < 4s), last);  // closed by the server
    auto m = amqp.get(queue);
    BOOST_REQUIRE(m.has_value());
    BOOST_TEST(m->properties["message_id"] == "1");
    BOOST_TEST(!amqp.get(queue).has_value(), last);
  }
  // HTTP/1.0 without keep-alive: one request per connection.
  std::string one = publish(queue, 3, 10);
  one.replace(one.find("HTTP/1.1"), 8, "HTTP/1.0");
  std::vector<RawResponse> answers = parse_responses(raw_exchange(port, one + one, 8s));
  BOOST_REQUIRE(answers.size() == 1u);
  BOOST_TEST(answers[0].status_line == "HTTP/1.0 204 No Content");
  BOOST_TEST(amqp.count(queue) == 1u);
}

// A client that half-closes (shutdown(SHUT_WR), as `nc -N` does) still reads its answers:
// its messages were published, and a close without a word would make it send them again.
BOOST_AUTO_TEST_CASE(a_half_closed_client_gets_its_answers) {
  for (int requests : {1, 2}) {
    int fd = connect_loopback(port);
    BOOST_REQUIRE(fd >= 0);
    std::string bytes;
    for (int i = 0; i < requests; ++i)
      bytes += publish(queue, i, 10);
    BOOST_REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                  static_cast<ssize_t>(bytes.size()));
    shutdown(fd, SHUT_WR);
    std::string raw = read_until_closed(fd, std::chrono::seconds(8));
    close(fd);
    std::vector<RawResponse> answers = parse_responses(raw);
    BOOST_TEST(answers.size() == static_cast<size_t>(requests), raw);
    for (const auto& a : answers)
      BOOST_TEST(a.status == 204);
    BOOST_TEST(amqp.count(queue) == static_cast<uint32_t>(requests));
    amqp.purge(queue);
  }
  // A body cut short by the half-close is no request: no answer (not even a 400), nothing
  // published; the complete request before it is answered.
  std::string chunked = publish(queue, 7, 10);
  chunked.replace(chunked.find("Content-Length: "),
                  chunked.find("\r\n\r\n") - chunked.find("Content-Length: "),
                  "Transfer-Encoding: chunked");
  chunked = chunked.substr(0, chunked.find("\r\n\r\n") + 4) + "5\r\nbody=";
  int fd = connect_loopback(port);
  BOOST_REQUIRE(fd >= 0);
  std::string bytes = publish(queue, 6, 10) + chunked;
  BOOST_REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
  shutdown(fd, SHUT_WR);
  std::vector<RawResponse> answers =
      parse_responses(read_until_closed(fd, std::chrono::seconds(8)));
  close(fd);
  BOOST_REQUIRE(answers.size() == 1u);
  BOOST_TEST(answers[0].status == 204);
  BOOST_TEST(amqp.count(queue) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
