// A private redis-server on a loopback port.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "tests/harness/harness.h"
#include "tests/harness/net.h"
#include "tests/harness/process.h"

namespace sluice::test {
namespace {

using Clock = std::chrono::steady_clock;

// Length of the complete RESP value at the start of `s`, or 0 if it is not complete yet.
std::size_t resp_complete(const std::string& s, std::size_t pos = 0) {
  std::size_t eol = s.find("\r\n", pos);
  if (pos >= s.size() || eol == std::string::npos) return 0;
  std::size_t header = eol + 2 - pos;
  char type = s[pos];
  if (type == '+' || type == '-' || type == ':') return header;
  long n = std::strtol(s.c_str() + pos + 1, nullptr, 10);
  if (type == '$') {
    if (n < 0) return header;
    std::size_t total = header + static_cast<std::size_t>(n) + 2;
    return s.size() - pos >= total ? total : 0;
  }
  if (type == '*') {
    std::size_t len = header;
    for (long i = 0; i < n; ++i) {
      std::size_t item = resp_complete(s, pos + len);
      if (item == 0) return 0;
      len += item;
    }
    return len;
  }
  return header;  // unknown type: take the line
}

}  // namespace

RedisServer::RedisServer(const std::string& dir, uint16_t port, bool start_now)
    : dir_(dir), port_(port ? port : free_port()) {
  std::filesystem::create_directories(dir_);
  if (start_now) start();
}

RedisServer::~RedisServer() {
  stop();
}

void RedisServer::start(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return;
  std::string log_path = dir_ + "/redis.log";
  detail::SpawnOptions options;
  options.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_)};
  for (const char* arg : {"--save", "", "--appendonly", "no", "--daemonize", "no"}) {
    options.argv.emplace_back(arg);
  }
  options.argv.insert(options.argv.end(), {"--dir", dir_, "--logfile", log_path});
  options.output = log_path;  // errors printed before the log file is opened
  options.cwd = dir_;
  pid_ = detail::spawn(options);

  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (command("PING", 500ms) == "+PONG\r\n") return;
    int status = 0;
    if (detail::wait_pid(pid_, &status, 0ms)) {
      detail::kill_group_and_reap(pid_, -1);
      pid_ = -1;
      throw std::runtime_error("redis-server on port " + std::to_string(port_) + " exited (" +
                               detail::format_status(status) + "):\n" + tail_file(log_path, 30));
    }
    if (Clock::now() >= deadline) {
      detail::kill_group_and_reap(pid_, pid_);
      pid_ = -1;
      throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                               " did not answer PING:\n" + tail_file(log_path, 30));
    }
    std::this_thread::sleep_for(20ms);
  }
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  bool reaped = detail::wait_pid(pid_, nullptr, 5s);
  detail::kill_group_and_reap(pid_, reaped ? -1 : pid_);
  pid_ = -1;
}

void RedisServer::kill9() {
  if (pid_ <= 0) return;
  detail::kill_group_and_reap(pid_, pid_);
  pid_ = -1;
}

std::string RedisServer::log() const {
  return read_file(dir_ + "/redis.log");
}

std::string RedisServer::command(const std::string& inline_command,
                                 std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  common::UniqueFd fd = detail::connect_loopback(port_, timeout);
  if (!fd.valid()) return "";
  if (!detail::send_all(fd.get(), inline_command + "\r\n", deadline)) return "";
  std::string reply = detail::receive(
      fd.get(), deadline, [](const std::string& s) { return !s.empty() && resp_complete(s) != 0; });
  return resp_complete(reply) != 0 ? reply : "";
}

}  // namespace sluice::test
