#define BOOST_TEST_MODULE http_timeout
// The whole request (line, headers and body) must arrive within request_timeout, however it
// trickles in: client_timeout is an idle timeout and restarts with every byte, so a body
// sent a byte a second held its connection for ever. Past the deadline: 408 with a JSON
// body, and the connection closes; the worker serves everyone else meanwhile.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

struct Server : OneListener {
  Server()
      : OneListener("[stats, publish]", "    client_timeout: 30s\n    request_timeout: 2s\n") {}
};

struct Trickle {
  std::string received;
  bool closed = false;
  Clock::duration took{};
};

// Sends `head`, then one byte of `rest` every 300 ms until the server answers and closes,
// or 8 s pass. What the server sent meanwhile is kept.
Trickle trickle(uint16_t port, const std::string& head, const std::string& rest) {
  Trickle t;
  int fd = connect_loopback(port);
  BOOST_REQUIRE(fd >= 0);
  auto started = Clock::now();
  send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  for (size_t i = 0; !t.closed && Clock::now() - started < 8s; ++i) {
    if (i < rest.size()) send(fd, &rest[i], 1, MSG_NOSIGNAL);
    std::this_thread::sleep_for(300ms);
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) != 0;) {
      if (n < 0) break;
      t.received.append(buf, static_cast<size_t>(n));
    }
    char c;
    t.closed = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
  }
  t.took = Clock::now() - started;
  close(fd);
  return t;
}

void check_timed_out(const Trickle& t) {
  std::vector<RawResponse> answers = parse_responses(t.received);
  BOOST_REQUIRE_MESSAGE(answers.size() == 1u, "got: " << t.received);
  BOOST_TEST(answers[0].status_line == "HTTP/1.1 408 Request Timeout");
  BOOST_TEST(answers[0].header("Connection") == "close");
  BOOST_TEST(parse_json(answers[0].body)["error"].GetString() == std::string("request_timeout"));
  BOOST_TEST(t.closed);
  BOOST_TEST((t.took < 5s));  // 2 s, give or take the 1 s sweep
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(timeout, Server)

BOOST_AUTO_TEST_CASE(a_body_that_trickles_in_gets_408) {
  std::string head = "POST /v/x/k HTTP/1.1\r\nHost: t\r\nAuthorization: " + basic_auth("u", "p") +
                     "\r\nContent-Length: 100\r\n\r\n";
  check_timed_out(trickle(port, head, std::string(100, 'b')));
  BOOST_TEST(stats_pid(port) == pid);
}

BOOST_AUTO_TEST_CASE(a_chunked_body_that_trickles_in_gets_408) {
  std::string head = "POST /v/x/k HTTP/1.1\r\nHost: t\r\nAuthorization: " + basic_auth("u", "p") +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string chunks;
  for (int i = 0; i < 50; ++i)
    chunks += "1\r\nc\r\n";
  check_timed_out(trickle(port, head, chunks));
  BOOST_TEST(stats_pid(port) == pid);
}

BOOST_AUTO_TEST_CASE(headers_that_trickle_in_get_408) {
  check_timed_out(
      trickle(port, "GET /stats HTTP/1.1\r\nHost: t\r\n", "X-Slow: " + std::string(100, 's')));
  BOOST_TEST(stats_pid(port) == pid);
}

// Others are served while slow clients hold their connections.
BOOST_AUTO_TEST_CASE(slow_clients_do_not_hold_up_the_others) {
  std::thread slow([this] {
    trickle(port,
            "POST /v/x/k HTTP/1.1\r\nHost: t\r\nAuthorization: " + basic_auth("u", "p") +
                "\r\nContent-Length: 9\r\n\r\n",
            "123456789");
  });
  for (int i = 0; i < 10; ++i)
    BOOST_TEST(http_get(port, "/stats").status == 200);
  slow.join();
}

BOOST_AUTO_TEST_SUITE_END()
