#define BOOST_TEST_MODULE redis_connection
// worker::RedisConnection against a real redis-server: commands while up, refused while
// down, reconnect after a kill -9, handshake (AUTH, SELECT) on every connect.
#include "worker/backends/redis.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "common/handles/event.h"
#include "tests/harness/harness.h"

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

// Runs the loop until `done` says so or `timeout` passes.
bool loop_until(event_base* base, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    timeval tick{0, 10000};
    event_base_loopexit(base, &tick);
    event_base_dispatch(base);
  }
  return true;
}

common::RedisConfig config_for(const RedisServer& redis) {
  common::RedisConfig c;
  c.host = "127.0.0.1";
  c.port = redis.port();
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(commands_flow_while_up_and_are_refused_while_down) {
  TempDir dir;
  RedisServer redis(dir.file("redis"));
  common::EventBasePtr base(event_base_new());
  worker::RedisConnection conn(base.get(), config_for(redis));
  conn.start();
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return conn.up(); }, 5s));

  std::string got;
  bool answered = false;
  BOOST_REQUIRE(conn.command({"SET", "k", std::string("v\0w", 3)},
                             [&](redisReply* r) { answered = r != nullptr; }));
  BOOST_REQUIRE(conn.command({"GET", "k"}, [&](redisReply* r) {
    if (r != nullptr && r->type == REDIS_REPLY_STRING) got.assign(r->str, r->len);
  }));
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return !got.empty(); }, 2s));
  BOOST_TEST(answered);
  BOOST_TEST(got == std::string("v\0w", 3));  // binary safe

  // A command in flight when the server dies gets exactly one call, with null.
  redis.kill9();
  int calls = 0;
  bool got_null = false;
  conn.command({"BLPOP", "never", "0"}, [&](redisReply* r) {
    ++calls;
    got_null = r == nullptr;
  });
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return !conn.up(); }, 5s));
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return calls > 0; }, 2s));
  BOOST_TEST(calls == 1);
  BOOST_TEST(got_null);
  BOOST_TEST(!conn.command({"PING"}, [](redisReply*) {}));

  redis.start();
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return conn.up(); }, 10s));
  got.clear();
  BOOST_REQUIRE(conn.command({"PING"}, [&](redisReply* r) {
    if (r != nullptr) got = r->str;
  }));
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return !got.empty(); }, 2s));
  BOOST_TEST(got == "PONG");
}

// A redis-server that requires a password, and connections to it on one event loop.
struct GuardedRedis {
  TempDir dir;
  RedisServer redis{dir.file("redis")};
  common::EventBasePtr base{event_base_new()};
  GuardedRedis() { BOOST_REQUIRE(redis.command("CONFIG SET requirepass right") == "+OK\r\n"); }

  std::unique_ptr<worker::RedisConnection> connect(const std::string& password, int db = 0) {
    common::RedisConfig c = config_for(redis);
    c.password = password;
    c.db = db;
    auto conn = std::make_unique<worker::RedisConnection>(base.get(), c);
    conn->start();
    return conn;
  }
};

BOOST_FIXTURE_TEST_CASE(auth_and_select_run_on_connect, GuardedRedis) {
  auto conn = connect("right", 3);
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return conn->up(); }, 5s));
  std::string info;
  BOOST_REQUIRE(conn->command({"CLIENT", "INFO"}, [&](redisReply* r) {
    if (r != nullptr && r->type == REDIS_REPLY_STRING) info.assign(r->str, r->len);
  }));
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return !info.empty(); }, 2s));
  BOOST_TEST(info.find(" db=3 ") != std::string::npos, info);  // SELECT ran
}

BOOST_FIXTURE_TEST_CASE(a_wrong_password_keeps_it_down, GuardedRedis) {
  auto wrong = connect("wrong");
  auto right = connect("right");  // the same server does take the right one
  BOOST_REQUIRE(loop_until(
      base.get(), [&] { return right->up(); }, 5s));
  BOOST_TEST(!loop_until(
      base.get(), [&] { return wrong->up(); }, 1s));
}
