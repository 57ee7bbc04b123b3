// fork/exec into private process groups, the watchdog that outlives a crashed test binary, and
// one-shot commands with captured output.
#include "tests/harness/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/fd.h"
#include "tests/harness/harness.h"

extern char** environ;

namespace sluice::test {
namespace detail {
namespace {

using common::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr int kMaxWatchedGroups = 1024;

// The watchdog child: only async-signal-safe calls, no allocation (the parent may have threads).
[[noreturn]] void watchdog_main(int channel) {
  setpgid(0, 0);  // leave the terminal's foreground group: Ctrl-C must not kill us first
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM}) {
    sigaction(sig, &ignore, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (channel != 0) dup2(channel, 0);
  close_range(1, ~0U, 0);  // stdout/stderr too: a ctest pipe must not wait for us

  pid_t groups[kMaxWatchedGroups];
  int count = 0;
  for (;;) {
    int32_t msg = 0;
    ssize_t n = recv(0, &msg, sizeof msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof msg)) break;  // EOF: the test binary is gone
    if (msg > 0 && count < kMaxWatchedGroups) {
      groups[count++] = msg;
    } else if (msg < 0) {
      for (int i = 0; i < count; ++i) {
        if (groups[i] == -msg) {
          groups[i] = groups[--count];
          break;
        }
      }
    }
  }
  for (int i = 0; i < count; ++i)
    kill(-groups[i], SIGKILL);
  _exit(0);
}

// Children of this process that are zombies.
std::vector<pid_t> zombie_children() {
  std::vector<pid_t> out;
  pid_t self = getpid();
  for (const ProcStat& p : list_processes()) {
    if (p.ppid == self && p.state == 'Z') out.push_back(p.pid);
  }
  return out;
}

// Owns the channel to the watchdog and the list of live process groups. It also makes this
// process a child subreaper, so grandchildren orphaned by a killed group (the beam's
// erl_child_setup and inet_gethost, workers of a killed supervisor) are reparented to us and
// reaped here instead of piling up as zombies under an init that may never reap them.
class Watchdog {
 public:
  static Watchdog& instance() {
    static Watchdog* w = new Watchdog;  // never destroyed: used from atexit
    return *w;
  }

  void add(pid_t pgid) {
    std::lock_guard<std::mutex> lock(mu_);
    ensure_started();
    groups_.insert(pgid);
    send(static_cast<int32_t>(pgid));
  }

  void remove(pid_t pgid) {
    std::lock_guard<std::mutex> lock(mu_);
    if (groups_.erase(pgid) == 0) return;
    send(-static_cast<int32_t>(pgid));
  }

  // Reaps zombie children that nobody waits for: the pid of a registered group is a direct
  // child whose owner reaps it, and the watchdog is ours.
  void reap_orphans() {
    std::lock_guard<std::mutex> lock(mu_);
    for (pid_t pid : zombie_children()) {
      if (groups_.count(pid) || pid == watchdog_pid_) continue;
      int status;
      waitpid(pid, &status, WNOHANG);
    }
  }

  // atexit: kill what is still registered now (the watchdog would do it a moment later), let
  // the watchdog go, and reap every child so no zombie is handed to init.
  static void on_exit() {
    Watchdog& w = instance();
    std::lock_guard<std::mutex> lock(w.mu_);
    for (pid_t g : w.groups_)
      kill(-g, SIGKILL);
    w.channel_.reset();  // EOF for the watchdog
    auto deadline = Clock::now() + 2s;
    int status;
    while (waitpid(-1, &status, WNOHANG) >= 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
  }

 private:
  void ensure_started() {
    if (channel_.valid() || started_) return;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::runtime_error(std::string("socketpair() failed: ") + std::strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
      throw std::runtime_error(std::string("fork() failed: ") + std::strerror(errno));
    }
    if (pid == 0) watchdog_main(fds[0]);
    close(fds[0]);
    channel_.reset(fds[1]);
    watchdog_pid_ = pid;
    started_ = true;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::atexit(&Watchdog::on_exit);
  }

  void send(int32_t msg) {
    if (!channel_.valid()) return;
    ssize_t n;
    do {
      n = ::send(channel_.get(), &msg, sizeof msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
  }

  std::mutex mu_;
  UniqueFd channel_;
  pid_t watchdog_pid_ = -1;
  bool started_ = false;
  std::set<pid_t> groups_;
};

std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;  // execve fails with ENOENT and the child reports it
}

std::vector<std::string> merged_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& o : overrides) {
      if (o.compare(0, name.size() + 1, name + "=") == 0) overridden = true;
    }
    if (!overridden) env.push_back(std::move(entry));
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// After fork: async-signal-safe calls only.
[[noreturn]] void exec_child(pid_t parent, const SpawnOptions& options, const char* path,
                             char* const* argv, char* const* envp, int null_fd, int out_fd) {
  setpgid(0, 0);
  if (options.death_signal) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    sigaction(sig, &dfl, nullptr);  // EINVAL for SIGKILL, SIGSTOP and glibc's own: ignored
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  dup2(null_fd, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  close_range(3, ~0U, 0);
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) {
    static const char msg[] = "harness: chdir() failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  execve(path, argv, envp);
  static const char msg[] = "harness: execve() failed: ";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, path, std::strlen(path));
  const char* err = std::strerror(errno);  // not strictly async-signal-safe; we are exiting
  (void)!write(2, " ", 1);
  (void)!write(2, err, std::strlen(err));
  (void)!write(2, "\n", 1);
  _exit(127);
}

}  // namespace

pid_t spawn(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::invalid_argument("spawn: empty argv");
  std::string path = resolve_executable(options.argv[0]);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = merged_environment(options.env);
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<char*> envp = c_strings(env_strings);

  UniqueFd null_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  UniqueFd out_fd;
  int out = options.output_fd;
  if (out < 0) {
    const std::string& file = options.output.empty() ? std::string("/dev/null") : options.output;
    out_fd.reset(open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!out_fd.valid()) {
      throw std::runtime_error("open(" + file + ") failed: " + std::strerror(errno));
    }
    out = out_fd.get();
  }
  if (!null_fd.valid()) {
    throw std::runtime_error(std::string("open(/dev/null) failed: ") + std::strerror(errno));
  }

  Watchdog::instance();  // construct before fork, outside the child
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork() failed: ") + std::strerror(errno));
  if (pid == 0) {
    exec_child(parent, options, path.c_str(), argv.data(), envp.data(), null_fd.get(), out);
  }
  setpgid(pid, pid);  // also done by the child; whichever runs first wins the race
  Watchdog::instance().add(pid);
  return pid;
}

std::vector<ProcStat> list_processes() {
  std::vector<ProcStat> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;
    char buf[512];
    ssize_t n = read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    buf[n] = '\0';
    const char* paren = std::strrchr(buf, ')');  // comm may hold spaces and parentheses
    if (!paren || std::strlen(paren) < 4) continue;
    ProcStat p;
    p.pid = static_cast<pid_t>(pid);
    p.state = paren[2];
    char* next = nullptr;
    p.ppid = static_cast<pid_t>(std::strtol(paren + 4, &next, 10));
    p.pgid = static_cast<pid_t>(std::strtol(next, nullptr, 10));
    out.push_back(p);
  }
  closedir(proc);
  return out;
}

void kill_group_and_reap(pid_t pgid, pid_t pid) {
  if (pgid > 0 && pid > 0) {
    kill(-pgid, SIGKILL);  // the unreaped leader keeps the pgid ours
  } else if (pgid > 0) {
    pid_t self = getpid();
    for (const ProcStat& p : list_processes()) {
      if (p.pgid == pgid && p.ppid == self) kill(p.pid, SIGKILL);
    }
  }
  if (pid > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (pgid > 0) Watchdog::instance().remove(pgid);
  Watchdog::instance().reap_orphans();
}

bool wait_pid(pid_t pid, int* status, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) return true;  // not our child (any more): nothing to wait for
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

std::string format_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) +
           (WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return "wait status " + std::to_string(status);
}

}  // namespace detail

CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  CommandResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe2() failed: ") + std::strerror(errno);
    return result;
  }
  common::UniqueFd read_end(fds[0]);
  common::UniqueFd write_end(fds[1]);

  detail::SpawnOptions options;
  options.argv = argv;
  options.env = env;
  options.output_fd = write_end.get();
  pid_t pid;
  try {
    pid = detail::spawn(options);
  } catch (const std::exception& e) {
    result.output = e.what();
    return result;
  }
  write_end.reset();

  auto deadline = Clock::now() + timeout;
  bool exited = false;
  int status = 0;
  std::optional<Clock::time_point> drain_until;
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline) break;
    if (!exited && detail::wait_pid(pid, &status, 0ms)) {
      exited = true;
      drain_until = now + 500ms;  // a grandchild may hold the pipe open: read what is there
    }
    if (drain_until && now >= *drain_until) break;
    pollfd p{read_end.get(), POLLIN, 0};
    int r = poll(&p, 1, 20);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      char buf[4096];
      ssize_t n = read(read_end.get(), buf, sizeof buf);
      if (n > 0) {
        result.output.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        // EOF: every writer is gone; wait for the exit status.
        if (!exited) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
          exited = detail::wait_pid(pid, &status, std::max(left, 0ms));
        }
        break;
      }
    }
  }
  // Sweep the group (stragglers, or the whole command on timeout) and reap.
  detail::kill_group_and_reap(pid, exited ? -1 : pid);
  if (!exited) {
    result.exit_code = -1;
    result.output += "\n[harness: timed out after " + std::to_string(timeout.count()) + " ms]\n";
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace sluice::test
