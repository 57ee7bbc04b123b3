// The real sluiced binary under test, and the sanitizer reports it leaves.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
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

constexpr std::chrono::seconds kGracefulTeardown{15};  // shutdown_timeout is 5 s in the fixtures
constexpr std::size_t kMaxReportBytes = 64 * 1024;     // per text or file
constexpr std::size_t kMaxReportLines = 200;           // per text, from its first marker on

// What starts or sums up a report of ASan, LSan or UBSan (halt_on_error: one per process).
// "Can't open file" is the sanitizers' own message when log_path cannot be written.
constexpr const char* kMarkers[] = {
    "ERROR: AddressSanitizer",   "ERROR: LeakSanitizer",   "runtime error:",
    "SUMMARY: AddressSanitizer", "SUMMARY: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
    "ERROR: Can't open file",
};

bool has_marker(const std::string& line) {
  return std::any_of(std::begin(kMarkers), std::end(kMarkers),
                     [&](const char* m) { return line.find(m) != std::string::npos; });
}

// The lines of `text` from its first marker on (at most kMaxReportLines), "" if none.
std::string from_first_marker(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  std::size_t lines = 0;
  while (std::getline(in, line)) {
    if (lines == 0 && !has_marker(line)) continue;
    if (++lines > kMaxReportLines || out.size() > kMaxReportBytes) {
      out += "[... cut]\n";
      break;
    }
    out += line + "\n";
  }
  return out;
}

// Adds `name`=<inherited value>:log_path=<path> unless the caller sets `name` itself. Options
// given later win, so a log_path inherited from the environment is overridden.
void add_log_path(std::vector<std::string>& env, const char* name, const std::string& path) {
  std::string prefix = std::string(name) + "=";
  for (const std::string& e : env)
    if (e.compare(0, prefix.size(), prefix) == 0) return;
  const char* inherited = std::getenv(name);
  std::string value = inherited && *inherited ? std::string(inherited) + ":" : "";
  env.push_back(prefix + value + "log_path=" + path);
}

void report_failure(const std::string& what, const std::string& reports) {
  std::string message = what + ":\n" + reports;
  if (boost::unit_test::framework::test_in_progress()) {
    BOOST_ERROR(message);
  } else {
    std::cerr << "sluice-test: " << message;  // no test to fail: at least never silent
  }
}

}  // namespace

std::string sanitizer_reports(const std::vector<std::pair<std::string, std::string>>& texts,
                              const std::string& report_dir) {
  std::string out;
  for (const auto& [where, text] : texts) {
    std::string found = from_first_marker(text);
    if (!found.empty()) out += "---- sanitizer report in " + where + " ----\n" + found;
  }
  if (report_dir.empty()) return out;
  std::vector<std::string> files;
  if (DIR* d = opendir(report_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        files.push_back(report_dir + "/" + e->d_name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    std::string text = read_file(file);
    if (text.size() > kMaxReportBytes) text = text.substr(0, kMaxReportBytes) + "\n[... cut]";
    out += "---- sanitizer report " + file + " ----\n" + text + "\n";
  }
  return out;
}

// The report directory is world-writable (sticky, as /tmp): a worker that dropped its
// privileges opens its report file only when it has something to report.
Sluiced::Sluiced(TempDir& dir, const std::string& yaml, std::string error_log)
    : dir_(dir.path()),
      config_path_(dir.file("sluice.yaml")),
      error_log_(error_log.empty() ? dir.file("error.log") : std::move(error_log)),
      report_dir_(dir.file("sanitizer")) {
  if ((mkdir(report_dir_.c_str(), 0700) != 0 && errno != EEXIST) ||
      chmod(report_dir_.c_str(), 01777) != 0) {
    throw std::runtime_error("cannot create " + report_dir_ + ": " + std::strerror(errno));
  }
  write_config(yaml);
}

Sluiced::~Sluiced() {
  if (kSanitized) stop_for_teardown();
  if (pid_ > 0) {
    detail::kill_group_and_reap(pgid_, pid_);
  } else if (pgid_ > 0) {
    detail::kill_group_and_reap(pgid_, -1);  // orphaned workers, if any
  }
  check_sanitizer_reports();
}

// SIGCONT too, for a test that left sluiced (or a worker) stopped. Never throws.
void Sluiced::stop_for_teardown() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  kill(-pgid_, SIGCONT);  // the unreaped leader keeps the pgid ours
  int status = 0;
  if (detail::wait_pid(pid_, &status, kGracefulTeardown)) {
    exit_status_ = status;
    pid_ = -1;
  }
}

void Sluiced::check_sanitizer_reports() const {
  std::string reports =
      sanitizer_reports({{error_log_, log()}, {dir_ + "/sluiced.out.log", out_log()}}, report_dir_);
  if (!reports.empty()) report_failure("sanitizer report from sluiced in " + dir_, reports);
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
  // One file per process (the sanitizers add .<pid>), so a forked worker's report is whole.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"})
    add_log_path(options.env, name, report_dir_ + "/report");
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
  CommandResult result = run_command(argv, {}, timeout);
  std::string reports = sanitizer_reports({{"the output of sluiced", result.output}});
  std::string command = "sluiced";
  for (const std::string& a : args)
    command += " " + a;
  if (!reports.empty()) report_failure("sanitizer report from `" + command + "`", reports);
  return result;
}

}  // namespace sluice::test
