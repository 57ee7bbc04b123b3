#define BOOST_TEST_MODULE publish
// statelessd's API against a real RabbitMQ: what arrives (body bytes and every property),
// the answers for bad input and bad credentials, and /stats' connection entries.
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "tests/harness/amqp_client.h"
#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const std::string kGuest = basic_auth("guest", "guest");

std::string publish_yaml(const TempDir& dir, uint16_t port, const std::string& confirm = "5s") {
  return daemon_yaml(dir) +
         "rabbitmq:\n  hosts: [\"127.0.0.1:" + std::to_string(shared_rabbit().amqp_port()) +
         "\"]\n  confirm_timeout: " + confirm +
         "\nlisten:\n  - address: 127.0.0.1\n    port: " + std::to_string(port) +
         "\n    modules: [publish, stats]\n";
}

struct Gateway {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced sluiced{dir, publish_yaml(dir, port)};
  AmqpClient amqp{shared_rabbit().amqp_port()};
  Gateway() {
    sluiced.start();
    BOOST_REQUIRE(sluiced.wait_ready({port}));
  }

  // A broker user with every permission on "/" except those `write` leaves out.
  void add_user(const std::string& user, const std::string& password,
                const std::string& write = ".*") {
    shared_rabbit().ctl({"add_user", user, password});
    shared_rabbit().ctl({"set_permissions", "-p", "/", user, ".*", write, ".*"});
  }

  // A fresh queue bound to amq.topic with the routing key `key`.
  std::string queue_for(const std::string& key) {
    std::string queue = "q." + key + "." + std::to_string(port);
    amqp.declare_queue(queue);
    amqp.bind(queue, "amq.topic", key);
    return queue;
  }

  HttpResponse post(const std::string& path, const std::string& body,
                    const std::string& type = "application/x-www-form-urlencoded",
                    const std::string& auth = kGuest) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!type.empty()) headers.emplace_back("Content-Type", type);
    if (!auth.empty()) headers.emplace_back("Authorization", auth);
    return http(HttpRequest{"POST", port, path, body, headers, 15s, false});
  }

  ReceivedMessage receive(const std::string& queue) {
    for (int i = 0; i < 50; ++i) {
      if (auto m = amqp.get(queue)) return *m;
      std::this_thread::sleep_for(20ms);
    }
    BOOST_FAIL("no message in " + queue);
    return {};
  }
};

std::string multipart(const std::vector<std::pair<std::string, std::string>>& fields,
                      const std::string& boundary) {
  std::string body;
  for (const auto& [name, value] : fields) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

using BodyOf = std::function<std::string(int client, int i)>;

// `clients` threads, each calling send(client, i) for i in [0, each).
void run_clients(int clients, int each, const std::function<void(int, int)>& send) {
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&send, each, c] {
      for (int i = 0; i < each; ++i)
        send(c, i);
    });
  }
  for (auto& t : threads)
    t.join();
}

std::string message_id(int client, int i) {
  return std::to_string(client) + "-" + std::to_string(i);
}

// Takes every message from `queue` and checks its body against what the client named in its
// message_id sent. Returns how many were checked.
size_t check_bodies(AmqpClient& amqp, const std::string& queue, const BodyOf& body_of) {
  size_t checked = 0;
  while (auto m = amqp.get(queue)) {
    std::string id = m->properties["message_id"];
    size_t dash = id.find('-');
    BOOST_REQUIRE(dash != std::string::npos);
    bool same = m->body == body_of(std::stoi(id.substr(0, dash)), std::stoi(id.substr(dash + 1)));
    BOOST_TEST(same, "the body of " << id << " arrived altered");
    ++checked;
  }
  return checked;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(publish, Gateway)

BOOST_AUTO_TEST_CASE(a_confirmed_publish_answers_204_and_arrives) {
  std::string queue = queue_for("basic");
  HttpResponse r = post("/%2F/amq.topic/basic", "body=hello+world%21");
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(r.body.empty());
  ReceivedMessage m = receive(queue);
  BOOST_TEST(m.body == "hello world!");
  BOOST_TEST(m.routing_key == "basic");
  // Persistent by default (publish.default_delivery_mode): a 204 survives a broker restart.
  BOOST_TEST(m.properties.size() == 1u);
  BOOST_TEST(m.properties["delivery_mode"] == "2");
}

BOOST_AUTO_TEST_CASE(every_form_field_becomes_its_property) {
  std::string queue = queue_for("props");
  std::string body =
      "body=payload&app_id=app&content_encoding=gzip&content_type=text%2Fplain"
      "&correlation_id=corr-1&delivery_mode=2&expire=60000&message_id=m-1&priority=7"
      "&reply_to=replies&timestamp=1364403057&type=example&user_id=guest"
      "&headers=%7B%22s%22%3A%22x%22%2C%22n%22%3A42%2C%22b%22%3Atrue%2C%22t%22%3A%7B%22k%22%3A1%7D%"
      "7D"
      "&unknown_field=ignored";
  HttpResponse r = post("/%2F/amq.topic/props", body);
  BOOST_TEST(r.status == 204, r.body);
  ReceivedMessage m = receive(queue);
  std::map<std::string, std::string> expected = {
      {"app_id", "app"},
      {"content_encoding", "gzip"},
      {"content_type", "text/plain"},
      {"correlation_id", "corr-1"},
      {"delivery_mode", "2"},
      {"expiration", "60000"},
      {"message_id", "m-1"},
      {"priority", "7"},
      {"reply_to", "replies"},
      {"timestamp", "1364403057"},
      {"type", "example"},
      {"user_id", "guest"},
  };
  for (const auto& [name, value] : expected)
    BOOST_TEST(m.properties[name] == value, name);
  BOOST_TEST(m.properties.size() == expected.size());
  BOOST_TEST(m.headers_json == R"({"s":"x","n":42,"b":true,"t":{"k":1}})");
  BOOST_TEST(m.body == "payload");
}

BOOST_AUTO_TEST_CASE(multipart_and_binary_bodies_are_byte_exact) {
  std::string queue = queue_for("binary");
  std::string payload("  line one\r\n\0\x01\xff trailing  \r\n", 27);
  std::string boundary = "------------------------d74496d66958873e";
  HttpResponse r =
      post("/%2F/amq.topic/binary", multipart({{"body", payload}, {"type", "bin"}}, boundary),
           "multipart/form-data; boundary=" + boundary);
  BOOST_TEST(r.status == 204, r.body);
  ReceivedMessage m = receive(queue);
  BOOST_TEST(m.body == payload);
  BOOST_TEST(m.properties["type"] == "bin");
}

BOOST_AUTO_TEST_CASE(query_string_fields_and_a_missing_body) {
  std::string queue = queue_for("query");
  HttpResponse r = post("/%2F/amq.topic/query?app_id=from-query&type=t", "", "");
  BOOST_TEST(r.status == 204, r.body);
  ReceivedMessage m = receive(queue);
  BOOST_TEST(m.body.empty());
  BOOST_TEST(m.properties["app_id"] == "from-query");
  // The body wins over the query string for the same field.
  r = post("/%2F/amq.topic/query?app_id=from-query", "app_id=from-body&body=x");
  BOOST_TEST(r.status == 204);
  BOOST_TEST(receive(queue).properties["app_id"] == "from-body");
}

BOOST_AUTO_TEST_CASE(the_default_exchange_is_amq_default) {
  std::string queue = "direct-to-queue-" + std::to_string(port);
  amqp.declare_queue(queue);
  HttpResponse r = post("/%2F/amq.default/" + queue, "body=via-default");
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(receive(queue).body == "via-default");
}

BOOST_AUTO_TEST_CASE(segments_are_percent_decoded_and_plus_is_kept) {
  std::string queue = queue_for("a+b.c/d");
  HttpResponse r = post("/%2f/amq.topic/a+b.c%2Fd", "body=1");
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(receive(queue).routing_key == "a+b.c/d");
}

BOOST_AUTO_TEST_CASE(bad_fields_get_400_naming_the_field) {
  const std::pair<std::string, std::string> cases[] = {
      {"priority=256", "priority"},
      {"delivery_mode=x", "delivery_mode"},
      {"timestamp=-1", "timestamp"},
      {"expire=soon", "expire"},
      {"headers=%5B1%2C2%5D", "headers"},
      {"headers=not-json", "headers"},
      {"app_id=" + std::string(256, 'a'), "app_id"},
      {"user_id=somebody-else", "user_id"},
      {"delivery_mode=3", "delivery_mode"},
  };
  for (const auto& [body, field] : cases) {
    HttpResponse r = post("/%2F/amq.topic/bad", body);
    check_error_body(r, 400, "invalid_field");
    BOOST_TEST(r.body.find(field) != std::string::npos, r.body);
  }
  check_error_body(post("/%2F/amq.topic/bad", "body=%zz"), 400, "malformed_form");
  check_error_body(post("/%2F/amq.topic/bad", "x", "application/json"), 415,
                   "unsupported_media_type");
}

BOOST_AUTO_TEST_CASE(missing_or_malformed_credentials_get_statelessds_401) {
  for (const std::string& auth : {std::string(), std::string("Basic !!!notbase64"),
                                  std::string("Bearer abc"), std::string("Basic Z3Vlc3Q=")}) {
    HttpResponse r = post("/%2F/amq.topic/x", "body=1", "application/x-www-form-urlencoded", auth);
    BOOST_TEST(r.status == 401);
    BOOST_TEST(r.header("www-authenticate") == "Basic realm=\"statelessd\"");
    BOOST_TEST(r.body.empty());
  }
}

BOOST_AUTO_TEST_CASE(other_methods_get_405_after_the_credentials) {
  HttpResponse r =
      http(HttpRequest{"GET", port, "/%2F/amq.topic/x", "", {{"Authorization", kGuest}}});
  check_error_body(r, 405, "method_not_allowed");
  BOOST_TEST(r.header("allow") == "POST");
  r = http(HttpRequest{"PUT", port, "/%2F/amq.topic/x", "", {}});
  BOOST_TEST(r.status == 401);
}

BOOST_AUTO_TEST_CASE(a_wrong_password_never_rides_on_the_right_ones_connection) {
  std::string queue = queue_for("auth");
  BOOST_TEST(post("/%2F/amq.topic/auth", "body=ok1").status == 204);
  HttpResponse r = post("/%2F/amq.topic/auth", "body=bad", "application/x-www-form-urlencoded",
                        basic_auth("guest", "wrong"));
  check_error_body(r, 401, "login_refused");
  BOOST_TEST(r.header("www-authenticate") == "Basic realm=\"statelessd\"");
  BOOST_TEST(post("/%2F/amq.topic/auth", "body=ok2").status == 204);
  BOOST_TEST(receive(queue).body == "ok1");
  BOOST_TEST(receive(queue).body == "ok2");
  BOOST_TEST(amqp.count(queue) == 0u);
}

BOOST_AUTO_TEST_CASE(wrong_password_first_then_the_right_one) {
  add_user("late", "right");
  std::string queue = queue_for("late");
  HttpResponse r = post("/%2F/amq.topic/late", "body=x", "application/x-www-form-urlencoded",
                        basic_auth("late", "wrong"));
  check_error_body(r, 401, "login_refused");
  r = post("/%2F/amq.topic/late", "body=y", "application/x-www-form-urlencoded",
           basic_auth("late", "right"));
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(receive(queue).body == "y");
}

BOOST_AUTO_TEST_CASE(a_password_with_colons) {
  add_user("colon", "pa:ss:word");
  std::string queue = queue_for("colon");
  HttpResponse r = post("/%2F/amq.topic/colon", "body=z", "application/x-www-form-urlencoded",
                        basic_auth("colon", "pa:ss:word"));
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(receive(queue).body == "z");
  BOOST_TEST(sluiced.log().find("pa:ss:word") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_access_to_the_vhost_is_403) {
  shared_rabbit().ctl({"add_vhost", "closed"});
  check_error_body(post("/closed/amq.topic/x", "body=1"), 403, "vhost_access_refused");
  check_error_body(post("/no-such-vhost/amq.topic/x", "body=1"), 403, "vhost_access_refused");
}

BOOST_AUTO_TEST_CASE(a_missing_exchange_is_404_and_hurts_nobody_else) {
  std::string queue = queue_for("neighbour");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, other{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        HttpResponse r = post("/%2F/amq.topic/neighbour", "body=n");
        (r.status == 204 ? ok : other)++;
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    check_error_body(post("/%2F/no.such.exchange/x", "body=1"), 404, "exchange_not_found");
  }
  for (auto& t : threads)
    t.join();
  BOOST_TEST(ok.load() == 100);
  BOOST_TEST(other.load() == 0);
  BOOST_TEST(amqp.count(queue) == 100u);
}

BOOST_AUTO_TEST_CASE(an_exchange_deleted_after_use_gives_503_then_404) {
  amqp.declare_exchange("short.lived");
  BOOST_TEST(post("/%2F/short.lived/x", "body=1").status == 204);
  amqp.delete_exchange("short.lived");
  HttpResponse r = post("/%2F/short.lived/x", "body=2");
  // The publishing channel is closed by the broker under this message: its fate is unknown.
  BOOST_TEST((r.status == 503 || r.status == 404), r.status);
  check_error_body(post("/%2F/short.lived/x", "body=3"), 404, "exchange_not_found");
  BOOST_TEST(post("/%2F/amq.topic/after", "body=4").status == 204);
}

BOOST_AUTO_TEST_CASE(a_nack_is_503) {
  std::string queue = "bounded-" + std::to_string(port);
  amqp.declare_bounded_queue(queue, 1);
  BOOST_TEST(post("/%2F/amq.default/" + queue, "body=fits").status == 204);
  HttpResponse r = post("/%2F/amq.default/" + queue, "body=overflows");
  check_error_body(r, 503, "message_rejected");
  BOOST_TEST(r.header("retry-after") == "1");
  BOOST_TEST(amqp.count(queue) == 1u);
  rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
  BOOST_TEST(doc["counters"]["publish.nacks"].GetUint64() == 1u);
  BOOST_TEST(doc["counters"]["publish.unavailable"].GetUint64() == 1u);
  BOOST_TEST(doc["counters"]["publish.confirms"].GetUint64() == 1u);
}

// A resource alarm makes the broker send connection.blocked: publishes are refused at once
// instead of hanging, and flow again after connection.unblocked.
BOOST_AUTO_TEST_CASE(a_blocked_broker_is_503_until_unblocked) {
  RabbitServer& rabbit = shared_rabbit();
  std::string queue = queue_for("alarm");
  BOOST_TEST(post("/%2F/amq.topic/alarm", "body=before").status == 204);
  BOOST_REQUIRE(rabbit.ctl({"set_vm_memory_high_watermark", "0.000001"}).exit_code == 0);
  // RabbitMQ blocks a connection when it next publishes: that message is never confirmed
  // (503 confirm_timeout); from then on the broker has said connection.blocked.
  HttpResponse r;
  for (int i = 0; i < 20; ++i) {
    r = post("/%2F/amq.topic/alarm", "body=during");
    BOOST_TEST(r.status == 503);
    if (r.body.find("broker_blocked") != std::string::npos) break;
  }
  check_error_body(r, 503, "broker_blocked");
  BOOST_TEST(r.header("retry-after") == "1");
  BOOST_REQUIRE(rabbit.ctl({"set_vm_memory_high_watermark", "0.4"}).exit_code == 0);
  for (int i = 0; i < 50; ++i) {
    r = post("/%2F/amq.topic/alarm", "body=after");
    if (r.status == 204) break;
    std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(r.status == 204);
}

// A passive declare does not check write access: the broker refuses the publish itself by
// closing the channel. That request's fate is unknown (503); the refusal is remembered, so
// the following ones get 403 without closing the channel again.
BOOST_AUTO_TEST_CASE(no_write_access_to_an_exchange_is_403) {
  add_user("reader", "pw", "^$");  // may configure and read, never write
  const std::string auth = basic_auth("reader", "pw");
  HttpResponse first =
      post("/%2F/amq.topic/x", "body=1", "application/x-www-form-urlencoded", auth);
  BOOST_TEST((first.status == 503 || first.status == 403), first.body);
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = post("/%2F/amq.topic/x", "body=2", "application/x-www-form-urlencoded", auth);
    check_error_body(r, 403, "exchange_access_refused");
  }
  rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
  BOOST_TEST(doc["connections"]["/:reader"]["channels"]["closed"].GetUint64() == 1u);
}

BOOST_AUTO_TEST_CASE(stats_report_the_connection) {
  std::string queue = queue_for("stats");
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(post("/%2F/amq.topic/stats", "body=s").status == 204);
  rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
  BOOST_REQUIRE(doc["connections"].HasMember("/:guest"));
  const rapidjson::Value& c = doc["connections"]["/:guest"];
  BOOST_TEST(c["connected"].IsBool());
  BOOST_TEST(c["connected"].GetBool());
  BOOST_TEST(c["connections"]["opened"].GetUint64() == 1u);
  BOOST_TEST(c["connections"]["closed"].GetUint64() == 0u);
  BOOST_TEST(c["channels"]["opened"].GetUint64() == 2u);
  BOOST_TEST(c["publishes"].GetUint64() == 3u);
  BOOST_TEST(c["queue_size"].GetUint64() == 0u);
  // statelessd's keys only: what became of the messages is in the counters.
  BOOST_TEST(c.MemberCount() == 5u);
  const rapidjson::Value& counters = doc["counters"];
  BOOST_TEST(counters["publish.confirms"].GetUint64() == 3u);
  BOOST_TEST(counters["publish.nacks"].GetUint64() == 0u);
  BOOST_TEST(counters["publish.unavailable"].GetUint64() == 0u);
  BOOST_TEST(doc["requests"]["response.204"].GetUint64() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

// Two workers, sixteen clients at once: every answer is a 204 and every message arrives.
BOOST_AUTO_TEST_CASE(two_workers_and_many_concurrent_clients) {
  TempDir dir;
  std::vector<uint16_t> ports = {free_port(), free_port()};
  std::string yaml = publish_yaml(dir, ports[0]);
  yaml.replace(yaml.find("port: " + std::to_string(ports[0])), 6 + std::to_string(ports[0]).size(),
               "ports: " + ports_list(ports));
  Sluiced s(dir, yaml);
  s.start();
  BOOST_REQUIRE(s.wait_ready(ports));
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("concurrent");
  amqp.purge("concurrent");
  std::atomic<int> ok{0};
  std::vector<std::string> failures;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 100; ++i) {
        HttpResponse r = http(HttpRequest{"POST",
                                          ports[c % 2],
                                          "/%2F/amq.default/concurrent",
                                          "body=" + std::to_string(c * 1000 + i),
                                          {{"Authorization", kGuest}}});
        if (r.status == 204) {
          ++ok;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(std::to_string(r.status) + " " + r.body);
        }
      }
    });
  }
  for (auto& t : clients)
    t.join();
  BOOST_TEST(ok.load() == 1600);
  std::string first_failure = failures.empty() ? "" : failures.front();
  BOOST_TEST(failures.size() == 0u, first_failure);
  BOOST_TEST(amqp.count("concurrent") == 1600u);
  // Each worker has its own connection for the pair, both used; their confirms are counted
  // in the shared segment, so the fleet's sum is every message.
  uint64_t confirms = 0;
  for (uint16_t port : ports) {
    rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
    BOOST_TEST(doc["connections"]["/:guest"]["publishes"].GetUint64() > 0u);
    uint64_t own = doc["counters"]["publish.confirms"].GetUint64();
    BOOST_TEST(own > 0u);
    confirms += own;
  }
  BOOST_TEST(confirms == 1600u);
  rapidjson::Document fleet = parse_json(http_get(ports[0], "/stats/fleet").body);
  BOOST_TEST(fleet["totals"]["counters"]["publish.confirms"].GetUint64() == 1600u);
  BOOST_TEST(fleet["totals"]["counters"]["publish.unavailable"].GetUint64() == 0u);
  for (const auto& w : fleet["workers"].GetArray())
    BOOST_TEST(w["counters"]["publish.confirms"].GetUint64() > 0u);
}

// Bodies over the 2 KiB at which publishes are written at once rather than at the end of the
// loop turn: from many clients together every frame still reaches the broker whole and in
// order, and every 204 is a message that arrived byte for byte.
BOOST_FIXTURE_TEST_CASE(large_bodies_from_concurrent_clients_arrive_whole, Gateway) {
  amqp.declare_queue("large");
  amqp.purge("large");
  BodyOf body_of = [](int client, int i) {
    return std::string(3000 + client * 7 + i, static_cast<char>('a' + (client + i) % 26));
  };
  std::atomic<int> ok{0};
  run_clients(8, 25, [&](int c, int i) {
    std::string form = "message_id=" + message_id(c, i) + "&body=" + body_of(c, i);
    if (post("/%2F/amq.default/large", form).status == 204) ++ok;
  });
  BOOST_TEST(ok.load() == 200);
  BOOST_TEST(amqp.count("large") == 200u);
  BOOST_TEST(check_bodies(amqp, "large", body_of) == 200u);
}

// Bodies larger than the socket takes at once: the eager write stops short and the loop
// finishes it when the socket drains. Requests that arrive while over 1 MiB is still unsent
// may be refused (503 broker_backlogged); every 204 is a message that arrived whole.
BOOST_AUTO_TEST_CASE(bodies_larger_than_the_socket_buffer_arrive_whole) {
  TempDir dir;
  uint16_t port = free_port();
  std::string yaml = publish_yaml(dir, port);
  yaml.replace(yaml.find("    modules:"), 0, "    max_body_size: 16m\n");
  Sluiced s(dir, yaml);
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("huge");
  amqp.purge("huge");
  BodyOf body_of = [](int client, int i) {
    return std::string((6 << 20) + client * 1000 + i, static_cast<char>('A' + client * 8 + i));
  };
  std::atomic<int> ok{0}, refused{0}, other{0};
  run_clients(3, 3, [&](int c, int i) {
    HttpResponse r = http(HttpRequest{"POST",
                                      port,
                                      "/%2F/amq.default/huge?message_id=" + message_id(c, i),
                                      "body=" + body_of(c, i),
                                      {{"Authorization", kGuest}}});
    if (r.status == 204) {
      ++ok;
    } else if (r.status == 503 && r.body.find("broker_backlogged") != std::string::npos) {
      ++refused;
    } else {
      ++other;
    }
  });
  BOOST_TEST(other.load() == 0);
  BOOST_TEST(ok.load() + refused.load() == 9);
  BOOST_TEST(ok.load() >= 3);
  BOOST_TEST(amqp.count("huge") == static_cast<uint32_t>(ok.load()));
  BOOST_TEST(check_bodies(amqp, "huge", body_of) == static_cast<size_t>(ok.load()));
}

// rabbitmq.hosts is tried in order: a first host that refuses connections is skipped.
BOOST_AUTO_TEST_CASE(the_hosts_list_is_tried_in_order) {
  TempDir dir;
  uint16_t port = free_port();
  std::string yaml = publish_yaml(dir, port);
  std::string live = "\"127.0.0.1:" + std::to_string(shared_rabbit().amqp_port()) + "\"";
  yaml.replace(yaml.find(live), live.size(),
               "\"127.0.0.1:" + std::to_string(free_port()) + "\", " + live);
  Sluiced s(dir, yaml);
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  AmqpClient amqp(shared_rabbit().amqp_port());
  amqp.declare_queue("failover");
  HttpResponse r = http(HttpRequest{
      "POST", port, "/%2F/amq.default/failover", "body=f", {{"Authorization", kGuest}}});
  BOOST_TEST(r.status == 204, r.body);
  BOOST_TEST(amqp.get("failover").has_value());
  BOOST_TEST(s.log().find("connected to 127.0.0.1:" +
                          std::to_string(shared_rabbit().amqp_port())) != std::string::npos);
}
