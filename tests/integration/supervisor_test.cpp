#define BOOST_TEST_MODULE supervisor
// The process model as behaviour: pidfile lock, respawn, no respawn on exit 2, graceful and
// immediate stop, daemon mode with -s, privilege drop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

std::string basic_config(const TempDir& dir, const std::vector<uint16_t>& ports,
                         const std::string& daemon_extra = "") {
  return daemon_yaml(dir, daemon_extra) + listen_yaml(ports);
}

// Connects, sends the headers and half the body of a request, and returns the socket.
int start_slow_request(uint16_t port) {
  int fd = connect_loopback(port);
  BOOST_REQUIRE(fd >= 0);
  std::string head = "GET /stats HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345";
  BOOST_REQUIRE(write(fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()));
  return fd;
}

std::string finish_slow_request(int fd) {
  std::string rest = "67890";
  BOOST_REQUIRE(write(fd, rest.data(), rest.size()) == 5);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    got.append(buf, static_cast<size_t>(n));
  close(fd);
  return got;
}

// Gone or a zombie: the daemonized supervisor's parent is not this test, so nobody may
// reap it right away.
bool process_gone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || stat.substr(paren + 2, 1) == "Z";
}

uid_t status_uid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return static_cast<uid_t>(std::stoul(line.substr(4)));
  }
  return static_cast<uid_t>(-1);
}

// One worker on a fresh port, started and accepting.
struct OnePort {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced s{dir, basic_config(dir, {port})};
  OnePort() {
    s.start();
    BOOST_REQUIRE(s.wait_ready({port}));
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(second_instance_is_refused_by_the_pidfile_lock) {
  TempDir dir;
  uint16_t port = free_port();
  Sluiced first(dir, basic_config(dir, {port}));
  first.start();
  BOOST_REQUIRE(first.wait_ready({port}));
  CommandResult second = run_sluiced({"-f", "-c", first.config_path()});
  BOOST_TEST(second.exit_code == 1);
  BOOST_TEST(second.output.find("another sluiced is already running (pid " +
                                std::to_string(first.pid()) + ")") != std::string::npos,
             second.output);
  BOOST_TEST(first.running());
  BOOST_TEST(http_get(port, "/stats").status == 200);
}

BOOST_FIXTURE_TEST_CASE(killed_worker_is_replaced_within_a_second, OnePort) {
  std::vector<pid_t> before = s.wait_workers(1);
  BOOST_REQUIRE_EQUAL(before.size(), 1u);
  BOOST_TEST(stats_pid(port) == before[0]);
  auto killed_at = std::chrono::steady_clock::now();
  kill(before[0], SIGKILL);
  int new_pid = 0;
  while (std::chrono::steady_clock::now() - killed_at < 1s) {
    new_pid = stats_pid(port);
    if (new_pid != 0 && new_pid != before[0]) break;
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(new_pid != 0);
  BOOST_TEST(new_pid != before[0]);
  BOOST_TEST((std::chrono::steady_clock::now() - killed_at < 1s));
  // /stats counts the respawn.
  rapidjson::Document doc = parse_json(http_get(port, "/stats").body);
  BOOST_TEST(doc["worker"]["respawns"].GetInt() == 1);
  BOOST_TEST(s.log().find("killed by signal 9") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(repeated_crashes_back_off_exponentially, OnePort) {
  std::vector<pid_t> seen;
  auto next_worker = [&] {  // the first worker serving that was not killed yet
    for (int i = 0; i < 300; ++i) {
      int pid = stats_pid(port);
      if (pid > 0 && std::count(seen.begin(), seen.end(), pid) == 0) return pid;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  };
  for (int crash = 0; crash < 4; ++crash) {
    int pid = next_worker();
    BOOST_REQUIRE(pid > 0);
    seen.push_back(pid);
    kill(pid, SIGKILL);
  }
  BOOST_TEST(stats_pid(port) > 0);  // still served after the fourth respawn
  std::string log = s.log();
  size_t at = 0;
  for (const char* delay : {"in 100 ms", "in 200 ms", "in 400 ms", "in 800 ms"}) {
    at = log.find(delay, at);
    BOOST_TEST(at != std::string::npos, delay);
  }
}

// nginx's rule: a worker that exits with 2 had a fatal error; respawning it would loop.
BOOST_AUTO_TEST_CASE(worker_exiting_with_2_is_not_respawned) {
  TempDir dir;
  uint16_t doomed = free_port(), other = free_port();
  std::string workdir = dir.file("work");
  BOOST_REQUIRE(mkdir(workdir.c_str(), 0755) == 0);
  Sluiced s(dir, basic_config(dir, {doomed, other}, "  working_directory: " + workdir + "\n"));
  s.start();
  BOOST_REQUIRE(s.wait_ready({doomed, other}));
  // Both workers are past their chdir() once they serve; the next one to start cannot
  // chdir() and exits with 2.
  pid_t victim = stats_pid(doomed);
  BOOST_REQUIRE(victim > 0);
  BOOST_REQUIRE(stats_pid(other) > 0);
  BOOST_REQUIRE(rmdir(workdir.c_str()) == 0);
  kill(victim, SIGKILL);
  std::this_thread::sleep_for(1500ms);  // the respawn after 100 ms fails; nothing after that
  std::string log = s.log();
  BOOST_TEST(log.find("chdir(\"" + workdir + "\") failed: No such file or directory") !=
             std::string::npos);
  BOOST_TEST(log.find("exited with code 2") != std::string::npos);
  BOOST_TEST(log.find("not respawning it") != std::string::npos);
  BOOST_TEST(s.worker_pids().size() == 1u);
  // The port is closed (refused, not queued) and the other worker is unaffected.
  BOOST_TEST(!port_open(doomed));
  BOOST_TEST(http_get(other, "/stats").status == 200);
  BOOST_TEST(s.running());
}

BOOST_FIXTURE_TEST_CASE(sigterm_lets_a_request_in_flight_complete, OnePort) {
  int fd = start_slow_request(port);
  std::this_thread::sleep_for(200ms);
  s.signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  // New connections are refused at once (an upstream pool moves on)...
  BOOST_TEST(!port_open(port));
  // ...and the request that started before is still served.
  std::string reply = finish_slow_request(fd);
  BOOST_TEST(reply.rfind("HTTP/1.1 200 OK", 0) == 0u, reply);
  BOOST_TEST(reply.find("Connection: close") != std::string::npos);
  auto status = s.wait_exit(10s);
  BOOST_REQUIRE(status.has_value());
  BOOST_TEST(WIFEXITED(*status));
  BOOST_TEST(WEXITSTATUS(*status) == 0);
  BOOST_TEST(!dir.exists("sluiced.pid"));
  BOOST_TEST(!port_open(port));
}

BOOST_AUTO_TEST_CASE(shutdown_timeout_bounds_a_stuck_request) {
  TempDir dir;
  uint16_t port = free_port();
  std::string yaml = basic_config(dir, {port});
  yaml.replace(yaml.find("shutdown_timeout: 5s"), 20, "shutdown_timeout: 1s");
  Sluiced s(dir, yaml);
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  int fd = start_slow_request(port);  // never finished
  std::this_thread::sleep_for(200ms);
  auto asked = std::chrono::steady_clock::now();
  s.signal(SIGTERM);
  auto status = s.wait_exit(10s);
  auto took = std::chrono::steady_clock::now() - asked;
  close(fd);
  BOOST_REQUIRE(status.has_value());
  BOOST_TEST(WEXITSTATUS(*status) == 0);
  BOOST_TEST((took >= 900ms));
  BOOST_TEST((took < 4s));
}

BOOST_FIXTURE_TEST_CASE(sigquit_stops_at_once, OnePort) {
  int fd = start_slow_request(port);
  std::this_thread::sleep_for(200ms);
  auto asked = std::chrono::steady_clock::now();
  s.signal(SIGQUIT);
  auto status = s.wait_exit(5s);
  close(fd);
  BOOST_REQUIRE(status.has_value());
  BOOST_TEST(WIFEXITED(*status));
  BOOST_TEST((std::chrono::steady_clock::now() - asked < 2s));
  BOOST_TEST(!dir.exists("sluiced.pid"));
}

// Without -f: the parent returns once the daemon is ready; -s finds it through the pidfile.
BOOST_AUTO_TEST_CASE(daemon_mode_and_signal_commands) {
  TempDir dir;
  uint16_t port = free_port();
  std::string config = dir.write("sluice.yaml", basic_config(dir, {port}));
  CommandResult started = run_sluiced({"-c", config});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  BOOST_REQUIRE(wait_for_port(port, 5s));
  std::string pid_text = dir.read("sluiced.pid");
  BOOST_REQUIRE(!pid_text.empty());
  pid_t daemon_pid = std::stoi(pid_text);
  BOOST_TEST(kill(daemon_pid, 0) == 0);
  BOOST_TEST(http_get(port, "/stats").status == 200);
  BOOST_TEST(run_sluiced({"-s", "reopen", "-c", config}).exit_code == 0);
  // A config edited into an invalid state still lets -s find the instance.
  dir.write("sluice.yaml", basic_config(dir, {port}) + "oops: not a known section\n");
  BOOST_TEST(run_sluiced({"-s", "stop", "-c", config}).exit_code == 0);
  for (int i = 0; i < 100 && !process_gone(daemon_pid); ++i)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(process_gone(daemon_pid));
  BOOST_TEST(!dir.exists("sluiced.pid"));
  dir.write("sluice.yaml", basic_config(dir, {port}));
  // A pidfile left behind names a pid nobody holds the lock for: never signalled.
  pid_t bystander = fork();
  if (bystander == 0) {
    pause();
    _exit(0);
  }
  dir.write("sluiced.pid", std::to_string(bystander) + "\n");
  CommandResult stale = run_sluiced({"-s", "stop", "-c", config});
  BOOST_TEST(stale.exit_code == 1);
  BOOST_TEST(stale.output.find("not locked by a running sluiced") != std::string::npos,
             stale.output);
  BOOST_TEST(kill(bystander, 0) == 0);
  kill(bystander, SIGKILL);
  waitpid(bystander, nullptr, 0);
  std::remove(dir.file("sluiced.pid").c_str());
  CommandResult again = run_sluiced({"-s", "stop", "-c", config});
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(again.output.find("is sluiced running?") != std::string::npos, again.output);
}

BOOST_AUTO_TEST_CASE(workers_drop_privileges_to_the_configured_user) {
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("not root: privilege drop cannot be exercised");
    return;
  }
  TempDir dir;
  chmod(dir.path().c_str(), 0755);  // the worker (nobody) must be able to reach its log
  uint16_t port = free_port();
  Sluiced s(dir, basic_config(dir, {port}, "  user: nobody\n"));
  s.start();
  BOOST_REQUIRE(s.wait_ready({port}));
  // A served request means the worker is past its privilege drop (the listening socket
  // accepts connections as soon as the supervisor binds it).
  int worker = stats_pid(port);
  BOOST_REQUIRE(worker > 0);
  BOOST_TEST(status_uid(worker) == 65534u);  // nobody
  BOOST_TEST(status_uid(s.pid()) == 0u);     // the supervisor keeps root (binds, logs)
  // The log file was handed to the worker's user, so its SIGUSR1 reopen works too.
  struct stat st {};
  BOOST_REQUIRE(stat(dir.file("error.log").c_str(), &st) == 0);
  BOOST_TEST(st.st_uid == 65534u);
}

BOOST_AUTO_TEST_CASE(root_without_a_user_is_refused) {
  if (geteuid() != 0) return;
  TempDir dir;
  uint16_t port = free_port();
  std::string yaml = "daemon:\n  pidfile: " + dir.file("sluiced.pid") + "\n" + listen_yaml({port});
  std::string config = dir.write("sluice.yaml", yaml);
  CommandResult r = run_sluiced({"-f", "-c", config});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(
      r.output.find("daemon.user: must be set when sluiced starts as root") != std::string::npos,
      r.output);
  BOOST_TEST(!port_open(port));
}
