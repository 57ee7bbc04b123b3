#pragma once
// The supervisor: one event loop that only manages processes. It forks one worker per
// listening port, reaps them, respawns crashed ones with backoff (never one that exited
// with 2), reloads on SIGHUP without closing a socket that stays, reopens logs on SIGUSR1,
// and stops gracefully on SIGTERM/SIGINT or at once on SIGQUIT. Each worker's stderr is a
// pipe the supervisor reads into the error log (worker_output.h). It never talks to Redis,
// RabbitMQ or HTTP clients, so none of them can take it down.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/config.h"
#include "common/handles/event.h"
#include "common/stats_segment.h"
#include "daemon/listeners.h"
#include "daemon/pidfile.h"
#include "daemon/privileges.h"
#include "daemon/worker_output.h"

namespace sluice::daemon {

// Config file checks shared by startup, -t and reload: the core sections and each module's.
common::ConfigLoad load_and_check(const std::string& path);

class Supervisor {
 public:
  Supervisor(std::shared_ptr<const common::Config> config, Listeners listeners, Pidfile pidfile,
             Credentials credentials);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  ~Supervisor();

  // Runs until stopped; returns the process exit code. `on_ready` runs once the stats
  // segment exists and just before the first workers are forked.
  int run(const std::function<void()>& on_ready);

  // A crashed worker that stayed up this long starts its backoff from the beginning.
  static constexpr std::chrono::seconds kStableUptime{10};
  static constexpr std::chrono::milliseconds kFirstRespawnDelay{100};
  static constexpr std::chrono::milliseconds kMaxRespawnDelay{10000};
  static constexpr std::chrono::milliseconds kQuitGrace{1000};
  static constexpr std::chrono::milliseconds kKillMargin{1000};

 private:
  struct Child;
  enum class ChildState { running, retiring, waiting };
  // What belongs to a port rather than to one of its workers, kept while the port stays in
  // the config, reloads included: /stats/fleet shows how often the port's worker had to be
  // respawned, and a reload must neither make a crash-looping port look fresh nor restart
  // its backoff at the first delay.
  struct PortHistory {
    unsigned respawns = 0;
    common::Backoff backoff{kFirstRespawnDelay, kMaxRespawnDelay};
  };

  void spawn(Child& child);
  [[noreturn]] void become_worker(Child& child, const sigset_t& mask, WorkerOutput& output);
  void reap();
  void handle_exit(pid_t pid, int status);
  void schedule_respawn(Child& child);
  void retire(Child& child, int signo, std::chrono::milliseconds grace);
  void remove_child(Child& child);
  void close_unused_listeners();
  bool key_in_use(const ListenerKey& key) const;
  void reload();
  void stop(int signo);
  void reopen_logs();
  void maybe_finish();
  std::chrono::milliseconds kill_deadline(const Child& child) const;
  void on_signal(int signo);
  std::unique_ptr<Child> make_child(std::shared_ptr<const common::Config> config, size_t index);
  void forget_removed_ports();

  static void on_signal_event(evutil_socket_t fd, short, void* arg);
  static void on_child_timer(evutil_socket_t, short, void* arg);

  common::EventBasePtr base_;
  std::shared_ptr<const common::Config> config_;
  Listeners listeners_;
  Pidfile pidfile_;
  Credentials credentials_;
  common::StatsSegment stats_;
  std::vector<std::unique_ptr<Child>> children_;
  std::map<ListenerKey, PortHistory> history_;
  // One per worker process, kept until its pipe reaches EOF, which may come after the reap.
  std::vector<std::unique_ptr<WorkerOutput>> outputs_;
  std::vector<common::EventPtr> signal_events_;
  pid_t pid_ = 0;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace sluice::daemon
