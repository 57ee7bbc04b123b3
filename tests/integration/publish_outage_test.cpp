#define BOOST_TEST_MODULE publish_outage
// A 2xx means the message is safe: the broker is killed with SIGKILL in the middle of a
// steady publish load and restarted; every request answered 204 must be in the (durable)
// queue afterwards, every other request must have had a 5xx, and publishing must resume
// without anyone touching sluiced.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "tests/harness/amqp_client.h"
#include "tests/harness/net.h"
#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

std::string outage_yaml(const TempDir& dir, uint16_t amqp_port,
                        const std::vector<uint16_t>& ports) {
  return daemon_yaml(dir) + "rabbitmq:\n  hosts: [\"127.0.0.1:" + std::to_string(amqp_port) +
         "\"]\n  confirm_timeout: 3s\n  heartbeat: 5s\nlisten:\n  - address: 127.0.0.1\n"
         "    ports: " +
         ports_list(ports) + "\n    modules: [publish, stats]\n";
}

struct Tally {
  std::mutex mu;
  std::set<std::string> confirmed;  // bodies answered 204
  std::atomic<int> ok{0}, unavailable{0}, after_restart{0};
  std::vector<std::string> unexpected;  // anything but 204 or a 5xx with Retry-After
};

void client(uint16_t port, int id, std::atomic<bool>& stop, std::atomic<bool>& restarted,
            Tally& tally) {
  const std::string auth = basic_auth("guest", "guest");
  for (int n = 0; !stop; ++n) {
    std::string body = "c" + std::to_string(id) + "-" + std::to_string(n);
    HttpResponse r = http(HttpRequest{
        "POST",
        port,
        "/%2F/amq.default/outage",
        "delivery_mode=2&body=" + body,
        {{"Authorization", auth}, {"Content-Type", "application/x-www-form-urlencoded"}},
        10s,
        false});
    std::lock_guard<std::mutex> lock(tally.mu);
    if (r.status == 204) {
      tally.confirmed.insert(body);
      ++tally.ok;
      if (restarted) ++tally.after_restart;
    } else if (r.status >= 500 && !r.header("retry-after").empty()) {
      ++tally.unavailable;
      std::this_thread::sleep_for(20ms);  // a well-behaved client backs off a little
    } else {
      tally.unexpected.push_back(std::to_string(r.status) + " " + r.error + " " + r.body);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_broker_that_is_not_there_gets_503_with_retry_after) {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced s(dir, outage_yaml(dir, free_port(), {port}));
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  auto asked = std::chrono::steady_clock::now();
  HttpResponse r = http(HttpRequest{"POST",
                                    port,
                                    "/%2F/amq.default/q",
                                    "body=1",
                                    {{"Authorization", basic_auth("guest", "guest")}}});
  check_error_body(r, 503, "broker_unavailable");
  BOOST_TEST(r.header("retry-after") == "1");
  BOOST_TEST((std::chrono::steady_clock::now() - asked < 6s));
  BOOST_TEST(s.log().find("guest:guest") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(kill_9_of_the_broker_under_load_loses_nothing_acknowledged) {
  TempDir dir;
  RabbitServer rabbit(dir.file("rabbit"));
  {
    AmqpClient setup(rabbit.amqp_port());
    setup.declare_queue("outage", true);
  }
  std::vector<uint16_t> ports = {free_port(), free_port()};
  Sluiced s(dir, outage_yaml(dir, rabbit.amqp_port(), ports));
  s.start();
  BOOST_REQUIRE(s.wait_ready(ports));

  Tally tally;
  std::atomic<bool> stop{false}, restarted{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back(client, ports[i % 2], i, std::ref(stop), std::ref(restarted),
                         std::ref(tally));
  }
  std::this_thread::sleep_for(1500ms);
  int before_kill = tally.ok;
  rabbit.kill9();
  std::this_thread::sleep_for(1000ms);
  rabbit.start();
  restarted = true;
  // Publishing resumes by itself: wait for confirmed publishes after the restart.
  for (int i = 0; i < 300 && tally.after_restart < 50; ++i)
    std::this_thread::sleep_for(100ms);
  stop = true;
  for (auto& t : clients)
    t.join();

  BOOST_TEST(before_kill > 50);
  BOOST_TEST(tally.unavailable.load() > 0);
  BOOST_TEST(tally.after_restart.load() >= 50);
  std::string first_unexpected = tally.unexpected.empty() ? "" : tally.unexpected.front();
  BOOST_TEST(tally.unexpected.size() == 0u, first_unexpected);

  AmqpClient check(rabbit.amqp_port());
  std::set<std::string> in_queue;
  while (auto m = check.get("outage"))
    in_queue.insert(m->body);
  size_t missing = 0;
  for (const auto& body : tally.confirmed)
    missing += in_queue.count(body) == 0 ? 1 : 0;
  BOOST_TEST_MESSAGE("204s: " << tally.confirmed.size() << ", 5xx: " << tally.unavailable
                              << ", in the queue: " << in_queue.size());
  BOOST_TEST(missing == 0u);
  BOOST_TEST(in_queue.size() >= tally.confirmed.size());

  // Each worker reconnects on its own backoff schedule: both get there without help.
  for (uint16_t port : ports) {
    bool connected = false;
    for (int i = 0; i < 150 && !connected; ++i) {
      rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
      const rapidjson::Value& c = doc["connections"]["/:guest"];
      connected = c["connected"].GetBool();
      if (connected) {
        BOOST_TEST(c["connections"]["closed"].GetUint64() >= 1u);
        BOOST_TEST(c["connections"]["opened"].GetUint64() >= 2u);
        BOOST_TEST(doc["counters"]["publish.unavailable"].GetUint64() >= 1u);
      } else {
        std::this_thread::sleep_for(100ms);
      }
    }
    BOOST_TEST(connected, "worker on port " << port << " reconnected");
  }
}

// A private broker and one worker publishing to it, the first message already confirmed.
// `settings` are YAML lines for the rabbitmq and listen sections.
struct OwnBroker {
  TempDir dir;
  RabbitServer rabbit{dir.file("rabbit")};
  uint16_t port = free_port();
  std::unique_ptr<Sluiced> sluiced;
  pid_t group = -1;

  OwnBroker(const std::string& confirm, const std::string& heartbeat,
            const std::string& listen_extra = "") {
    std::string yaml = outage_yaml(dir, rabbit.amqp_port(), {port});
    yaml.replace(yaml.find("confirm_timeout: 3s"), 19, "confirm_timeout: " + confirm);
    yaml.replace(yaml.find("heartbeat: 5s"), 13, "heartbeat: " + heartbeat);
    sluiced = std::make_unique<Sluiced>(dir, yaml + listen_extra);
    sluiced->start();
    BOOST_REQUIRE(sluiced->wait_ready({port}));
    BOOST_REQUIRE(publish("body=1").status == 204);
    group = getpgid(rabbit.beam_pid());  // the launcher script and the VM share a group
    BOOST_REQUIRE(group > 0);
  }

  HttpResponse publish(const std::string& body) {
    return http(HttpRequest{"POST",
                            port,
                            "/%2F/amq.default/q",
                            body,
                            {{"Authorization", basic_auth("guest", "guest")}},
                            10s,
                            false});
  }

  // SIGSTOP the whole node, and wait until the VM is stopped: signals reach a busy
  // multi-threaded VM a moment later.
  void freeze() {
    kill(-group, SIGSTOP);
    for (int i = 0; i < 100 && state(rabbit.beam_pid()) != 'T'; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    BOOST_REQUIRE(state(rabbit.beam_pid()) == 'T');
  }
  void thaw() { kill(-group, SIGCONT); }

  static char state(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    return paren == std::string::npos ? '?' : stat[paren + 2];
  }
};

// A client_timeout shorter than the wait for the confirm must not cut the request off.
BOOST_AUTO_TEST_CASE(a_silent_broker_times_out_with_503) {
  OwnBroker b("2s", "5s", "    client_timeout: 1s\n");
  b.freeze();
  auto asked = std::chrono::steady_clock::now();
  HttpResponse r = b.publish("body=2");
  auto took = std::chrono::steady_clock::now() - asked;
  b.thaw();
  check_error_body(r, 503, "confirm_timeout");
  BOOST_TEST((took >= 1900ms));
  BOOST_TEST((took < 4s));
  int status = 0;
  for (int i = 0; i < 100 && status != 204; ++i) {
    status = b.publish("body=3").status;
    if (status != 204) std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(status == 204);
}

// A broker that stops sending heartbeats (a partition, a stopped VM) is noticed without any
// traffic: the connection is dropped after two missed heartbeats and reopened later.
BOOST_AUTO_TEST_CASE(missed_heartbeats_drop_the_connection) {
  OwnBroker b("3s", "1s");
  b.freeze();
  std::this_thread::sleep_for(3500ms);
  b.thaw();
  BOOST_TEST(b.sluiced->log().find("heartbeat timeout") != std::string::npos);
  bool back = false;
  for (int i = 0; i < 150 && !back; ++i) {
    rapidjson::Document doc = parse_json(http_get(b.port, "/stats").body);
    const rapidjson::Value& c = doc["connections"]["/:guest"];
    back = c["connected"].GetBool() && c["connections"]["opened"].GetUint64() >= 2u;
    if (!back) std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(back);
}

// A broker that stops reading must not freeze the worker: once too much is unsent,
// publishes are refused at once (503) and everything else keeps answering.
BOOST_AUTO_TEST_CASE(a_broker_that_stops_reading_never_freezes_the_worker) {
  OwnBroker b("1s", "5s", "    max_body_size: 1m\n");
  b.freeze();
  std::string big = "body=" + std::string(256 * 1024, 'b');
  std::atomic<bool> backlogged{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 12 && !backlogged; ++i) {
        if (b.publish(big).body.find("broker_backlogged") != std::string::npos) backlogged = true;
      }
    });
  }
  for (auto& t : clients)
    t.join();
  auto asked = std::chrono::steady_clock::now();
  HttpResponse stats = http_get(b.port, "/stats");
  auto took = std::chrono::steady_clock::now() - asked;
  b.thaw();
  BOOST_TEST(backlogged.load());
  BOOST_TEST(stats.status == 200);
  BOOST_TEST((took < 500ms));
}

// sluice sends the heartbeats itself: an idle connection with a 1 s heartbeat survives.
BOOST_AUTO_TEST_CASE(an_idle_connection_keeps_its_heartbeats) {
  OwnBroker b("3s", "1s");
  std::this_thread::sleep_for(4500ms);
  BOOST_TEST(b.publish("body=2").status == 204);
  rapidjson::Document doc = parse_json(http_get(b.port, "/stats").body);
  BOOST_TEST(doc["connections"]["/:guest"]["connections"]["opened"].GetUint64() == 1u);
  BOOST_TEST(doc["connections"]["/:guest"]["connections"]["closed"].GetUint64() == 0u);
}

namespace {

// A publish sent on a raw socket, left waiting for its confirm; returns the socket.
int send_raw_publish(uint16_t port, const std::string& body) {
  int fd = connect_loopback(port);
  BOOST_REQUIRE(fd >= 0);
  std::string form = "body=" + body;
  std::string request = "POST /%2F/amq.default/q HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                        basic_auth("guest", "guest") +
                        "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                        std::to_string(form.size()) + "\r\n\r\n" + form;
  BOOST_REQUIRE(detail::send_all(fd, request, std::chrono::steady_clock::now() + 2s));
  return fd;
}

void reset_and_close(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// With the broker frozen, a publish is sent and its client resets the connection while the
// publish waits for its confirm.
void abandon_a_publish(OwnBroker& b) {
  b.freeze();
  int fd = send_raw_publish(b.port, "2");
  std::this_thread::sleep_for(300ms);
  reset_and_close(fd);
}

uint64_t counter(const rapidjson::Document& doc, const char* name) {
  return doc["counters"][name].GetUint64();
}

}  // namespace

// The client of a publish waiting for its confirm resets the connection: nothing of it stays
// in the worker, and the confirm that comes later is still counted.
BOOST_AUTO_TEST_CASE(a_client_gone_while_its_confirm_is_awaited_leaves_nothing_behind) {
  OwnBroker b("10s", "5s");
  abandon_a_publish(b);
  bool cleared = false;
  for (int i = 0; i < 100 && !cleared; ++i) {
    rapidjson::Document doc = parse_json(http_get(b.port, "/stats").body);
    // This /stats request's own connection is the one left open.
    cleared = doc["worker"]["connections_open"].GetUint64() == 1u &&
              counter(doc, "publish.client_gone") == 1u;
    if (!cleared) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(cleared);
  b.thaw();
  uint64_t confirms = 0;
  for (int i = 0; i < 200 && confirms < 2; ++i) {
    confirms = counter(parse_json(http_get(b.port, "/stats").body), "publish.confirms");
    if (confirms < 2) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(confirms == 2u);  // the set-up's publish and the abandoned one
}

// A graceful stop answers a publish still waiting for its confirm (503, retry elsewhere)
// shortly before shutdown_timeout (5 s here), rather than closing its connection unanswered.
BOOST_AUTO_TEST_CASE(a_graceful_stop_answers_a_held_publish_before_shutdown_timeout) {
  OwnBroker b("30s", "60s");
  b.freeze();
  HttpResponse r;
  std::thread client([&] { r = b.publish("body=2"); });
  std::this_thread::sleep_for(300ms);
  auto stopped = std::chrono::steady_clock::now();
  b.sluiced->signal(SIGTERM);
  client.join();
  auto took = std::chrono::steady_clock::now() - stopped;
  b.thaw();
  check_error_body(r, 503, "confirm_timeout");
  BOOST_TEST(r.header("connection") == "close");
  BOOST_TEST((took >= 3500ms));
  BOOST_TEST((took < 4800ms));
  BOOST_TEST(b.sluiced->wait_exit(10s).has_value());
}

// A drain waits for the confirms of publishes whose clients are gone (module work, not an
// HTTP request), and exits as soon as they come.
BOOST_AUTO_TEST_CASE(a_graceful_stop_waits_for_the_confirms_of_abandoned_publishes) {
  OwnBroker b("30s", "60s");
  abandon_a_publish(b);
  std::this_thread::sleep_for(200ms);
  auto stopped = std::chrono::steady_clock::now();
  b.sluiced->signal(SIGTERM);
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(b.sluiced->running(), "the worker waits for the confirm");
  b.thaw();
  BOOST_TEST(b.sluiced->wait_exit(10s).has_value());
  auto took = std::chrono::steady_clock::now() - stopped;
  BOOST_TEST((took < 4s), "exited once the confirm came, before shutdown_timeout");
}
