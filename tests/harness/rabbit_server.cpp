// A private RabbitMQ node with its own epmd, and the one node shared by a test binary.
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/harness.h"
#include "tests/harness/process.h"

namespace sluice::test {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kRabbitBin = "/usr/lib/rabbitmq/bin/";
const std::string kLoopbackDist = "-kernel inet_dist_use_interface {127,0,0,1}";

std::string random_cookie() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char bytes[20] = {0};
  urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  std::string hex;
  char buf[3];
  for (unsigned char b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    hex += buf;
  }
  return hex;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

RabbitServer::RabbitServer(const std::string& dir, bool start_now)
    : base_(dir + "/rabbit"),
      amqp_port_(free_port()),
      mgmt_port_(free_port()),
      dist_port_(free_port()),
      epmd_port_(free_port()),
      node_("sluicetest" + std::to_string(amqp_port_) + "@localhost") {
  for (const char* sub : {"/home", "/mnesia", "/log"}) {
    std::filesystem::create_directories(base_ + sub);
  }
  write_config();
  if (start_now) start();
}

RabbitServer::~RabbitServer() {
  stop(0ms);
}

void RabbitServer::write_config() const {
  std::string conf;
  conf += "listeners.tcp.default = 127.0.0.1:" + std::to_string(amqp_port_) + "\n";
  conf += "management.tcp.ip = 127.0.0.1\n";
  conf += "management.tcp.port = " + std::to_string(mgmt_port_) + "\n";
  conf += "loopback_users = none\n";
  conf += "log.console = false\n";
  conf += "log.file.level = info\n";
  conf += "disk_free_limit.absolute = 1MB\n";
  write_text(base_ + "/rabbitmq.conf", conf);
  write_text(base_ + "/enabled_plugins", "[rabbitmq_management].\n");
  std::string cookie = base_ + "/home/.erlang.cookie";
  if (!std::filesystem::exists(cookie)) {
    write_text(cookie, random_cookie());
    chmod(cookie.c_str(), 0400);
  }
}

std::vector<std::string> RabbitServer::env() const {
  return {
      "HOME=" + base_ + "/home",
      "LC_ALL=C.UTF-8",
      "RABBITMQ_NODENAME=" + node_,
      "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
      "RABBITMQ_NODE_PORT=" + std::to_string(amqp_port_),
      "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
      "RABBITMQ_MNESIA_BASE=" + base_ + "/mnesia",
      "RABBITMQ_LOG_BASE=" + base_ + "/log",
      "RABBITMQ_CONFIG_FILE=" + base_ + "/rabbitmq.conf",
      "RABBITMQ_ADVANCED_CONFIG_FILE=" + base_ + "/advanced.config",
      "RABBITMQ_ENABLED_PLUGINS_FILE=" + base_ + "/enabled_plugins",
      "RABBITMQ_PID_FILE=" + base_ + "/rabbit.pid",
      "RABBITMQ_CONF_ENV_FILE=/dev/null",
      "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=" + kLoopbackDist,
      "RABBITMQ_CTL_ERL_ARGS=" + kLoopbackDist,
      "ERL_EPMD_ADDRESS=127.0.0.1",
      "ERL_EPMD_PORT=" + std::to_string(epmd_port_),
      "ERL_CRASH_DUMP=" + base_ + "/log/erl_crash.dump",
  };
}

void RabbitServer::start_epmd() {
  if (epmd_pid_ > 0) return;
  detail::SpawnOptions options;
  options.argv = {"epmd", "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"};
  options.output = base_ + "/log/epmd.log";
  options.cwd = base_;
  epmd_pid_ = detail::spawn(options);
  if (!wait_for_port(epmd_port_, 5s)) {
    stop_epmd();
    throw std::runtime_error("epmd did not listen on port " + std::to_string(epmd_port_) + ":\n" +
                             tail_file(base_ + "/log/epmd.log", 20));
  }
}

void RabbitServer::stop_epmd() {
  if (epmd_pid_ <= 0) return;
  detail::kill_group_and_reap(epmd_pid_, epmd_pid_);
  epmd_pid_ = -1;
}

pid_t RabbitServer::beam_pid() const {
  std::string text = read_file(base_ + "/rabbit.pid");
  long pid = std::strtol(text.c_str(), nullptr, 10);
  return pid > 0 ? static_cast<pid_t>(pid) : -1;
}

void RabbitServer::start(std::chrono::milliseconds timeout) {
  if (launcher_pid_ > 0) return;
  start_epmd();
  std::remove((base_ + "/rabbit.pid").c_str());
  std::string out_log = base_ + "/log/stdout.log";
  detail::SpawnOptions options;
  options.argv = {kRabbitBin + "rabbitmq-server"};
  options.env = env();
  options.output = out_log;
  options.cwd = base_;
  launcher_pid_ = detail::spawn(options);

  auto fail = [&](const std::string& why) {
    kill9();
    stop_epmd();
    throw std::runtime_error("rabbitmq node " + node_ + " " + why + ":\n" + tail_file(out_log, 30) +
                             tail_file(base_ + "/log/" + node_ + ".log", 30));
  };
  HttpRequest overview;
  overview.port = mgmt_port_;
  overview.path = "/api/overview";
  overview.headers = {{"Authorization", basic_auth("guest", "guest")}};
  overview.timeout = 5s;
  overview.fresh_connection = true;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (port_open(amqp_port_) && http(overview).status == 200) return;
    int status = 0;
    if (detail::wait_pid(launcher_pid_, &status, 0ms)) {
      detail::kill_group_and_reap(launcher_pid_, -1);
      launcher_pid_ = -1;
      fail("exited during boot (" + detail::format_status(status) + ")");
    }
    if (Clock::now() >= deadline) fail("was not ready in time");
    std::this_thread::sleep_for(200ms);
  }
}

void RabbitServer::kill_group() {
  if (launcher_pid_ <= 0) return;
  detail::kill_group_and_reap(launcher_pid_, launcher_pid_);
  launcher_pid_ = -1;
}

void RabbitServer::kill9() {
  if (launcher_pid_ <= 0) return;
  pid_t beam = beam_pid();
  if (beam > 0) {
    kill(beam, SIGKILL);
    // The launcher script reaps the beam and exits; then sweep the group.
    detail::wait_pid(launcher_pid_, nullptr, 5s);
  }
  kill_group();
}

void RabbitServer::stop(std::chrono::milliseconds grace) {
  if (launcher_pid_ > 0) {
    pid_t beam = beam_pid();
    if (beam > 0 && grace > 0ms) {
      kill(beam, SIGTERM);  // graceful shutdown; the launcher exits after the beam
      detail::wait_pid(launcher_pid_, nullptr, grace);
    }
    kill9();
  }
  stop_epmd();
}

CommandResult RabbitServer::cli(const std::string& tool, const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {kRabbitBin + tool, "-n", node_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env(), timeout);
}

CommandResult RabbitServer::ctl(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) const {
  return cli("rabbitmqctl", args, timeout);
}

// ---------------------------------------------------------------------------------------------
// The node shared by one test binary.

namespace {

struct SharedRabbit {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<RabbitServer> node;
  std::string error;  // a failed start is not retried (it would cost another minute)

  void shutdown() {
    if (node) node->stop(0ms);  // SIGKILL: the mnesia is thrown away anyway
    node.reset();
    dir.reset();  // kept (with its logs dumped) if a test failed
  }
  ~SharedRabbit() { shutdown(); }
};

SharedRabbit& shared_state() {
  static SharedRabbit state;
  return state;
}

// Stops the shared node when the test tree ends (Boost.Test's test_finish, which runs even when
// a crash made it abort the tree), while TempDir can still ask whether anything failed. The
// static destructor of SharedRabbit and the watchdog are the fallbacks.
struct SharedRabbitCleanup {
  ~SharedRabbitCleanup() { shared_state().shutdown(); }
};

}  // namespace

BOOST_TEST_GLOBAL_CONFIGURATION(SharedRabbitCleanup);

RabbitServer& shared_rabbit() {
  SharedRabbit& state = shared_state();
  if (state.node) return *state.node;
  if (!state.error.empty()) throw std::runtime_error(state.error);
  try {
    state.dir = std::make_unique<TempDir>();
    state.node = std::make_unique<RabbitServer>(state.dir->path());
  } catch (const std::exception& e) {
    state.error = std::string("shared_rabbit: ") + e.what();
    if (state.dir) state.dir->keep();
    state.node.reset();
    state.dir.reset();
    throw std::runtime_error(state.error);
  }
  return *state.node;
}

}  // namespace sluice::test
