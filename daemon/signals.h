#pragma once
// Signal plumbing around fork(). The supervisor handles signals as libevent events; these
// helpers keep a signal from landing in a half-made worker (STYLE.md, pitfall 1).
#include <signal.h>

namespace sluice::daemon {

// The signals the supervisor turns into events.
constexpr int kSupervisorSignals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};

// From startup until the supervisor's signal events exist: the listening sockets accept
// connections (so a test or an init system sees sluiced "up") before run() installs its
// events, and a SIGHUP, SIGUSR1 or SIGTERM in that window would take the default action and
// kill the supervisor. Blocked, they stay pending and arrive as events once unblocked.
void block_supervisor_signals();
void unblock_supervisor_signals();

// Blocks every signal and returns the previous mask (held across fork()).
sigset_t block_all_signals();
void restore_signal_mask(const sigset_t& mask);
// In a new worker, before its own events exist: default dispositions for the supervisor's
// signals; SIGPIPE ignored (a write to a gone client must not kill the worker); SIGINT and
// SIGHUP ignored (a terminal's Ctrl-C reaches the whole process group, and reload is the
// supervisor's job: it replaces workers rather than signalling them).
void reset_signals_for_worker();
// nginx and Redis do the same: a client that went away is an error value, not a death.
void ignore_sigpipe();

}  // namespace sluice::daemon
