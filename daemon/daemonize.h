#pragma once
// Detach from the terminal. The parent waits until the daemon reports it is ready (pidfile
// written, workers forked) and exits with the daemon's status, so an init script sees a
// failure instead of a 0 followed by silence.
namespace sluice::daemon {

// Returns in the daemon only. `ready_fd` receives the descriptor notify_ready() writes to.
bool daemonize(int& ready_fd, bool keep_stderr);
void notify_ready(int& ready_fd, int status);

}  // namespace sluice::daemon
