#pragma once
// Exponential backoff shared by worker respawn, Redis reconnect and AMQP reconnect:
// initial, doubling, capped; reset() once the thing has stayed up; optional jitter so a
// fleet does not reconnect in lockstep.
#include <chrono>
#include <cstdint>

namespace sluice::common {

class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  Backoff(Millis initial, Millis cap, double jitter = 0.0)
      : initial_(initial), cap_(cap), jitter_(jitter) {}

  // The delay to wait before the next attempt; each call doubles the following one.
  Millis next();
  void reset() { attempts_ = 0; }
  unsigned attempts() const { return attempts_; }

  // Deterministic part of next(), exposed for tests: initial * 2^attempt, capped.
  Millis base_delay(unsigned attempt) const;

 private:
  Millis initial_;
  Millis cap_;
  double jitter_;  // 0.2 means the delay is drawn from [0.8 d, 1.2 d] (still capped)
  unsigned attempts_ = 0;
  uint64_t rng_state_ = 0;
};

}  // namespace sluice::common
