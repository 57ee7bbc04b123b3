#pragma once
// One worker's stderr, captured by the supervisor. At each fork the supervisor makes a pipe
// and the worker's fd 2 becomes its write end, so what the worker or a library inside it
// prints straight to fd 2 (libevhtp's "[ERROR] evhtp.c:3061 ODDITY ..." with colour escapes,
// jemalloc's statistics, libevent's warnings) never reaches a terminal or the supervisor's
// stderr raw. The supervisor reads the pipe on its loop and logs every line through common/log
// as "worker <pid> stderr: <line>": control bytes escaped, long lines cut, and at most
// kMaxLinesPerSecond lines a second (the rest counted and reported as dropped). The read end
// belongs to the supervisor, which outlives the worker: what a dying worker wrote last is
// still in the pipe after it is reaped, and is logged before the read end closes at EOF.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/handles/fd_event.h"
#include "common/handles/timer.h"
#include "common/log_throttle.h"

namespace sluice::daemon {

// `raw` (one line, without its newline) made safe for a log line: ANSI CSI sequences (ESC [
// parameters, final byte: colours, cursor moves) are removed, and the rest is escaped as
// common/log escapes every message (control bytes, ill-formed UTF-8). Valid UTF-8 is kept.
std::string sanitize_line(std::string_view raw);

class WorkerOutput {
 public:
  // common/log formats a message into 2 KiB: a longer line is cut here, with room left for
  // "worker <pid> stderr: " and the cut marker.
  static constexpr size_t kMaxLineBytes = 1900;
  static constexpr unsigned kMaxLinesPerSecond = 100;

  explicit WorkerOutput(event_base* base)
      : base_(base), lines_(std::chrono::seconds(1), kMaxLinesPerSecond) {}
  WorkerOutput(const WorkerOutput&) = delete;
  WorkerOutput& operator=(const WorkerOutput&) = delete;
  ~WorkerOutput() = default;

  // Supervisor, before fork(): makes the pipe. False (errno set) on failure.
  bool open();
  // In the new worker: fd 2 becomes the write end; both original pipe fds are closed. False
  // (errno set) if dup2() failed.
  bool attach_as_stderr();
  // In a new worker, for every other worker's pipe: closes the read end without touching its
  // event, which lives on the supervisor's loop.
  void forget_in_child();
  // Supervisor, after fork(): closes the write end and starts reading for worker `pid`.
  void start(pid_t pid);
  // Reads what the pipe still holds, without waiting, and closes it (supervisor exit).
  void drain();
  // EOF seen (or never opened): nothing more will come, the object can go.
  bool closed() const { return !read_.valid(); }

 private:
  // false once nothing more can be read now (EAGAIN) or ever (EOF, error).
  bool read_some();
  void consume(std::string_view data);
  void end_line();
  void emit(std::string_view line, bool cut);
  bool admit();
  void report_dropped();
  void finish();

  void readable();

  event_base* base_;
  pid_t pid_ = 0;
  common::UniqueFd read_;
  common::UniqueFd write_;
  // Both made by start(), on the supervisor's side of the fork only.
  std::optional<common::FdEvent> read_event_;
  std::optional<common::Timer> window_timer_;  // reports a window's dropped lines at its end
  std::string partial_;                        // a line without its newline yet
  bool cut_ = false;           // partial_ reached kMaxLineBytes; the rest is skipped
  common::LogThrottle lines_;  // kMaxLinesPerSecond; the lines it refuses are the dropped
};

}  // namespace sluice::daemon
