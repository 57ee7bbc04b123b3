#include "daemon/signals.h"

namespace sluice::daemon {

namespace {

sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : kSupervisorSignals)
    sigaddset(&set, signo);
  return set;
}

}  // namespace

void block_supervisor_signals() {
  sigset_t set = supervisor_signals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

void unblock_supervisor_signals() {
  sigset_t set = supervisor_signals();
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

sigset_t block_all_signals() {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  return old;
}

void restore_signal_mask(const sigset_t& mask) {
  sigprocmask(SIG_SETMASK, &mask, nullptr);
}

void reset_signals_for_worker() {
  for (int signo : kSupervisorSignals)
    signal(signo, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
}

void ignore_sigpipe() {
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace sluice::daemon
