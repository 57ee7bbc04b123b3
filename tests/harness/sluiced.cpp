// The real sluiced binary under test.
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/harness.h"
#include "tests/harness/process.h"

#ifndef SLUICED_PATH
#error "SLUICED_PATH must name the sluiced binary (the CMake target sluice_harness defines it)"
#endif

namespace sluice::test {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Sluiced::Sluiced(TempDir& dir, const std::string& yaml, std::string error_log)
    : dir_(dir.path()),
      config_path_(dir.file("sluice.yaml")),
      error_log_(error_log.empty() ? dir.file("error.log") : std::move(error_log)) {
  write_config(yaml);
}

Sluiced::~Sluiced() {
  if (pid_ > 0) {
    detail::kill_group_and_reap(pgid_, pid_);
  } else if (pgid_ > 0) {
    detail::kill_group_and_reap(pgid_, -1);  // orphaned workers, if any
  }
}

void Sluiced::write_config(const std::string& yaml) const {
  std::ofstream out(config_path_, std::ios::binary | std::ios::trunc);
  out << yaml;
  if (!out) throw std::runtime_error("cannot write " + config_path_);
}

void Sluiced::start(const std::vector<std::string>& extra_args,
                    const std::vector<std::string>& env) {
  if (pid_ > 0) throw std::logic_error("Sluiced::start: already running");
  if (pgid_ > 0) detail::kill_group_and_reap(pgid_, -1);  // leftovers of a previous run
  detail::SpawnOptions options;
  options.argv = {SLUICED_PATH, "-f", "-c", config_path_};
  options.argv.insert(options.argv.end(), extra_args.begin(), extra_args.end());
  options.env = env;
  options.output = dir_ + "/sluiced.out.log";
  options.cwd = dir_;
  pid_ = pgid_ = detail::spawn(options);
  exit_status_.reset();
}

bool Sluiced::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (detail::wait_pid(pid_, &status, 0ms)) {
    exit_status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

bool Sluiced::wait_ready(const std::vector<uint16_t>& ports, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<uint16_t> pending = ports;
  for (;;) {
    pending.erase(std::remove_if(pending.begin(), pending.end(), port_open), pending.end());
    if (pending.empty()) return true;
    if (!running() || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

std::vector<pid_t> Sluiced::worker_pids() const {
  std::vector<pid_t> out;
  if (pid_ <= 0) return out;
  for (const detail::ProcStat& p : detail::list_processes()) {
    if (p.ppid == pid_ && p.state != 'Z' && p.state != 'X') out.push_back(p.pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<pid_t> Sluiced::wait_workers(std::size_t count, const std::vector<pid_t>& exclude,
                                         std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::vector<pid_t> pids = worker_pids();
    bool fresh = std::none_of(pids.begin(), pids.end(), [&](pid_t p) {
      return std::find(exclude.begin(), exclude.end(), p) != exclude.end();
    });
    if (pids.size() == count && fresh) return pids;
    if (Clock::now() >= deadline) return pids;
    std::this_thread::sleep_for(20ms);
  }
}

void Sluiced::signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> Sluiced::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (detail::wait_pid(pid_, &status, timeout)) {
    exit_status_ = status;
    pid_ = -1;
    return exit_status_;
  }
  detail::kill_group_and_reap(pgid_, pid_);
  pid_ = -1;
  return std::nullopt;
}

std::string Sluiced::log() const {
  return read_file(error_log_);
}

std::string Sluiced::out_log() const {
  return read_file(dir_ + "/sluiced.out.log");
}

CommandResult run_sluiced(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {SLUICED_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, timeout);
}

}  // namespace sluice::test
