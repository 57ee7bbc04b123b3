#pragma once
// Integration-test harness: temp dirs, free loopback ports, private redis-server and
// rabbitmq-server instances, the real sluiced binary, and an HTTP client. Nothing is mocked.
//
// Every process the harness starts lives in its own process group, bound to 127.0.0.1, and is
// registered with a per-binary watchdog process (see process.h). If the test binary dies for any
// reason (crash, SIGKILL from a ctest timeout, Ctrl-C), the watchdog SIGKILLs every group that is
// still registered, so no redis, beam, epmd or sluiced outlives the test binary.
//
// Errors while *starting* a server throw std::runtime_error (with the tail of its log), so a
// fixture that cannot set up fails the test case with a readable message.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::test {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Temporary directory

// TempDir creates `$TMPDIR/sluice-test-XXXXXX` (or /tmp) with mkdtemp. The destructor removes it
// recursively, unless the current Boost.Test case has failed (outside a test case: anything in
// the binary has failed so far, see current_test_failed()), the destructor runs during stack
// unwinding, keep() was called, or SLUICE_TEST_LEAVE=1 is set. A kept dir is printed to stderr
// with the last 100 lines of every *.log file under it (nginx-tests' TEST_NGINX_LEAVE/CATLOG).
// (After a SIGSEGV Boost.Test longjmps out of the test, so no destructor runs: the dir stays
// without a dump, and the servers are killed at exit by the atexit handler / watchdog.)
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name; name may contain subdirectories.
  std::string file(const std::string& name) const;
  // Writes (truncates) path()/name, creating parent directories; returns the full path.
  std::string write(const std::string& name, const std::string& content) const;
  // Content of path()/name, or "" if it does not exist.
  std::string read(const std::string& name) const;
  bool exists(const std::string& name) const;
  // Keep the directory (and dump its logs) even if the test passes.
  void keep() { keep_ = true; }

 private:
  std::string path_;
  int uncaught_at_ctor_;
  bool keep_ = false;
};

// Inside a test case: whether that Boost.Test case has failed so far. Outside one (fixtures,
// global teardown, static destructors): whether anything in this binary has failed so far.
bool current_test_failed();

// Content of a file ("" if missing), and its last `lines` lines.
std::string read_file(const std::string& path);
std::string tail_file(const std::string& path, std::size_t lines = 100);

// ---------------------------------------------------------------------------------------------
// Ports and raw sockets (always 127.0.0.1)

// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close). Never returns
// the same port twice in one process, and skips the rabbitmqctl distribution range 35672-35682.
uint16_t free_port();

// Polls a TCP connect to 127.0.0.1:port until it succeeds or `timeout` passes.
bool wait_for_port(uint16_t port, std::chrono::milliseconds timeout = 10s);

// True if a TCP connect to 127.0.0.1:port succeeds right now.
bool port_open(uint16_t port);

// Connects to 127.0.0.1:port, writes `bytes` (without half-closing), and reads until the peer
// closes or `timeout` passes. Returns what was received ("" if the connect failed).
// A connected, blocking TCP socket to 127.0.0.1:port (the caller closes it); -1 on failure.
int connect_loopback(uint16_t port);

std::string raw_exchange(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = 5s);

// ---------------------------------------------------------------------------------------------
// One-shot commands

struct CommandResult {
  // Exit code when the command exited, 128 + signal when it was killed by a signal, -1 when it
  // could not be started or ran past its timeout (it is then SIGKILLed with its process group).
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (searched in PATH) with extra environment entries ("NAME=value", overriding the
// inherited ones), stdin from /dev/null, and waits for it.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env = {},
                          std::chrono::milliseconds timeout = 60s);

// ---------------------------------------------------------------------------------------------
// Redis

// RedisServer runs `redis-server --bind 127.0.0.1 --port P --dir D --save '' --appendonly no
// --daemonize no`, logging to D/redis.log, as a direct child in its own process group with
// PR_SET_PDEATHSIG=SIGKILL. start() returns once a raw `PING` gets `+PONG`. stop() sends SIGTERM
// and reaps it (SIGKILL after 5 s), kill9() SIGKILLs and reaps it; the destructor stops it.
class RedisServer {
 public:
  // Creates `dir` if needed. port 0 picks free_port(). Starts at once unless start_now is false.
  explicit RedisServer(const std::string& dir, uint16_t port = 0, bool start_now = true);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void start(std::chrono::milliseconds timeout = 10s);  // throws on failure; no-op if running
  void stop();
  void kill9();
  bool running() const { return pid_ > 0; }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string log() const;  // content of D/redis.log

  // Sends one inline command (e.g. "PING", "LLEN q") on a fresh connection and returns the raw
  // RESP reply ("+PONG\r\n", ":3\r\n", ...), or "" on error / timeout.
  std::string command(const std::string& inline_command,
                      std::chrono::milliseconds timeout = 2s) const;

 private:
  std::string dir_;
  uint16_t port_;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------------------------
// RabbitMQ

// RabbitServer runs a private RabbitMQ node (environment.md section 2b) with all state under
// D/rabbit: config, enabled_plugins (management), mnesia, logs, pid file, and HOME with its own
// Erlang cookie. Node name `sluicetest<amqp_port>@localhost`; AMQP, management and distribution
// ports are free loopback ports chosen once and kept across restarts.
//
// epmd: each RabbitServer starts its *own* epmd (`epmd -port E -address 127.0.0.1`, E a free
// port) as a child in its own process group, and passes ERL_EPMD_PORT=E to the node and to the
// CLI tools. So the node never touches the system epmd on 4369, no other node ever uses this
// epmd, and stop() / the destructor simply kill it. (An epmd started by the node itself would
// daemonize out of our reach.)
//
// The node is `/usr/lib/rabbitmq/bin/rabbitmq-server` run in its own process group (the script
// forks erl/beam into that group); stdout/stderr go to D/rabbit/log/stdout.log. start() waits up
// to 60 s until the AMQP port accepts a connection and GET /api/overview (guest:guest) answers
// 200. kill9() SIGKILLs the beam (pid from RABBITMQ_PID_FILE) and then the whole group; start()
// again reuses the same ports and mnesia. stop(grace) sends SIGTERM to the beam, waits up to
// `grace`, then SIGKILLs the group and stops epmd. The destructor calls stop(0s).
class RabbitServer {
 public:
  explicit RabbitServer(const std::string& dir, bool start_now = true);
  ~RabbitServer();
  RabbitServer(const RabbitServer&) = delete;
  RabbitServer& operator=(const RabbitServer&) = delete;

  void start(std::chrono::milliseconds timeout = 60s);  // throws on failure; no-op if running
  void stop(std::chrono::milliseconds grace = 15s);
  void kill9();
  bool running() const { return launcher_pid_ > 0; }

  uint16_t amqp_port() const { return amqp_port_; }
  uint16_t mgmt_port() const { return mgmt_port_; }
  uint16_t dist_port() const { return dist_port_; }
  uint16_t epmd_port() const { return epmd_port_; }
  const std::string& node_name() const { return node_; }
  const std::string& dir() const { return base_; }  // D/rabbit
  pid_t beam_pid() const;                           // from the pid file, -1 if unknown

  // Runs `rabbitmqctl -n <node> args...` with this node's HOME, epmd port and a loopback-only
  // distribution interface.
  CommandResult ctl(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = 60s) const;
  // Same for another CLI tool in /usr/lib/rabbitmq/bin (rabbitmq-diagnostics, -queues, ...).
  CommandResult cli(const std::string& tool, const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = 60s) const;

 private:
  std::vector<std::string> env() const;
  void start_epmd();
  void stop_epmd();
  void write_config() const;
  void kill_group();

  std::string base_;
  uint16_t amqp_port_, mgmt_port_, dist_port_, epmd_port_;
  std::string node_;
  pid_t launcher_pid_ = -1;
  pid_t epmd_pid_ = -1;
};

// One node per test binary, started on first use (about 5-8 s) in its own TempDir. A Boost
// global configuration (an observer whose test_finish runs even after a crash aborted the tree)
// kills it and its epmd when the test tree ends; the TempDir is kept, with its logs dumped, if
// anything in the binary failed. A static destructor and the watchdog cover every other way out.
// Tests sharing it should use distinct queue/exchange names.
RabbitServer& shared_rabbit();

// ---------------------------------------------------------------------------------------------
// sluiced

// Sluiced runs the real binary (SLUICED_PATH) as `sluiced -f -c <dir>/sluice.yaml [extra]`,
// stdout+stderr appended to <dir>/sluiced.out.log, in its own process group with
// PR_SET_PDEATHSIG=SIGKILL. The supervisor is a direct child, so wait_exit() returns its raw
// wait status. The destructor SIGKILLs the whole process group (supervisor and workers) if the
// supervisor has not been reaped yet, and always sweeps the group once more.
//
// Sanitizer reports. A worker that dies of an ASan or UBSan error is simply respawned, and its
// stderr reaches the error log only through a rate-limited pipe, so a report could pass
// unnoticed or cut short. So every process of this sluiced writes its ASan and LSan reports to
// files of their own, <dir>/sanitizer/report.<pid> (log_path, added to ASAN_/UBSAN_/
// LSAN_OPTIONS; the directory is writable by a worker that dropped privileges), and the
// destructor fails the current test with every report found there, in the error log or in
// sluiced.out.log (sanitizer_reports()). UBSan's reports still go to stderr whatever log_path
// says when GCC links it with ASan (GCC bug 94328: each runtime has its own report file), so
// a worker's land in the error log as "worker <pid> stderr: ...: runtime error: ..." lines;
// one report (halt_on_error) is well under the pipe's 100 lines a second.
// In a sanitizer build (kSanitized) the destructor first stops sluiced gracefully (SIGTERM, up
// to 15 s), so the shutdown paths run under the sanitizers and LeakSanitizer checks the
// supervisor at its exit.
class Sluiced {
 public:
  // Writes `yaml` to <dir>/sluice.yaml. error_log is the file log() reads ("" =
  // <dir>/error.log); the YAML must point sluiced's error log there.
  Sluiced(TempDir& dir, const std::string& yaml, std::string error_log = "");
  ~Sluiced();
  Sluiced(const Sluiced&) = delete;
  Sluiced& operator=(const Sluiced&) = delete;

  // fork/exec and return. `env` entries ("NAME=value") override the inherited environment
  // of sluiced and so of its workers (e.g. MALLOC_CONF for jemalloc).
  void start(const std::vector<std::string>& extra_args = {},
             const std::vector<std::string>& env = {});
  // Waits until every port accepts a connection; false if the timeout passes or sluiced exits.
  bool wait_ready(const std::vector<uint16_t>& ports, std::chrono::milliseconds timeout = 10s);

  pid_t pid() const { return pid_; }  // the supervisor, -1 if not running
  bool running();                     // reaps the supervisor if it has exited
  // Live (non-zombie) processes whose parent is the supervisor, sorted.
  std::vector<pid_t> worker_pids() const;
  // Polls worker_pids() until it has `count` entries, none of them in `exclude`.
  std::vector<pid_t> wait_workers(std::size_t count, const std::vector<pid_t>& exclude = {},
                                  std::chrono::milliseconds timeout = 10s) const;
  void signal(int sig);  // to the supervisor only
  // Waits for the supervisor to exit and returns its raw wait status (use WIFEXITED etc.); on
  // timeout SIGKILLs the process group and returns nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 10s);

  std::string log() const;      // content of the error log file
  std::string out_log() const;  // content of <dir>/sluiced.out.log
  const std::string& config_path() const { return config_path_; }
  const std::string& error_log_path() const { return error_log_; }
  void write_config(const std::string& yaml) const;  // rewrite sluice.yaml (for SIGHUP tests)

 private:
  void stop_for_teardown();
  void check_sanitizer_reports() const;

  std::string dir_;
  std::string config_path_;
  std::string error_log_;
  std::string report_dir_;  // <dir>/sanitizer: sanitizer reports, one file per process
  pid_t pid_ = -1;          // the supervisor while not reaped
  pid_t pgid_ = -1;         // its process group (kept after the reap, to sweep orphans)
  std::optional<int> exit_status_;
};

// Whether this build has AddressSanitizer and UBSan (cmake -DSLUICE_SANITIZE=ON).
#ifdef SLUICE_SANITIZE
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Every sanitizer report in `texts` (process output, logs) and in the files of `report_dir`
// ("" = none), each introduced by where it was found; "" when there is none. A report is a
// line with "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:" (UBSan),
// "SUMMARY: ...Sanitizer" or "ERROR: Can't open file" (a report that could not be written); any
// file in report_dir counts, whatever it holds.
std::string sanitizer_reports(const std::vector<std::pair<std::string, std::string>>& texts,
                              const std::string& report_dir = "");

// Runs `sluiced args...` (e.g. {"-t", "-c", file} or {"-s", "stop", "-c", file}) once and
// captures stdout+stderr; a sanitizer report in that output fails the current test. Not for
// starting a daemon without -f: a daemonized sluiced leaves the harness's process group and is
// out of the watchdog's reach.
CommandResult run_sluiced(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = 30s);

// ---------------------------------------------------------------------------------------------
// HTTP client (libcurl easy, one handle per thread, connections reused unless fresh_connection)

struct HttpRequest {
  std::string method = "GET";
  uint16_t port = 0;
  std::string path = "/";  // starts with '/'; sent as is (no dot-segment squashing, no escaping)
  std::string body;        // sent when non-empty, or always for POST/PUT/PATCH
  // Sent as given; {"Name", ""} sends `Name:` with an empty value. Curl's default Content-Type
  // and `Expect: 100-continue` are suppressed unless set here. For request lines or headers
  // curl will not produce (HTTP/1.0, bad framing, odd targets), use raw_exchange().
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout = 10s;
  bool fresh_connection = false;  // new connection, closed after the response
};

struct HttpResponse {
  int status = 0;     // 0 on a transport error (refused, reset, timeout, bad response)
  std::string error;  // curl's error text when status == 0
  std::map<std::string, std::string> headers;  // lowercase names; repeats joined by ", "
  std::string body;

  std::string header(const std::string& lowercase_name) const;  // "" if absent
};

// Always to 127.0.0.1; redirects are never followed; no proxy.
HttpResponse http(const HttpRequest& request);
HttpResponse http_get(uint16_t port, const std::string& path,
                      std::vector<std::pair<std::string, std::string>> headers = {});
HttpResponse http_post(uint16_t port, const std::string& path, const std::string& body,
                       const std::string& content_type = "application/x-www-form-urlencoded",
                       std::vector<std::pair<std::string, std::string>> headers = {});

// "Basic <base64(user:password)>" for an Authorization header.
std::string basic_auth(const std::string& user, const std::string& password);

}  // namespace sluice::test
