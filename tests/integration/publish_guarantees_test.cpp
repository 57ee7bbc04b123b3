#define BOOST_TEST_MODULE publish_guarantees
// What a 204 promises, tested against the broker: a message without delivery_mode is
// persistent and survives a kill -9 of the broker; a mandatory message no queue takes is a
// 404, each answer tied to its own message; a publish the broker refuses is that client's 403
// and never a neighbour's 503.
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "tests/harness/amqp_client.h"
#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const std::string kGuest = basic_auth("guest", "guest");

std::string gateway_yaml(const TempDir& dir, uint16_t amqp_port, uint16_t port,
                         const std::string& publish_section = "") {
  return daemon_yaml(dir) + "rabbitmq:\n  hosts: [\"127.0.0.1:" + std::to_string(amqp_port) +
         "\"]\n  confirm_timeout: 5s\n  heartbeat: 5s\nlisten:\n  - address: 127.0.0.1\n"
         "    port: " +
         std::to_string(port) + "\n    modules: [publish, stats]\n" + publish_section;
}

HttpResponse post(uint16_t port, const std::string& path, const std::string& form,
                  const std::string& auth = kGuest) {
  return http(
      HttpRequest{"POST",
                  port,
                  path,
                  form,
                  {{"Authorization", auth}, {"Content-Type", "application/x-www-form-urlencoded"}},
                  10s,
                  false});
}

// sluiced in front of `amqp_port` (the shared broker unless told otherwise).
struct Gateway {
  TempDir dir;
  uint16_t port = free_port();
  std::unique_ptr<Sluiced> sluiced;

  explicit Gateway(const std::string& publish_section = "", uint16_t amqp_port = 0) {
    if (amqp_port == 0) amqp_port = shared_rabbit().amqp_port();
    sluiced = std::make_unique<Sluiced>(dir, gateway_yaml(dir, amqp_port, port, publish_section));
    sluiced->start();
    BOOST_REQUIRE(sluiced->wait_ready({port}));
  }
  HttpResponse publish(const std::string& path, const std::string& form,
                       const std::string& auth = kGuest) {
    return post(port, path, form, auth);
  }
};

// `clients` threads calling send(client, i) until stop is set or `each` calls are made.
void run_clients(int clients, int each, std::atomic<bool>& stop,
                 const std::function<void(int, int)>& send) {
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < each && !stop; ++i)
        send(c, i);
    });
  }
  for (auto& t : threads)
    t.join();
}

std::set<std::string> drain(AmqpClient& amqp, const std::string& queue) {
  std::set<std::string> bodies;
  while (auto m = amqp.get(queue))
    bodies.insert(m->body);
  return bodies;
}

}  // namespace

// --- item 1: persistent by default -----------------------------------------------------------

// A private broker killed with SIGKILL in the middle of the load: every message answered 204
// without a delivery_mode is in the durable queue after the restart; the transient ones the
// clients asked for are gone, which shows the field was honoured.
BOOST_AUTO_TEST_CASE(a_204_without_delivery_mode_survives_kill_9_of_the_broker) {
  TempDir rabbit_dir;
  RabbitServer rabbit(rabbit_dir.file("rabbit"));
  {
    AmqpClient setup(rabbit.amqp_port());
    setup.declare_queue("kept", true);
    setup.bind("kept", "amq.direct", "kept");
  }
  Gateway g("", rabbit.amqp_port());
  // The properties as asked: nothing means persistent, 1 means transient.
  BOOST_REQUIRE(g.publish("/%2F/amq.direct/kept", "body=probe-default").status == 204);
  BOOST_REQUIRE(g.publish("/%2F/amq.direct/kept", "body=probe-1&delivery_mode=1").status == 204);
  {
    AmqpClient check(rabbit.amqp_port());
    auto first = check.get("kept");
    auto second = check.get("kept");
    BOOST_REQUIRE(first && second);
    BOOST_TEST(first->properties["delivery_mode"] == "2");
    BOOST_TEST(second->properties["delivery_mode"] == "1");
  }

  std::mutex mu;
  std::set<std::string> persistent, transient;  // answered 204
  std::atomic<int> answered{0};
  std::atomic<bool> stop{false};
  std::thread load([&] {
    run_clients(6, 100000, stop, [&](int c, int i) {
      std::string body = "c" + std::to_string(c) + "-" + std::to_string(i);
      bool asks_transient = i % 5 == 4;
      std::string form = "body=" + body + (asks_transient ? "&delivery_mode=1" : "");
      HttpResponse r = post(g.port, "/%2F/amq.direct/kept", form);
      if (r.status == 204) {
        std::lock_guard<std::mutex> lock(mu);
        (asks_transient ? transient : persistent).insert(body);
        ++answered;
      } else {
        std::this_thread::sleep_for(20ms);
      }
    });
  });
  for (int i = 0; i < 100 && answered < 500; ++i)
    std::this_thread::sleep_for(50ms);
  rabbit.kill9();
  std::this_thread::sleep_for(300ms);
  stop = true;
  load.join();
  rabbit.start();

  AmqpClient check(rabbit.amqp_port());
  std::set<std::string> in_queue = drain(check, "kept");
  size_t lost = 0, transient_kept = 0;
  for (const auto& body : persistent)
    lost += in_queue.count(body) == 0 ? 1 : 0;
  for (const auto& body : transient)
    transient_kept += in_queue.count(body);
  BOOST_TEST_MESSAGE(persistent.size()
                     << " persistent and " << transient.size() << " transient 204s; "
                     << in_queue.size() << " in the queue after the restart");
  BOOST_TEST(persistent.size() >= 300u);
  BOOST_TEST(transient.size() >= 50u);
  BOOST_TEST(lost == 0u);
  BOOST_TEST(transient_kept == 0u);
}

BOOST_AUTO_TEST_CASE(default_delivery_mode_1_makes_messages_transient) {
  Gateway g("publish:\n  default_delivery_mode: 1\n");
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("g.transient");
  BOOST_REQUIRE(g.publish("/%2F/amq.default/g.transient", "body=t").status == 204);
  BOOST_REQUIRE(g.publish("/%2F/amq.default/g.transient", "body=p&delivery_mode=2").status == 204);
  auto first = amqp.get("g.transient");
  auto second = amqp.get("g.transient");
  BOOST_REQUIRE(first && second);
  BOOST_TEST(first->properties["delivery_mode"] == "1");
  BOOST_TEST(second->properties["delivery_mode"] == "2");
}

BOOST_AUTO_TEST_CASE(sluiced_t_checks_the_publish_settings) {
  TempDir dir;
  std::string good =
      dir.write("good.yaml", daemon_yaml(dir) + listen_yaml({8000}) +
                                 "publish:\n  default_delivery_mode: 1\n  mandatory: true\n");
  CommandResult r = run_sluiced({"-t", "-c", good});
  BOOST_TEST(r.exit_code == 0, r.output);
  std::string bad = dir.write("bad.yaml", daemon_yaml(dir) + listen_yaml({8000}) +
                                              "publish:\n  default_delivery_mode: 3\n"
                                              "  mandatory: maybe\n");
  r = run_sluiced({"-t", "-c", bad});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find(": publish.default_delivery_mode: must be 1 (transient) or 2 "
                           "(persistent)\n") != std::string::npos,
             r.output);
  BOOST_TEST(r.output.find("publish.mandatory: must be true or false") != std::string::npos,
             r.output);
}

// --- item 2: mandatory ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_mandatory_message_no_queue_takes_is_404_unroutable) {
  Gateway g;
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_exchange("g.unbound", "direct");
  // The first publish to the exchange goes on the trial channel, the next on the shared one.
  for (int i = 0; i < 2; ++i) {
    check_error_body(g.publish("/%2F/g.unbound/nobody", "body=x&mandatory=true"), 404,
                     "unroutable");
  }
  check_error_body(g.publish("/%2F/amq.default/g.no-such-queue", "body=x&mandatory=1"), 404,
                   "unroutable");
  // Without mandatory: the broker drops it and confirms, as before.
  BOOST_TEST(g.publish("/%2F/g.unbound/nobody", "body=x").status == 204);
  BOOST_TEST(g.publish("/%2F/g.unbound/nobody", "body=x&mandatory=false").status == 204);
  check_error_body(g.publish("/%2F/g.unbound/nobody", "body=x&mandatory=yes"), 400,
                   "invalid_field");
  amqp.declare_queue("g.routed");
  BOOST_TEST(g.publish("/%2F/amq.default/g.routed", "body=y&mandatory=true").status == 204);
  BOOST_TEST(amqp.count("g.routed") == 1u);
  rapidjson::Document doc = parse_json(http_get(g.port, "/stats").body);
  BOOST_TEST(doc["counters"]["publish.unroutable"].GetUint64() == 3u);
}

BOOST_AUTO_TEST_CASE(publish_mandatory_true_is_the_default_for_every_request) {
  Gateway g("publish:\n  mandatory: true\n");
  check_error_body(g.publish("/%2F/amq.default/g.nowhere", "body=x"), 404, "unroutable");
  BOOST_TEST(g.publish("/%2F/amq.default/g.nowhere", "body=x&mandatory=0").status == 204);
}

// Routable and unroutable mandatory messages interleaved from several clients on one
// connection: each answer is its own message's.
BOOST_AUTO_TEST_CASE(concurrent_mandatory_publishes_each_get_their_own_answer) {
  Gateway g;
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("g.half");
  amqp.purge("g.half");
  amqp.bind("g.half", "amq.direct", "g.half.routed");
  std::mutex mu;
  std::set<std::string> routed_ok;
  std::vector<std::string> wrong;
  std::atomic<bool> stop{false};
  run_clients(8, 60, stop, [&](int c, int i) {
    bool routable = (c + i) % 2 == 0;
    std::string body = std::to_string(c) + "-" + std::to_string(i);
    std::string key = routable ? "g.half.routed" : "g.half.lost";
    HttpResponse r = post(g.port, "/%2F/amq.direct/" + key, "mandatory=true&body=" + body);
    std::lock_guard<std::mutex> lock(mu);
    if (routable && r.status == 204) {
      routed_ok.insert(body);
    } else if (routable || r.status != 404 || r.body.find("unroutable") == std::string::npos) {
      wrong.push_back(key + " " + body + ": " + std::to_string(r.status) + " " + r.body);
    }
  });
  BOOST_TEST(wrong.empty(), wrong.size() << " wrong, first: " << (wrong.empty() ? "" : wrong[0]));
  BOOST_TEST(routed_ok.size() == 240u);
  BOOST_TEST(drain(amqp, "g.half") == routed_ok);
}

// --- item 3: a refused publish is that client's 403 ------------------------------------------

// One user, one connection: publishes to an exchange it may not write to, among publishes
// to one it may.
BOOST_AUTO_TEST_CASE(a_refused_publish_never_fails_a_neighbour) {
  Gateway g;
  shared_rabbit().ctl({"add_user", "partial", "pw"});
  shared_rabbit().ctl({"set_permissions", "-p", "/", "partial", ".*", "^amq\\.direct$", ".*"});
  const std::string auth = basic_auth("partial", "pw");
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("g.neighbours");
  amqp.purge("g.neighbours");
  amqp.bind("g.neighbours", "amq.direct", "g.neighbours");

  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::atomic<bool> stop{false};
  std::vector<HttpResponse> refused;
  std::thread neighbours([&] {
    run_clients(4, 150, stop, [&](int, int) {
      HttpResponse r = post(g.port, "/%2F/amq.direct/g.neighbours", "body=n", auth);
      if (r.status == 204) {
        ++ok;
      } else {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(std::to_string(r.status) + " " + r.body);
      }
    });
  });
  for (int i = 0; i < 100 && ok < 20; ++i)
    std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 5; ++i) {
    refused.push_back(post(g.port, "/%2F/amq.topic/g.denied", "body=r", auth));
    std::this_thread::sleep_for(20ms);
  }
  neighbours.join();
  for (const auto& r : refused)
    check_error_body(r, 403, "exchange_access_refused");
  BOOST_TEST(failures.empty(), failures.size() << " neighbours failed, first: "
                                               << (failures.empty() ? "" : failures[0]));
  BOOST_TEST(ok.load() == 600);
  BOOST_TEST(amqp.count("g.neighbours") == 600u);
}

BOOST_AUTO_TEST_CASE(publishing_to_amq_rabbitmq_trace_is_403_and_neighbours_keep_204) {
  Gateway g;
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("g.trace-neighbours");
  amqp.purge("g.trace-neighbours");
  std::atomic<int> ok{0}, other{0};
  std::atomic<bool> stop{false};
  std::vector<HttpResponse> refused;
  std::thread neighbours([&] {
    run_clients(4, 150, stop, [&](int, int) {
      int status = g.publish("/%2F/amq.default/g.trace-neighbours", "body=n").status;
      (status == 204 ? ok : other)++;
    });
  });
  for (int i = 0; i < 100 && ok < 20; ++i)
    std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 3; ++i)
    refused.push_back(g.publish("/%2F/amq.rabbitmq.trace/x", "body=t"));
  neighbours.join();
  for (const auto& r : refused)
    check_error_body(r, 403, "exchange_access_refused");
  BOOST_TEST(other.load() == 0);
  BOOST_TEST(ok.load() == 600);
  BOOST_TEST(amqp.count("g.trace-neighbours") == 600u);
}
