// The integration-test harness itself: temp dirs, ports, private redis and rabbitmq.
#define BOOST_TEST_MODULE harness
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <set>

#include "tests/harness/harness.h"

namespace st = sluice::test;
using namespace std::chrono_literals;

namespace {

bool process_alive(pid_t pid) {
  return pid > 0 && kill(pid, 0) == 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(free_port_gives_distinct_bindable_ports) {
  std::set<uint16_t> ports;
  for (int i = 0; i < 50; ++i) {
    uint16_t port = st::free_port();
    BOOST_TEST(port != 0);
    BOOST_TEST(ports.insert(port).second, "port " << port << " handed out twice");
  }
  BOOST_TEST(!st::port_open(*ports.begin()));
  BOOST_TEST(!st::wait_for_port(*ports.begin(), 100ms));
}

BOOST_AUTO_TEST_CASE(temp_dir_is_removed_on_success) {
  std::string path;
  {
    st::TempDir dir;
    path = dir.path();
    BOOST_TEST(std::filesystem::is_directory(path));
    BOOST_TEST(path.find("sluice-test-") != std::string::npos);
    std::string full = dir.write("sub/a.log", "hello\n");
    BOOST_TEST(full == dir.file("sub/a.log"));
    BOOST_TEST(dir.read("sub/a.log") == "hello\n");
    BOOST_TEST(dir.exists("sub/a.log"));
    BOOST_TEST(dir.read("missing") == "");
  }
  BOOST_TEST(!std::filesystem::exists(path));
}

BOOST_AUTO_TEST_CASE(tail_file_keeps_the_last_lines) {
  st::TempDir dir;
  std::string text;
  for (int i = 1; i <= 150; ++i)
    text += "line " + std::to_string(i) + "\n";
  std::string tail = st::tail_file(dir.write("x.log", text), 100);
  BOOST_TEST(tail.rfind("line 51\n", 0) == 0);
  BOOST_TEST(tail.size() > 9);
  BOOST_TEST(tail.substr(tail.size() - 9) == "line 150\n");
}

BOOST_AUTO_TEST_CASE(run_command_captures_output_and_exit_code) {
  st::CommandResult r = st::run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(r.output.find("out\n") != std::string::npos);
  BOOST_TEST(r.output.find("err\n") != std::string::npos);

  st::CommandResult env = st::run_command({"sh", "-c", "echo $SLUICE_X"}, {"SLUICE_X=42"});
  BOOST_TEST(env.output == "42\n");

  st::CommandResult slow = st::run_command({"sleep", "30"}, {}, 200ms);
  BOOST_TEST(slow.exit_code == -1);

  st::CommandResult missing = st::run_command({"/nonexistent/binary"});
  BOOST_TEST(missing.exit_code == 127);
}

// What Sluiced's destructor and run_sluiced() fail a test with: a report in a text from its
// first marker on, and every file a process wrote to the report directory.
BOOST_AUTO_TEST_CASE(sanitizer_reports_are_found_in_output_and_report_files) {
  st::TempDir dir;
  std::string clean = "[1] 2026-01-01 INFO worker: graceful stop: 0 requests in flight\n";
  BOOST_TEST(st::sanitizer_reports({{"error.log", clean}}, dir.path()).empty());
  std::string log = clean +
                    "[1] WARN worker: worker 7 stderr: a.cpp:3:5: runtime error: signed "
                    "integer overflow\n[1] WARN worker: worker 7 stderr:     #0 0x1 in f a.cpp:3\n";
  std::string found = st::sanitizer_reports({{"error.log", log}});
  BOOST_TEST(found.find("in error.log") != std::string::npos, found);
  BOOST_TEST(found.find("runtime error: signed integer overflow") != std::string::npos, found);
  BOOST_TEST(found.find("#0 0x1 in f") != std::string::npos, found);
  BOOST_TEST(found.find("graceful stop") == std::string::npos, found);
  for (const char* line : {"==9==ERROR: AddressSanitizer: heap-use-after-free on address 0x1",
                           "==9==ERROR: LeakSanitizer: detected memory leaks",
                           "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior a.cpp:3:5"}) {
    BOOST_TEST(!st::sanitizer_reports({{"out", std::string("x\n") + line + "\n"}}).empty(), line);
  }
  dir.write("sanitizer/report.42", "==42==ERROR: AddressSanitizer: stack-buffer-overflow\n");
  found = st::sanitizer_reports({{"error.log", clean}}, dir.file("sanitizer"));
  BOOST_TEST(found.find(dir.file("sanitizer/report.42")) != std::string::npos, found);
  BOOST_TEST(found.find("stack-buffer-overflow") != std::string::npos, found);
}

BOOST_AUTO_TEST_CASE(redis_starts_answers_and_survives_kill9) {
  st::TempDir dir;
  st::RedisServer redis(dir.path());
  BOOST_TEST(redis.running());
  BOOST_TEST(redis.command("PING") == "+PONG\r\n");
  BOOST_TEST(redis.command("RPUSH q a b c") == ":3\r\n");
  BOOST_TEST(redis.command("LRANGE q 0 -1") == "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
  BOOST_TEST(st::raw_exchange(redis.port(), "PING\r\nQUIT\r\n", 2s) == "+PONG\r\n+OK\r\n");

  uint16_t port = redis.port();
  for (int round = 0; round < 3; ++round) {
    pid_t old_pid = redis.pid();
    redis.kill9();
    BOOST_TEST(!redis.running());
    BOOST_TEST(!process_alive(old_pid));
    BOOST_TEST(redis.command("PING", 200ms) == "");
    redis.start();
    BOOST_TEST(redis.port() == port);
    BOOST_TEST(redis.pid() != old_pid);
    BOOST_TEST(redis.command("PING") == "+PONG\r\n");
    BOOST_TEST(redis.command("LLEN q") == ":0\r\n");  // no persistence
  }

  pid_t pid = redis.pid();
  redis.stop();
  BOOST_TEST(!process_alive(pid));
  BOOST_TEST(redis.log().find("Ready to accept connections") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(http_client_talks_to_a_real_server) {
  // The management API of the shared node is the real HTTP server at hand.
  st::RabbitServer& rabbit = st::shared_rabbit();
  st::HttpResponse r = st::http_get(rabbit.mgmt_port(), "/api/overview",
                                    {{"Authorization", st::basic_auth("guest", "guest")}});
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("content-type").find("application/json") == 0);
  BOOST_TEST(r.body.find("\"rabbitmq_version\"") != std::string::npos);

  st::HttpResponse anon = st::http_get(rabbit.mgmt_port(), "/api/overview");
  BOOST_TEST(anon.status == 401);

  st::HttpRequest put;
  put.method = "PUT";
  put.port = rabbit.mgmt_port();
  put.path = "/api/queues/%2F/harness-http";
  put.body = "{\"durable\":false}";
  put.headers = {{"Authorization", st::basic_auth("guest", "guest")},
                 {"Content-Type", "application/json"}};
  put.fresh_connection = true;
  BOOST_TEST(st::http(put).status == 201);

  st::HttpResponse refused = st::http_get(st::free_port(), "/");
  BOOST_TEST(refused.status == 0);
  BOOST_TEST(!refused.error.empty());

  BOOST_TEST(st::basic_auth("guest", "guest") == "Basic Z3Vlc3Q6Z3Vlc3Q=");
  BOOST_TEST(st::basic_auth("a", "") == "Basic YTo=");
  BOOST_TEST(st::basic_auth("ab", "") == "Basic YWI6");
}

BOOST_AUTO_TEST_CASE(shared_rabbit_boots_once) {
  st::RabbitServer& rabbit = st::shared_rabbit();
  BOOST_TEST(rabbit.running());
  BOOST_TEST(st::port_open(rabbit.amqp_port()));
  BOOST_TEST(rabbit.node_name() ==
             "sluicetest" + std::to_string(rabbit.amqp_port()) + "@localhost");
  BOOST_TEST(process_alive(rabbit.beam_pid()));

  st::CommandResult r = rabbit.ctl({"list_queues"});
  BOOST_TEST(r.exit_code == 0, r.output);

  BOOST_TEST(&st::shared_rabbit() == &rabbit);
}

// Slow (two more node boots, ~25 s): runs only with SLUICE_TEST_SLOW=1.
BOOST_AUTO_TEST_CASE(rabbit_kill9_and_restart,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       const char* slow = std::getenv("SLUICE_TEST_SLOW");
                       return slow && *slow == '1';
                     })) {
  st::TempDir dir;
  st::RabbitServer rabbit(dir.path());
  pid_t beam = rabbit.beam_pid();
  BOOST_TEST(process_alive(beam));
  BOOST_TEST(rabbit.ctl({"add_vhost", "kept"}).exit_code == 0);

  rabbit.kill9();
  BOOST_TEST(!process_alive(beam));
  BOOST_TEST(!st::port_open(rabbit.amqp_port()));

  rabbit.start();
  BOOST_TEST(st::port_open(rabbit.amqp_port()));
  BOOST_TEST(rabbit.beam_pid() != beam);
  st::CommandResult vhosts = rabbit.ctl({"list_vhosts"});
  BOOST_TEST(vhosts.output.find("kept") != std::string::npos, vhosts.output);  // same mnesia

  pid_t beam2 = rabbit.beam_pid();
  rabbit.stop(20s);
  BOOST_TEST(!process_alive(beam2));
  BOOST_TEST(!st::port_open(rabbit.epmd_port()));
}
