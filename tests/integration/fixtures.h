#pragma once
// Config snippets and JSON helpers shared by the integration tests.
#include <rapidjson/document.h>
#include <unistd.h>

#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "tests/harness/amqp_client.h"
#include "tests/harness/harness.h"

namespace sluice::test {

// A daemon section that keeps everything inside `dir`. As root, sluiced insists on a
// daemon.user; tests run workers as root unless a test says otherwise.
inline std::string daemon_yaml(const TempDir& dir, const std::string& extra = "") {
  std::string y = "daemon:\n";
  y += "  pidfile: " + dir.file("sluiced.pid") + "\n";
  y += "  error_log: " + dir.file("error.log") + "\n";
  y += "  shutdown_timeout: 5s\n";
  if (geteuid() == 0 && extra.find("user:") == std::string::npos) y += "  user: root\n";
  return y + extra;
}

inline std::string ports_list(const std::vector<uint16_t>& ports) {
  std::string s = "[";
  for (size_t i = 0; i < ports.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ports[i]);
  return s + "]";
}

inline std::string listen_yaml(const std::vector<uint16_t>& ports, const std::string& extra = "") {
  return "listen:\n  - address: 127.0.0.1\n    ports: " + ports_list(ports) +
         "\n    modules: [stats]\n" + extra;
}

// The rabbitmq section for this test binary's shared broker.
inline std::string shared_rabbit_yaml() {
  return "rabbitmq:\n  hosts: [\"127.0.0.1:" + std::to_string(shared_rabbit().amqp_port()) +
         "\"]\n";
}

inline rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " + text);
  return doc;
}

// The pid a worker reports about itself in /stats.
inline int stats_pid(uint16_t port) {
  HttpResponse r = http(HttpRequest{"GET", port, "/stats", "", {}, std::chrono::seconds(5), true});
  if (r.status != 200) return 0;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (doc.HasParseError() || !doc.HasMember("worker")) return 0;
  return doc["worker"]["pid"].GetInt();
}

// Error bodies are {"error": code, "message": sentence}.
inline void check_error_body(const HttpResponse& r, int status, const std::string& code) {
  BOOST_TEST(r.status == status);
  BOOST_TEST(r.header("content-type") == "application/json");
  rapidjson::Document doc = parse_json(r.body);
  BOOST_REQUIRE(doc.IsObject() && doc.HasMember("error") && doc.HasMember("message"));
  BOOST_TEST(doc["error"].GetString() == code);
  BOOST_TEST(std::string(doc["message"].GetString()).size() > 0u);
}

// Everything a connected socket receives until the peer closes or `timeout` passes.
inline std::string read_until_closed(int fd,
                                     std::chrono::seconds timeout = std::chrono::seconds(10)) {
  std::string raw;
  char buf[4096];
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    raw.append(buf, static_cast<size_t>(n));
  return raw;
}

// One response read off a raw connection.
struct RawResponse {
  std::string status_line;
  int status = 0;
  std::string head;  // the header lines, CRLF-separated, without the status line
  std::string body;
  std::string header(const std::string& name) const {
    for (size_t at = 0; at < head.size();) {
      size_t end = head.find("\r\n", at);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(at, end - at);
      size_t colon = line.find(':');
      if (colon != std::string::npos &&
          strcasecmp(line.substr(0, colon).c_str(), name.c_str()) == 0)
        return line.substr(line.find_first_not_of(' ', colon + 1));
      at = end + 2;
    }
    return "";
  }
};

// Splits what a connection received into responses, by their Content-Length (sluice sends
// one on every response that has a body). `head_only`: the requests were HEAD, so no body
// follows whatever Content-Length says. Stops at the first thing that is not a response.
inline std::vector<RawResponse> parse_responses(const std::string& raw, bool head_only = false) {
  std::vector<RawResponse> out;
  size_t at = 0;
  while (at < raw.size() && raw.compare(at, 5, "HTTP/") == 0) {
    size_t line_end = raw.find("\r\n", at);
    size_t head_end = raw.find("\r\n\r\n", at);
    if (line_end == std::string::npos || head_end == std::string::npos) break;
    RawResponse r;
    r.status_line = raw.substr(at, line_end - at);
    r.status = std::atoi(r.status_line.c_str() + 9);
    if (head_end > line_end) r.head = raw.substr(line_end + 2, head_end - line_end - 2);
    std::string length = r.header("Content-Length");
    size_t n = length.empty() || head_only ? 0 : std::stoul(length);
    r.body = raw.substr(head_end + 4, n);
    at = head_end + 4 + n;
    out.push_back(std::move(r));
  }
  return out;
}

// sluiced with one listener on a free port serving `modules` (its `listen_extra` lines
// added), started and ready. `sections`: other top-level sections (rabbitmq, publish, ...).
struct OneListener {
  OneListener(const std::string& modules, const std::string& listen_extra = "",
              const std::string& sections = "", const std::string& daemon_extra = "")
      : sluiced(dir, daemon_yaml(dir, daemon_extra) + sections +
                         "listen:\n  - address: 127.0.0.1\n    port: " + std::to_string(port) +
                         "\n    modules: " + modules + "\n" + listen_extra) {
    sluiced.start();
    BOOST_REQUIRE(sluiced.wait_ready({port}));
    pid = stats_pid(port);
    BOOST_REQUIRE(pid > 0);
  }
  // Same worker, still answering: nothing crashed.
  void check_alive() { BOOST_TEST(stats_pid(port) == pid); }

  TempDir dir;
  uint16_t port = free_port();
  Sluiced sluiced;
  int pid = 0;
};

// A statelessd form publish ("body=x") to `path` as `user`:`password`.
inline HttpResponse publish_as(uint16_t port, const std::string& path, const std::string& user,
                               const std::string& password) {
  return http(HttpRequest{"POST",
                          port,
                          path,
                          "body=x",
                          {{"Content-Type", "application/x-www-form-urlencoded"},
                           {"Authorization", basic_auth(user, password)}},
                          std::chrono::seconds(15),
                          false});
}

// publish and stats against the shared broker, with a fresh queue of its own that
// path() publishes to (the default exchange routes to it).
struct QueueGateway : OneListener {
  explicit QueueGateway(const std::string& listen_extra = "")
      : OneListener("[publish, stats]", listen_extra, shared_rabbit_yaml()),
        queue("q." + std::to_string(port)) {
    amqp.declare_queue(queue);
  }
  std::string path() const { return "/%2F/amq.default/" + queue; }

  AmqpClient amqp{shared_rabbit().amqp_port()};
  std::string queue;
};

}  // namespace sluice::test
