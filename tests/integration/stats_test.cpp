#define BOOST_TEST_MODULE stats
// /stats has statelessd's key set and types; /stats/fleet sums every worker; the Redis
// connection's state shows in the worker object and follows a real redis-server.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iterator>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

void require_number(const rapidjson::Value& obj, const char* key) {
  BOOST_REQUIRE_MESSAGE(obj.HasMember(key), std::string("missing key ") + key);
  BOOST_TEST(obj[key].IsNumber(), key);
}

void require_pair(const rapidjson::Value& obj, const char* key, const char* a, const char* b) {
  BOOST_REQUIRE_MESSAGE(obj.HasMember(key) && obj[key].IsObject(), key);
  require_number(obj[key], a);
  require_number(obj[key], b);
  BOOST_TEST(obj[key].MemberCount() == 2u);
}

void check_rusage_keys(const rapidjson::Value& doc) {
  require_pair(doc, "block", "input", "output");
  require_number(doc, "context_switches");
  require_pair(doc, "cpu_time", "user", "system");
  require_number(doc, "memory_usage");
  require_pair(doc, "page_faults", "minor", "major");
  require_number(doc, "page_size");
  require_number(doc, "signals_received");
  require_number(doc, "swap_outs");
}

uint64_t count(const rapidjson::Value& requests, const std::string& key) {
  auto it = requests.FindMember(key.c_str());
  return it == requests.MemberEnd() ? 0 : it->value.GetUint64();
}

bool wait_redis_state(uint16_t port, bool connected, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    HttpResponse r = http_get(port, "/stats");
    if (r.status == 200) {
      rapidjson::Document doc = parse_json(r.body);
      if (doc["worker"]["redis"]["connected"].GetBool() == connected) return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(stats_has_statelessds_keys_and_types) {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced s(dir, daemon_yaml(dir) + listen_yaml({port}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  BOOST_TEST(http_get(port, "/nowhere").status == 404);
  HttpResponse r = http_get(port, "/stats");
  BOOST_REQUIRE_EQUAL(r.status, 200);
  BOOST_TEST(r.header("content-type") == "application/json");
  rapidjson::Document doc = parse_json(r.body);
  const char* keys[] = {"host",
                        "port",
                        "timestamp",
                        "requests",
                        "block",
                        "context_switches",
                        "cpu_time",
                        "memory_usage",
                        "page_faults",
                        "page_size",
                        "signals_received",
                        "swap_outs",
                        "connections",
                        "counters",
                        "worker"};
  BOOST_TEST(doc.MemberCount() == std::size(keys));
  for (const char* k : keys)
    BOOST_TEST(doc.HasMember(k), k);
  BOOST_TEST(doc["host"].IsString());
  BOOST_TEST(doc["port"].GetInt() == port);
  BOOST_TEST(std::abs(doc["timestamp"].GetInt64() - static_cast<int64_t>(time(nullptr))) <= 2);
  check_rusage_keys(doc);
  BOOST_TEST(doc["memory_usage"].GetUint64() > 0u);
  BOOST_TEST(doc["page_size"].GetInt() == 4096);
  BOOST_TEST(doc["connections"].IsObject());
  const rapidjson::Value& req = doc["requests"];
  // statelessd's quirk, kept: this request's method is counted, its response not yet.
  BOOST_TEST(count(req, "method.GET") == 2u);
  BOOST_TEST(count(req, "response.404") == 1u);
  BOOST_TEST(count(req, "response.200") == 0u);
  BOOST_TEST(req["processing_time"].IsDouble());
  const rapidjson::Value& w = doc["worker"];
  BOOST_TEST(w["pid"].GetInt() == s.wait_workers(1).at(0));
  BOOST_TEST(w["respawns"].GetInt() == 0);
  BOOST_TEST(w["started"].GetInt64() <= doc["timestamp"].GetInt64());
  BOOST_TEST(!w.HasMember("redis"));  // no redis section, no connection
}

BOOST_AUTO_TEST_CASE(fleet_sums_every_worker) {
  TempDir dir;
  std::vector<uint16_t> ports = {free_port(), free_port(), free_port()};
  Sluiced s(dir, daemon_yaml(dir) + listen_yaml(ports));
  s.start();
  BOOST_REQUIRE(s.wait_ready(ports));
  // 1, 2 and 3 extra requests on the three workers.
  for (size_t i = 0; i < ports.size(); ++i) {
    for (size_t n = 0; n <= i; ++n)
      BOOST_TEST(http_get(ports[i], "/missing").status == 404);
  }
  std::this_thread::sleep_for(1100ms);  // let every worker publish its rusage once more
  HttpResponse r = http_get(ports[0], "/stats/fleet");
  BOOST_REQUIRE_EQUAL(r.status, 200);
  rapidjson::Document doc = parse_json(r.body);
  const rapidjson::Value& workers = doc["workers"];
  BOOST_REQUIRE(workers.IsArray());
  BOOST_REQUIRE_EQUAL(workers.Size(), 3u);
  std::vector<pid_t> pids = s.wait_workers(3);
  uint64_t get_sum = 0, not_found_sum = 0, minor_sum = 0, rss_sum = 0;
  std::vector<int> seen_ports;
  for (const auto& w : workers.GetArray()) {
    check_rusage_keys(w);
    BOOST_TEST(std::count(pids.begin(), pids.end(), w["pid"].GetInt()) == 1);
    seen_ports.push_back(w["port"].GetInt());
    get_sum += count(w["requests"], "method.GET");
    not_found_sum += count(w["requests"], "response.404");
    minor_sum += w["page_faults"]["minor"].GetUint64();
    rss_sum += w["memory_rss"].GetUint64();
  }
  std::sort(seen_ports.begin(), seen_ports.end());
  std::vector<int> want(ports.begin(), ports.end());
  std::sort(want.begin(), want.end());
  BOOST_TEST(seen_ports == want, boost::test_tools::per_element());
  const rapidjson::Value& totals = doc["totals"];
  BOOST_TEST(totals["workers"].GetInt() == 3);
  BOOST_TEST(not_found_sum == 6u);
  BOOST_TEST(count(totals["requests"], "response.404") == 6u);
  BOOST_TEST(get_sum == 7u);  // the six 404s and this request
  BOOST_TEST(count(totals["requests"], "method.GET") == get_sum);
  BOOST_TEST(totals["page_faults"]["minor"].GetUint64() == minor_sum);
  BOOST_TEST(totals["memory_rss"].GetUint64() == rss_sum);
  check_rusage_keys(totals);
}

BOOST_AUTO_TEST_CASE(redis_state_follows_the_server) {
  TempDir dir;
  RedisServer redis(dir.file("redis"));
  uint16_t port = free_port();
  std::string yaml = daemon_yaml(dir) +
                     "redis: { host: 127.0.0.1, port: " + std::to_string(redis.port()) + " }\n" +
                     listen_yaml({port});
  Sluiced s(dir, yaml);
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  BOOST_TEST(wait_redis_state(port, true, 5s));
  redis.kill9();
  BOOST_TEST(wait_redis_state(port, false, 5s));
  BOOST_TEST(http_get(port, "/stats").status == 200);  // the worker serves on
  redis.start();
  BOOST_TEST(wait_redis_state(port, true, 10s));
  // Logged on each change: connected, lost, connected again.
  std::string log = s.log();
  size_t first = log.find("redis 127.0.0.1");
  size_t lost = log.find("unavailable", first);
  BOOST_TEST(log.find("connected", first) < lost);
  BOOST_TEST(lost != std::string::npos);
  BOOST_TEST(log.find("connected", lost) != std::string::npos);
}
