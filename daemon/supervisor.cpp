#include "daemon/supervisor.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/guard.h"
#include "common/handles/timer.h"
#include "common/leak_check.h"
#include "common/log.h"
#include "daemon/signals.h"
#include "worker/worker_main.h"

namespace sluice::daemon {
namespace {

constexpr const char* kModule = "supervisor";
using Clock = std::chrono::steady_clock;

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string s = "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                    strsignal(WTERMSIG(status)) + ")";
    if (WCOREDUMP(status)) s += ", core dumped";
    return s;
  }
  return "changed state " + std::to_string(status);
}

}  // namespace

struct Supervisor::Child {
  Supervisor* owner = nullptr;
  std::shared_ptr<const common::Config> config;
  size_t listener_index = 0;
  ListenerKey key;
  ChildState state = ChildState::waiting;
  pid_t pid = 0;
  int slot = -1;
  Clock::time_point started;
  // Respawn delay while waiting, SIGKILL deadline while retiring. Made by make_child.
  std::optional<common::Timer> timer;
};

// One pass reads the core sections and every module's, so a reload or -t reports the
// problems of both together, each at its own position.
common::ConfigLoad load_and_check(const std::string& path) {
  return worker::load_config_with_modules(path);
}

Supervisor::Supervisor(std::shared_ptr<const common::Config> config, Listeners listeners,
                       Pidfile pidfile, Credentials credentials)
    : base_(event_base_new()),
      config_(std::move(config)),
      listeners_(std::move(listeners)),
      pidfile_(std::move(pidfile)),
      credentials_(std::move(credentials)) {}

Supervisor::~Supervisor() = default;

int Supervisor::run(const std::function<void()>& on_ready) {
  pid_ = getpid();
  ignore_sigpipe();
  if (!base_) {
    SLOG_ERROR(kModule, "event_base_new() failed");
    return 1;
  }
  if (!stats_.create()) {
    SLOG_SYSERR(kModule, errno, "mmap() of the stats segment failed");
    return 1;
  }
  for (int signo : kSupervisorSignals) {
    common::EventPtr ev(evsignal_new(base_.get(), signo, on_signal_event, this));
    evsignal_add(ev.get(), nullptr);
    signal_events_.push_back(std::move(ev));
  }
  unblock_supervisor_signals();  // what came since startup is delivered now, as events
  on_ready();
  SLOG_INFO(kModule, "sluiced %s started (pid %d), %zu listeners", SLUICE_VERSION,
            static_cast<int>(pid_), config_->listeners.size());
  for (size_t i = 0; i < config_->listeners.size(); ++i) {
    children_.push_back(make_child(config_, i));
    spawn(*children_.back());
  }
  event_base_dispatch(base_.get());
  // Every worker is reaped: what they wrote last may still wait in their pipes.
  for (auto& output : outputs_)
    output->drain();
  pidfile_.remove();
  SLOG_INFO(kModule, "stopped");
  return exit_code_;
}

std::unique_ptr<Supervisor::Child> Supervisor::make_child(
    std::shared_ptr<const common::Config> config, size_t index) {
  auto child = std::make_unique<Child>();
  child->owner = this;
  child->listener_index = index;
  const common::ListenConfig& l = config->listeners[index];
  child->key = {l.address, l.port};
  child->config = std::move(config);
  child->timer.emplace(
      base_.get(), "worker timer",
      common::Callback([](void* c) { on_child_timer(-1, EV_TIMEOUT, c); }, child.get()));
  return child;
}

void Supervisor::spawn(Child& child) {
  int fd = listeners_.fd(child.key);
  if (fd < 0) {
    SLOG_ERROR(kModule, "no listening socket for %s", describe(child.key).c_str());
    return;
  }
  outputs_.erase(
      std::remove_if(outputs_.begin(), outputs_.end(), [](const auto& o) { return o->closed(); }),
      outputs_.end());
  auto output = std::make_unique<WorkerOutput>(base_.get());
  if (!output->open()) {
    SLOG_SYSERR(kModule, errno, "pipe2() for the stderr of a worker on %s failed",
                describe(child.key).c_str());
    schedule_respawn(child);
    return;
  }
  child.slot = stats_.claim(child.key.second, history_[child.key].respawns);
  if (child.slot < 0) {
    SLOG_ERROR(kModule, "no free stats slot for a worker on %s", describe(child.key).c_str());
    schedule_respawn(child);
    return;
  }
  sigset_t mask = block_all_signals();
  pid_t pid = fork();
  if (pid == 0) become_worker(child, mask, *output);
  int err = errno;
  restore_signal_mask(mask);
  if (pid < 0) {
    SLOG_SYSERR(kModule, err, "fork() for %s failed", describe(child.key).c_str());
    stats_.release(child.slot);
    child.slot = -1;
    schedule_respawn(child);
    return;
  }
  output->start(pid);
  outputs_.push_back(std::move(output));
  child.pid = pid;
  child.state = ChildState::running;
  child.started = Clock::now();
  SLOG_INFO(kModule, "worker %d started for %s", static_cast<int>(pid),
            describe(child.key).c_str());
}

// In the new process. libevent's epoll fd and signal pipe are shared with the parent
// until event_reinit(); freeing the base before that would delete the parent's events.
void Supervisor::become_worker(Child& child, const sigset_t& mask, WorkerOutput& output) {
  event_reinit(base_.get());
  event_base_free(base_.release());
  // First, so that nothing this process prints goes to the supervisor's stderr. The read
  // ends of the other workers' pipes go too (STYLE.md, pitfall 2): holding one would keep
  // that worker's EOF from ever reaching the supervisor.
  for (auto& other : outputs_)
    other->forget_in_child();
  if (!output.attach_as_stderr()) {
    SLOG_SYSERR("worker", errno, "dup2() of the stderr pipe failed");
    _exit(1);
  }
  int fd = listeners_.fd(child.key);
  listeners_.close_all_except(fd);
  ::close(pidfile_.fd());
  reset_signals_for_worker();

  if (auto dropped = drop_privileges(credentials_); !dropped) {
    SLOG_ERROR("worker", "%s", dropped.error().message.c_str());
    _exit(2);
  }
  // Set after setuid(), which clears it: a worker whose supervisor died stops gracefully
  // rather than serving unsupervised.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != pid_) _exit(0);
  const std::string& dir = child.config->daemon.working_directory;
  if (!dir.empty() && chdir(dir.c_str()) != 0) {
    SLOG_SYSERR("worker", errno, "chdir(\"%s\") failed", dir.c_str());
    _exit(2);  // fatal: the supervisor does not respawn it
  }
  worker::WorkerLaunch launch;
  launch.config = child.config;
  launch.listener_index = child.listener_index;
  launch.listen_fd = fd;
  launch.stats = &stats_;
  launch.slot = child.slot;
  launch.signal_mask = mask;
  _exit(common::leak_checked(worker::worker_main(launch)));  // LSan in test-asan
}

void Supervisor::on_signal_event(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  common::guard("signal", [&] { self->on_signal(static_cast<int>(fd)); });
}

void Supervisor::on_signal(int signo) {
  switch (signo) {
    case SIGCHLD:
      reap();
      break;
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
      stop(signo);
      break;
    case SIGHUP:
      if (!stopping_) reload();
      break;
    case SIGUSR1:
      reopen_logs();
      break;
    default:
      break;
  }
}

// SIGCHLDs merge: collect every exited child in one go.
void Supervisor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) break;
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    handle_exit(pid, status);
  }
  maybe_finish();
}

void Supervisor::handle_exit(pid_t pid, int status) {
  auto it = std::find_if(children_.begin(), children_.end(),
                         [&](const auto& c) { return c->pid == pid; });
  if (it == children_.end()) return;
  Child& child = **it;
  stats_.release(child.slot);
  child.slot = -1;
  child.pid = 0;
  bool expected = child.state == ChildState::retiring || stopping_;
  common::log::Level level = expected ? common::log::Level::info : common::log::Level::error;
  common::log::write(level, kModule, "worker %d for %s %s", static_cast<int>(pid),
                     describe(child.key).c_str(), describe_status(status).c_str());
  if (expected) {
    remove_child(child);
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
    SLOG_ERROR(kModule, "worker for %s had a fatal error (exit code 2): not respawning it",
               describe(child.key).c_str());
    ListenerKey key = child.key;
    remove_child(child);
    if (!key_in_use(key)) {
      // Refuse rather than queue connections nobody will accept; a reload binds it again.
      listeners_.close(key);
      SLOG_ERROR(kModule, "closed %s until the next reload", describe(key).c_str());
    }
    return;
  }
  PortHistory& history = history_[child.key];
  if (Clock::now() - child.started >= kStableUptime) history.backoff.reset();
  ++history.respawns;
  schedule_respawn(child);
}

void Supervisor::schedule_respawn(Child& child) {
  child.state = ChildState::waiting;
  auto delay = history_[child.key].backoff.next();
  SLOG_INFO(kModule, "respawning the worker for %s in %lld ms", describe(child.key).c_str(),
            static_cast<long long>(delay.count()));
  child.timer->start(delay);
}

void Supervisor::on_child_timer(evutil_socket_t, short, void* arg) {
  Child& child = *static_cast<Child*>(arg);
  Supervisor& self = *child.owner;
  if (child.state == ChildState::waiting) {
    self.spawn(child);
  } else if (child.state == ChildState::retiring && child.pid > 0) {
    SLOG_WARN(kModule, "worker %d for %s still running after its grace period: sending SIGKILL",
              static_cast<int>(child.pid), describe(child.key).c_str());
    kill(child.pid, SIGKILL);
  }
}

// Running: ask it to stop and arm the SIGKILL deadline. Waiting for a respawn: just drop it.
void Supervisor::retire(Child& child, int signo, std::chrono::milliseconds grace) {
  if (child.state != ChildState::running) {
    if (child.state == ChildState::waiting) remove_child(child);
    return;
  }
  child.state = ChildState::retiring;
  kill(child.pid, signo);
  child.timer->start(grace);
}

void Supervisor::remove_child(Child& child) {
  auto it = std::find_if(children_.begin(), children_.end(),
                         [&](const auto& c) { return c.get() == &child; });
  if (it != children_.end()) children_.erase(it);
}

bool Supervisor::key_in_use(const ListenerKey& key) const {
  return std::any_of(children_.begin(), children_.end(), [&](const auto& c) {
    return c->key == key && c->state != ChildState::retiring;
  });
}

void Supervisor::close_unused_listeners() {
  std::vector<ListenerKey> unused;
  for (const auto& [key, fd] : listeners_.all()) {
    if (!key_in_use(key)) unused.push_back(key);
  }
  for (const auto& key : unused) {
    listeners_.close(key);
    SLOG_INFO(kModule, "closed %s", describe(key).c_str());
  }
}

// nginx's rule: a new config that fails leaves the running one untouched.
void Supervisor::reload() {
  SLOG_INFO(kModule, "reloading %s", config_->path.c_str());
  common::ConfigLoad load = load_and_check(config_->path);
  if (!load.ok()) {
    for (const auto& p : load.problems)
      SLOG_ERROR(kModule, "%s", p.to_string().c_str());
    SLOG_ERROR(kModule, "reload aborted: keeping the running configuration");
    return;
  }
  auto credentials = resolve_credentials(load.config->daemon);
  if (!credentials) {
    SLOG_ERROR(kModule, "%s: %s; reload aborted", credentials.error().short_code.c_str(),
               credentials.error().message.c_str());
    return;
  }
  std::vector<ListenerKey> opened;
  for (const auto& l : load.config->listeners) {
    ListenerKey key{l.address, l.port};
    if (listeners_.contains(key)) continue;
    if (auto fd = listeners_.open(key); !fd) {
      SLOG_ERROR(kModule, "%s; reload aborted", fd.error().message.c_str());
      for (const auto& k : opened)
        listeners_.close(k);
      return;
    }
    opened.push_back(key);
  }
  const common::DaemonConfig& d = load.config->daemon;
  if (d.error_log != config_->daemon.error_log || d.log_level != config_->daemon.log_level) {
    std::string error;
    if (!common::log::open(d.error_log, d.log_level, error))
      SLOG_ERROR(kModule, "%s", error.c_str());
    if (credentials->change) common::log::chown_file(credentials->uid, credentials->gid);
  }
  // New workers first, then retire the old ones: a port in both configs always has a worker
  // accepting on the socket it never stopped listening on.
  std::vector<Child*> old;
  for (auto& c : children_)
    old.push_back(c.get());
  config_ = load.config;
  credentials_ = *credentials;
  for (size_t i = 0; i < config_->listeners.size(); ++i) {
    children_.push_back(make_child(config_, i));
    spawn(*children_.back());
  }
  for (Child* c : old)
    retire(*c, SIGTERM, c->config->daemon.shutdown_timeout);
  close_unused_listeners();
  forget_removed_ports();
  SLOG_INFO(kModule, "reloaded: %zu listeners", config_->listeners.size());
}

// A port that left the config starts from nothing if a later reload brings it back.
void Supervisor::forget_removed_ports() {
  for (auto it = history_.begin(); it != history_.end();) {
    bool kept =
        std::any_of(config_->listeners.begin(), config_->listeners.end(), [&](const auto& l) {
          return ListenerKey{l.address, l.port} == it->first;
        });
    it = kept ? std::next(it) : history_.erase(it);
  }
}

void Supervisor::stop(int signo) {
  bool immediate = signo == SIGQUIT;
  if (stopping_ && !immediate) return;
  stopping_ = true;
  SLOG_INFO(kModule, "%s: stopping %zu workers", immediate ? "quit" : "graceful stop",
            children_.size());
  std::vector<Child*> all;
  for (auto& c : children_)
    all.push_back(c.get());
  for (Child* c : all) {
    if (immediate && c->state == ChildState::retiring) {
      // Already draining: hurry it, and do not wait out the rest of its graceful deadline.
      kill(c->pid, SIGQUIT);
      c->timer->start(kQuitGrace);
      continue;
    }
    if (immediate) {
      retire(*c, SIGQUIT, kQuitGrace);
    } else {
      retire(*c, SIGTERM, kill_deadline(*c));
    }
  }
  // Nothing may queue on a socket nobody will accept from again: refuse at once, so an
  // upstream pool moves on instead of waiting.
  std::vector<ListenerKey> keys;
  for (const auto& [key, fd] : listeners_.all())
    keys.push_back(key);
  for (const auto& key : keys)
    listeners_.close(key);
  maybe_finish();
}

// The worker stops itself at shutdown_timeout; SIGKILL only if it has not a moment later.
std::chrono::milliseconds Supervisor::kill_deadline(const Child& child) const {
  return child.config->daemon.shutdown_timeout + kKillMargin;
}

void Supervisor::maybe_finish() {
  if (stopping_ && children_.empty()) event_base_loopbreak(base_.get());
}

void Supervisor::reopen_logs() {
  std::string error;
  if (!common::log::reopen(error)) {
    SLOG_ERROR(kModule, "log reopen failed, still writing to the old file: %s", error.c_str());
  } else if (credentials_.change) {
    common::log::chown_file(credentials_.uid, credentials_.gid);
  }
  SLOG_INFO(kModule, "log reopened");
  for (auto& c : children_) {
    if (c->pid > 0) kill(c->pid, SIGUSR1);
  }
}

}  // namespace sluice::daemon
