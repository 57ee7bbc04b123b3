#include "daemon/worker_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"

namespace sluice::daemon {
namespace {

constexpr const char* kModule = "worker";
constexpr size_t kReadSize = 16384;
// Reads per wakeup: a worker that writes without pause cannot keep the loop from signals.
constexpr int kReadsPerTurn = 4;
constexpr char kEsc = 0x1b;

bool csi_final_byte(unsigned char c) {
  return c >= 0x40 && c <= 0x7e;
}

// Length of the CSI sequence at `at` (ESC [ parameters... final), 0 if there is none.
size_t csi_length(std::string_view raw, size_t at) {
  if (raw[at] != kEsc || at + 1 >= raw.size() || raw[at + 1] != '[') return 0;
  for (size_t i = at + 2; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (csi_final_byte(c)) return i + 1 - at;
    if (c < 0x20 || c > 0x3f) return 0;  // not a parameter or intermediate byte
  }
  return 0;
}

}  // namespace

std::string sanitize_line(std::string_view raw) {
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);  // CRLF line ends
  std::string out;
  out.reserve(raw.size());
  size_t from = 0;  // start of the text since the last colour sequence
  for (size_t i = 0; i < raw.size(); ++i) {
    size_t skip = csi_length(raw, i);
    if (skip == 0) continue;
    common::log::append_escaped(out, raw.substr(from, i - from));
    i += skip - 1;
    from = i + 1;
  }
  common::log::append_escaped(out, raw.substr(from));
  return out;
}

// Both ends non-blocking. The read end because the supervisor's loop must never wait on a
// worker. The write end (the worker's fd 2) because a supervisor that stops reading (stopped,
// busy, or far behind a worker that spews) must not stall a worker's event loop inside a
// library's fprintf(stderr) once the pipe is full: losing diagnostic output is better than
// hanging client requests. A write of up to PIPE_BUF bytes is still atomic, so lines from
// stdio are not torn; only their surplus is lost, and that is bounded by the rate limit anyway.
bool WorkerOutput::open() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  read_.reset(fds[0]);
  write_.reset(fds[1]);
  return true;
}

// dup2() leaves fd 2 without O_CLOEXEC: were a worker ever to exec a helper, its stderr would
// still be captured. The originals are closed so the worker holds exactly one write end.
bool WorkerOutput::attach_as_stderr() {
  if (write_.get() == STDERR_FILENO) {
    write_.release();  // fd 2 was closed when the pipe was made: it already is the write end
  } else {
    if (dup2(write_.get(), STDERR_FILENO) < 0) return false;
    write_.reset();
  }
  read_.reset();
  return true;
}

void WorkerOutput::forget_in_child() {
  read_.reset();
}

void WorkerOutput::start(pid_t pid) {
  pid_ = pid;
  write_.reset();  // the worker holds the only write end: its exit means EOF here
  read_event_.emplace(base_, read_.get(), EV_READ | EV_PERSIST, "worker stderr",
                      common::Callback::bind<&WorkerOutput::readable>(this));
  window_timer_.emplace(base_, "worker stderr window",
                        common::Callback::bind<&WorkerOutput::report_dropped>(this));
  if (!read_event_->start()) {
    SLOG_SYSERR(kModule, errno,
                "event_add() for the stderr of worker %d failed: its output is lost",
                static_cast<int>(pid));
    read_event_.reset();
    window_timer_.reset();
    read_.reset();  // the worker's writes now fail with EPIPE (ignored) instead of piling up
  }
}

void WorkerOutput::drain() {
  while (read_.valid() && read_some()) {
  }
  if (read_.valid()) finish();
}

void WorkerOutput::readable() {
  for (int i = 0; i < kReadsPerTurn && read_some(); ++i) {
  }
}

bool WorkerOutput::read_some() {
  char buf[kReadSize];
  ssize_t n = ::read(read_.get(), buf, sizeof buf);
  if (n > 0) {
    consume(std::string_view(buf, static_cast<size_t>(n)));
    return true;
  }
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n < 0) {
    SLOG_SYSERR(kModule, errno, "read() of the stderr of worker %d failed", static_cast<int>(pid_));
  }
  finish();
  return false;
}

void WorkerOutput::consume(std::string_view data) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    std::string_view piece = data.substr(0, newline);
    size_t room = kMaxLineBytes - partial_.size();
    if (piece.size() > room) {
      cut_ = true;
      piece = piece.substr(0, room);
    }
    partial_.append(piece);
    if (newline == std::string_view::npos) return;
    end_line();
    data.remove_prefix(newline + 1);
  }
}

void WorkerOutput::end_line() {
  if (!partial_.empty()) emit(partial_, cut_);
  partial_.clear();
  cut_ = false;
}

void WorkerOutput::emit(std::string_view line, bool cut) {
  std::string text = sanitize_line(line);
  if (text.size() > kMaxLineBytes) {  // escapes made it longer
    text.resize(kMaxLineBytes);
    cut = true;
  }
  if (text.empty()) return;
  if (cut) text += " [cut]";
  // With an empty error_log the worker's own common/log lines come this way too: they are
  // already in the log format, named after the worker and bounded at the source ("never per
  // request"), so they are passed on as they are rather than wrapped and rate limited.
  std::string own = "[" + std::to_string(pid_) + "] ";
  if (text.compare(0, own.size(), own) == 0) {
    text.push_back('\n');
    ssize_t rc = ::write(common::log::fd(), text.data(), text.size());
    (void)rc;
    return;
  }
  if (!admit()) return;
  SLOG_WARN(kModule, "worker %d stderr: %s", static_cast<int>(pid_), text.c_str());
}

// A fixed one-second window: up to kMaxLinesPerSecond lines pass, the rest are counted, and
// the count is logged when the window ends (timer), the next line passes, or the pipe closes,
// whichever comes first.
bool WorkerOutput::admit() {
  auto now = std::chrono::steady_clock::now();
  if (lines_.admit(now)) {
    report_dropped();  // the window before's, unless its timer has told already
    return true;
  }
  if (lines_.suppressed() == 1 && window_timer_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(lines_.window_end() - now);
    window_timer_->start(left + std::chrono::milliseconds(1));
  }
  return false;
}

void WorkerOutput::report_dropped() {
  if (lines_.suppressed() == 0) return;  // then the timer is not pending either
  if (window_timer_) window_timer_->stop();
  SLOG_WARN(kModule, "worker %d stderr: dropped %llu lines (more than %u a second)",
            static_cast<int>(pid_), static_cast<unsigned long long>(lines_.take_suppressed()),
            kMaxLinesPerSecond);
}

// EOF: the worker and everything that shared its fd 2 are gone. The event is only deleted
// here, not freed, since this may run inside its own callback; the supervisor frees the
// object later, once closed().
void WorkerOutput::finish() {
  end_line();
  report_dropped();
  if (read_event_) read_event_->stop();
  read_.reset();
}

}  // namespace sluice::daemon
