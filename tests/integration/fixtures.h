#pragma once
// Config snippets and JSON helpers shared by the integration tests.
#include <rapidjson/document.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

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

}  // namespace sluice::test
