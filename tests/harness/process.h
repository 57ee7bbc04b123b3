#pragma once
// Internal to the harness: fork/exec of children into their own process groups, and the
// watchdog that kills those groups when the test binary goes away.
//
// The watchdog is one process per test binary, forked on first use. It holds the read end of a
// pipe whose only write end is in the test binary (O_CLOEXEC). The harness tells it which
// process groups are alive; when the pipe reaches EOF -- the test binary exited, crashed or was
// SIGKILLed -- it SIGKILLs every group still registered and exits. An atexit handler in the test
// binary does the same synchronously on a normal exit, so nothing is left even for a moment.
// The test binary also becomes a child subreaper (PR_SET_CHILD_SUBREAPER): grandchildren
// orphaned by a killed group are reparented to it and reaped in kill_group_and_reap() and at
// exit, instead of becoming zombies under an init that may not reap them.
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::test::detail {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is searched in PATH when it has no '/'
  std::vector<std::string> env;   // "NAME=value" entries overriding the inherited environment
  std::string output;             // stdout+stderr appended here; "" = /dev/null
  int output_fd = -1;             // or this descriptor (wins over `output`)
  std::string cwd;                // working directory; "" = inherited
  bool death_signal = true;       // PR_SET_PDEATHSIG=SIGKILL in the child
};

// Forks and execs into a new process group (pgid == returned pid) with default signal
// dispositions, an empty signal mask, stdin from /dev/null and every other descriptor closed.
// PR_SET_PDEATHSIG fires when the *thread* that forked exits, so spawn from the main thread (or
// from one that outlives the child).
// The group is registered with the watchdog. Throws std::runtime_error if fork fails; an exec
// failure shows up as exit code 127 with a message in the output.
pid_t spawn(const SpawnOptions& options);

// SIGKILLs the group, then reaps `pid` (blocking), unregisters the group and reaps orphaned
// zombies. For a child whose exit was already reaped, pass pid = -1: then only the group's
// members that were reparented to this process are killed, one by one. (pid_max is 32768 on
// the test machines: once its leader is reaped and the group is empty, a pgid can belong to
// another test's processes within seconds, so it must never be signalled as a group again.)
void kill_group_and_reap(pid_t pgid, pid_t pid);

// One line of /proc/<pid>/stat.
struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';
};
// Every process visible in /proc.
std::vector<ProcStat> list_processes();

// waitpid with a deadline (polls). Returns true and sets *status when `pid` was reaped.
bool wait_pid(pid_t pid, int* status, std::chrono::milliseconds timeout);

std::string format_status(int status);  // "exit code 2", "killed by signal 9"

}  // namespace sluice::test::detail
