#define BOOST_TEST_MODULE reload
// SIGHUP and SIGUSR1: reload keeps sockets and refuses bad configs; reopen follows a
// renamed log.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

std::string config_for(const TempDir& dir, const std::vector<uint16_t>& ports) {
  return daemon_yaml(dir) + listen_yaml(ports);
}

// Waits until `port` is served by a worker that is not in `old`.
bool wait_new_worker(uint16_t port, const std::vector<pid_t>& old, std::chrono::milliseconds t) {
  auto until = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < until) {
    int pid = stats_pid(port);
    if (pid != 0 && std::find(old.begin(), old.end(), pid) == old.end()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sighup_adds_a_port_and_replaces_the_workers) {
  TempDir dir;
  uint16_t a = free_port(), b = free_port();
  Sluiced s(dir, config_for(dir, {a}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a}));
  std::vector<pid_t> old = s.wait_workers(1);
  BOOST_TEST(!port_open(b));
  s.write_config(config_for(dir, {a, b}));
  s.signal(SIGHUP);
  BOOST_REQUIRE(wait_for_port(b, 5s));
  BOOST_TEST(http_get(b, "/stats").status == 200);
  BOOST_TEST(wait_new_worker(a, old, 5s));
  std::vector<pid_t> now = s.wait_workers(2, old);
  BOOST_TEST(now.size() == 2u);
  BOOST_TEST(s.log().find("reloaded: 2 listeners") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sighup_removing_a_port_closes_it) {
  TempDir dir;
  uint16_t a = free_port(), b = free_port();
  Sluiced s(dir, config_for(dir, {a, b}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a, b}));
  s.write_config(config_for(dir, {a}));
  s.signal(SIGHUP);
  for (int i = 0; i < 100 && port_open(b); ++i)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(!port_open(b));
  BOOST_TEST(http_get(a, "/stats").status == 200);
  BOOST_TEST(s.wait_workers(1).size() == 1u);
}

BOOST_AUTO_TEST_CASE(sighup_with_a_broken_config_keeps_the_old_workers) {
  TempDir dir;
  uint16_t a = free_port(), b = free_port();
  Sluiced s(dir, config_for(dir, {a, b}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a, b}));
  std::vector<pid_t> before = s.wait_workers(2);
  s.write_config(config_for(dir, {a, b}) + "bogus_section: 1\nlisten_typo: [\n");
  s.signal(SIGHUP);
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(s.worker_pids() == before, boost::test_tools::per_element());
  BOOST_TEST(http_get(a, "/stats").status == 200);
  BOOST_TEST(http_get(b, "/stats").status == 200);
  std::string log = s.log();
  BOOST_TEST(log.find(s.config_path() + ":") != std::string::npos);
  BOOST_TEST(log.find("reload aborted: keeping the running configuration") != std::string::npos);
  // A config that parses but fails validation is refused the same way.
  s.write_config(config_for(dir, {a, b}) + "redis: { port: 99999 }\n");
  s.signal(SIGHUP);
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(s.worker_pids() == before, boost::test_tools::per_element());
  BOOST_TEST(s.log().find("redis.port") != std::string::npos);
}

namespace {

std::string publish_config_for(const TempDir& dir, uint16_t port, const std::string& publish) {
  return daemon_yaml(dir) + shared_rabbit_yaml() +
         "listen:\n  - address: 127.0.0.1\n    port: " + std::to_string(port) +
         "\n    modules: [publish, stats]\n" + publish;
}

// The delivery_mode the broker got for a body-less publish to `queue` through `port`.
std::string published_delivery_mode(uint16_t port, AmqpClient& amqp, const std::string& queue) {
  // A fresh connection: a kept one may still lead to the draining worker of the old config.
  HttpResponse r = http(HttpRequest{"POST",
                                    port,
                                    "/%2F/amq.default/" + queue,
                                    "body=x",
                                    {{"Content-Type", "application/x-www-form-urlencoded"},
                                     {"Authorization", basic_auth("guest", "guest")}},
                                    15s,
                                    true});
  BOOST_TEST_REQUIRE(r.status == 204, r.body);
  auto message = amqp.get(queue);
  BOOST_TEST_REQUIRE(message.has_value());
  return message->properties["delivery_mode"];
}

}  // namespace

// A module's settings are part of the config a reload checks: a bad publish value is logged
// at its own position and the old workers keep serving with the old settings; a good reload
// then gives the new workers the new settings.
BOOST_AUTO_TEST_CASE(sighup_checks_the_publish_section_and_applies_it) {
  TempDir dir;
  uint16_t a = free_port();
  AmqpClient amqp(shared_rabbit().amqp_port());
  const std::string queue = "reload." + std::to_string(a);
  amqp.declare_queue(queue);
  Sluiced s(dir, publish_config_for(dir, a, ""));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a}));
  std::vector<pid_t> before = s.wait_workers(1);
  BOOST_TEST(published_delivery_mode(a, amqp, queue) == "2");

  const std::string bad =
      publish_config_for(dir, a, "publish:\n  mandatory: false\n  default_delivery_mode: 7\n");
  s.write_config(bad);
  s.signal(SIGHUP);
  for (int i = 0; i < 100 && s.log().find("reload aborted") == std::string::npos; ++i)
    std::this_thread::sleep_for(20ms);
  std::string log = s.log();
  const auto at = bad.find("  default_delivery_mode: 7");
  const std::string line = std::to_string(std::count(bad.begin(), bad.begin() + at, '\n') + 1);
  const std::string problem = s.config_path() + ":" + line +
                              ":26: publish.default_delivery_mode: must be 1 (transient) or 2 "
                              "(persistent)";
  BOOST_TEST(log.find(problem) != std::string::npos, problem + "\n---\n" + log);
  BOOST_TEST(log.find("reload aborted: keeping the running configuration") != std::string::npos);
  BOOST_TEST(s.worker_pids() == before, boost::test_tools::per_element());
  BOOST_TEST(published_delivery_mode(a, amqp, queue) == "2");

  s.write_config(publish_config_for(dir, a, "publish:\n  default_delivery_mode: 1\n"));
  s.signal(SIGHUP);
  BOOST_REQUIRE(wait_new_worker(a, before, 5s));
  BOOST_TEST(published_delivery_mode(a, amqp, queue) == "1");
}

// The socket of a port present in both configs is never closed, and a worker always
// accepts on it: a steady stream of new connections sees no refusal and no failure.
BOOST_AUTO_TEST_CASE(sighup_under_load_refuses_nothing) {
  TempDir dir;
  uint16_t a = free_port();
  Sluiced s(dir, config_for(dir, {a}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a}));
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_failure;
  std::mutex m;
  auto client = [&] {
    while (!done) {
      HttpResponse r = http(HttpRequest{"GET", a, "/stats", "", {}, 5s, true});
      if (r.status == 200) {
        ++ok;
      } else {
        ++failed;
        std::lock_guard<std::mutex> lock(m);
        if (first_failure.empty()) first_failure = std::to_string(r.status) + " " + r.error;
      }
    }
  };
  std::thread c1(client), c2(client);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(300ms);
    s.signal(SIGHUP);
  }
  std::this_thread::sleep_for(500ms);
  done = true;
  c1.join();
  c2.join();
  BOOST_TEST(failed.load() == 0, first_failure);
  BOOST_TEST(ok.load() > 100);
  size_t reloads = 0;
  for (size_t at = 0; (at = s.log().find("reloaded:", at)) != std::string::npos; ++at)
    ++reloads;
  BOOST_TEST(reloads == 5u);
}

BOOST_AUTO_TEST_CASE(sigusr1_reopens_the_log_after_a_rename) {
  TempDir dir;
  uint16_t a = free_port();
  Sluiced s(dir, config_for(dir, {a}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a}));
  std::string log = dir.file("error.log");
  BOOST_REQUIRE(std::rename(log.c_str(), dir.file("error.log.1").c_str()) == 0);
  s.signal(SIGUSR1);
  for (int i = 0; i < 100 && !dir.exists("error.log"); ++i)
    std::this_thread::sleep_for(20ms);
  BOOST_REQUIRE(dir.exists("error.log"));
  // The supervisor writes to the new file...
  BOOST_TEST(dir.read("error.log").find("log reopened") != std::string::npos);
  // ...and so do the workers: a reload makes the old one log its graceful stop.
  pid_t worker = s.wait_workers(1).at(0);
  s.signal(SIGHUP);
  for (int i = 0; i < 100; ++i) {
    if (dir.read("error.log").find("[" + std::to_string(worker) + "]") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(dir.read("error.log").find("[" + std::to_string(worker) + "]") != std::string::npos);
  BOOST_TEST(dir.read("error.log.1").find("log reopened") == std::string::npos);
}

namespace {

// The "respawns" a worker reports about itself in /stats (-1 if it does not answer).
int stats_respawns(uint16_t port) {
  HttpResponse r = http(HttpRequest{"GET", port, "/stats", "", {}, 5s, true});
  if (r.status != 200) return -1;
  rapidjson::Document doc = parse_json(r.body);
  return doc["worker"]["respawns"].GetInt();
}

// The /stats/fleet row of worker `pid`, as {port, respawns}; {0, -1} if it has none.
std::pair<unsigned, int> fleet_row(uint16_t port, int pid) {
  rapidjson::Document doc = parse_json(http_get(port, "/stats/fleet").body);
  for (const auto& w : doc["workers"].GetArray()) {
    if (w["pid"].GetInt() == pid) return {w["port"].GetUint(), w["respawns"].GetInt()};
  }
  return {0, -1};
}

}  // namespace

// A port that stays in the config keeps its history across a reload: the fleet view must
// not make a crashed port look fresh, and its backoff goes on where it stood.
BOOST_AUTO_TEST_CASE(sighup_keeps_the_respawn_count_and_backoff_of_a_port) {
  TempDir dir;
  uint16_t a = free_port(), b = free_port();
  Sluiced s(dir, config_for(dir, {a, b}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({a, b}));
  int crashed = stats_pid(a);
  BOOST_REQUIRE(crashed > 0);
  kill(crashed, SIGKILL);
  BOOST_REQUIRE(wait_new_worker(a, {crashed}, 5s));
  BOOST_REQUIRE_EQUAL(stats_respawns(a), 1);
  std::vector<pid_t> old = s.wait_workers(2);
  BOOST_REQUIRE_EQUAL(old.size(), 2u);

  s.signal(SIGHUP);
  BOOST_REQUIRE(wait_new_worker(a, old, 5s));
  BOOST_REQUIRE(wait_new_worker(b, old, 5s));
  int reloaded = stats_pid(a);
  BOOST_TEST(stats_respawns(a) == 1);
  BOOST_TEST(stats_respawns(b) == 0);
  auto [row_port, row_respawns] = fleet_row(b, reloaded);
  BOOST_TEST(row_port == a);
  BOOST_TEST(row_respawns == 1);

  // The reloaded worker crashes at once: the second respawn waits 200 ms, not 100 ms again.
  size_t mark = s.log().size();
  kill(reloaded, SIGKILL);
  BOOST_REQUIRE(wait_new_worker(a, {crashed, reloaded}, 5s));
  BOOST_TEST(stats_respawns(a) == 2);
  std::string since = s.log().substr(mark);
  BOOST_TEST(since.find("respawning the worker for 127.0.0.1:" + std::to_string(a) +
                        " in 200 ms") != std::string::npos,
             since);
}
