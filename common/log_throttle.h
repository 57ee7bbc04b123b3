#pragma once
// At most `lines` log lines per `interval`; the lines refused are counted, so the next line
// that passes (or a report of its own) can say how many were suppressed. What a backend
// outage or a flood of accept() errors logs "on the change and then periodically, never per
// request" (STYLE.md, "Logging"):
//
//   if (was_up) down_log_.reset();  // the change itself is always logged
//   if (down_log_.admit()) SLOG_WARN(kModule, "redis down%s", down_log_.take_note().c_str());
//
// A window opens with the first line admitted after the previous one closed: with lines = 1
// that is one line per interval; with 100 lines a second it is worker_output's line rate.
#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::common {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration interval, unsigned lines = 1)
      : interval_(interval), lines_(lines) {}

  // True when a line may be written now; false counts it as suppressed.
  bool admit(Clock::time_point now = Clock::now()) {
    if (!open_ || now >= window_end_) {
      open_ = true;
      window_end_ = now + interval_;
      used_ = 0;
    }
    if (used_ < lines_) {
      ++used_;
      return true;
    }
    ++suppressed_;
    return false;
  }

  // The next admit() passes and opens a new window. The count of suppressed lines is kept.
  void reset() { open_ = false; }

  uint64_t suppressed() const { return suppressed_; }
  // The suppressed count, set back to zero.
  uint64_t take_suppressed() {
    uint64_t n = suppressed_;
    suppressed_ = 0;
    return n;
  }
  // " (N similar lines suppressed)" for the end of the admitted line, or "" when none were;
  // the count is set back to zero.
  std::string take_note() {
    uint64_t n = take_suppressed();
    if (n == 0) return {};
    return " (" + std::to_string(n) + (n == 1 ? " similar line" : " similar lines") +
           " suppressed)";
  }

  // When the current window closes: a line refused now would be admitted from then on.
  Clock::time_point window_end() const { return window_end_; }

 private:
  Clock::duration interval_;
  unsigned lines_;
  bool open_ = false;
  Clock::time_point window_end_{};
  unsigned used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace sluice::common
