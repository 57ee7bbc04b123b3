#include "common/backoff.h"

#include <unistd.h>

#include <algorithm>

namespace sluice::common {

Backoff::Millis Backoff::base_delay(unsigned attempt) const {
  long long delay = initial_.count();
  for (unsigned i = 0; i < attempt && delay < cap_.count(); ++i)
    delay *= 2;
  return Millis(std::min<long long>(delay, cap_.count()));
}

Backoff::Millis Backoff::next() {
  Millis delay = base_delay(attempts_);
  if (attempts_ < 64) ++attempts_;
  if (jitter_ <= 0.0) return delay;
  if (rng_state_ == 0) rng_state_ = 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(getpid());
  // xorshift64: plenty for spreading reconnects, no shared state between processes.
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  double unit = static_cast<double>(rng_state_ % 10001) / 10000.0;  // [0, 1]
  double factor = 1.0 - jitter_ + 2.0 * jitter_ * unit;
  auto jittered = static_cast<long long>(static_cast<double>(delay.count()) * factor);
  return Millis(std::clamp<long long>(jittered, 1, cap_.count()));
}

}  // namespace sluice::common
