#define BOOST_TEST_MODULE worker_stderr
// What a worker, or a library inside it, writes to its fd 2 goes through a pipe to the
// supervisor, which logs it line by line as "worker <pid> stderr: ..." (sanitized, cut, rate
// bound) instead of letting it reach the terminal raw. The library here is jemalloc: with
// MALLOC_CONF=stats_interval:N it prints its statistics (about 200 lines) to stderr every N
// bytes a process allocates: 1 MiB is about 100 requests to /stats/fleet for a worker, and more
// than the supervisor allocates in these tests, so sluiced.out.log must stay free of them.
// (stats_print:true would print them only from an atexit hook, which a worker, leaving through
// _exit(), never runs.)
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kBegin = "___ Begin jemalloc statistics ___";
constexpr const char* kMallocConf = "MALLOC_CONF=stats_interval:1048576";

// /stats/fleet allocates a few kilobytes per request; keep asking until `done` or `max`.
template <class Done>
bool allocate_until(uint16_t port, int max, Done done) {
  for (int i = 0; i < max; ++i) {
    if (http_get(port, "/stats/fleet").status != 200) return false;
    if (i % 50 == 49 && done()) return true;
  }
  return done();
}

bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& check) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!check()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Lines that hold a byte below 0x20 (the newline ends them) or DEL.
std::string lines_with_control_bytes(const std::string& text) {
  std::istringstream in(text);
  std::string line, bad;
  while (std::getline(in, line)) {
    for (char c : line) {
      auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b == 0x7f) {
        bad += line + "\n";
        break;
      }
    }
  }
  return bad;
}

// One worker whose jemalloc prints its statistics to stderr as it allocates.
struct Chatty {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced s{dir, daemon_yaml(dir) + listen_yaml({port})};
  int worker = 0;
  Chatty() {
    s.start({}, {kMallocConf});
    BOOST_REQUIRE(s.wait_ready({port}));
    worker = stats_pid(port);
    BOOST_REQUIRE(worker > 0);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(jemalloc_output_of_a_worker_goes_to_the_error_log, Chatty) {
  std::string attributed = "worker " + std::to_string(worker) + " stderr: ";
  auto logged = [&] { return s.log().find(attributed + kBegin) != std::string::npos; };
  BOOST_REQUIRE_MESSAGE(allocate_until(port, 3000, logged), s.log());

  // Nothing of the worker's reached the supervisor's stdout or stderr (checked while it runs:
  // jemalloc might print the supervisor's own statistics at its exit).
  BOOST_TEST(s.out_log().find("jemalloc") == std::string::npos, s.out_log());
  std::string log = s.log();
  BOOST_TEST(lines_with_control_bytes(log).empty(), lines_with_control_bytes(log));
  // Every captured line names the worker it came from, in the usual log format.
  std::istringstream in(log);
  std::string line;
  int captured = 0;
  while (std::getline(in, line)) {
    if (line.find(" stderr: ") == std::string::npos) continue;
    ++captured;
    BOOST_TEST(line.find(" worker: " + attributed) != std::string::npos, line);
    BOOST_TEST(line.rfind("[" + std::to_string(s.pid()) + "] ", 0) == 0u, line);
  }
  BOOST_TEST(captured > 1);
  // About 200 lines at once are more than the rate bound lets through in a second.
  BOOST_TEST(
      eventually(3s, [&] { return s.log().find(attributed + "dropped ") != std::string::npos; }),
      s.log());
}

// A supervisor that does not read (here: stopped) must not block a worker that writes to its
// stderr: the write end is non-blocking, so the worker loses output, never time.
BOOST_FIXTURE_TEST_CASE(a_stopped_supervisor_never_blocks_a_worker, Chatty) {
  s.signal(SIGSTOP);
  // Some 20 KiB of statistics every 100 requests: far more than a pipe holds (64 KiB).
  int served = 0;
  for (int i = 0; i < 1500; ++i) {
    HttpRequest r{"GET", port, "/stats/fleet", "", {}, 3s, false};
    if (http(r).status != 200) break;
    ++served;
  }
  s.signal(SIGCONT);
  BOOST_TEST(served == 1500);
  std::string attributed = "worker " + std::to_string(worker) + " stderr: ";
  BOOST_TEST(eventually(3s, [&] { return s.log().find(attributed + kBegin) != std::string::npos; }),
             s.log());
  BOOST_TEST(s.out_log().find("jemalloc") == std::string::npos);
}

// A worker's last words are kept: what it wrote just before it was killed is logged even if
// the supervisor reaps it before reading the pipe, since the pipe outlives the writer.
BOOST_FIXTURE_TEST_CASE(a_killed_workers_last_output_is_logged, Chatty) {
  for (int i = 0; i < 300; ++i)
    BOOST_REQUIRE(http_get(port, "/stats/fleet").status == 200);
  kill(worker, SIGKILL);
  std::string attributed = "worker " + std::to_string(worker) + " stderr: ";
  BOOST_TEST(eventually(3s, [&] { return s.log().find(attributed + kBegin) != std::string::npos; }),
             s.log());
  BOOST_TEST(eventually(3s, [&] { return stats_pid(port) > 0; }));
  BOOST_TEST(s.out_log().find("jemalloc") == std::string::npos);
}
