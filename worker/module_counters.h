#pragma once
// Counters a module declares by name. They live in its worker's slot of the shared stats
// segment (common/stats_segment.h), not in process memory, so /stats/fleet sums them over
// every worker and they survive nothing but the worker itself. The registry lays every
// module's counters out in one order for the whole build (worker/modules/registry.h), so
// each slot holds them at the same place whichever modules its listener serves.
#include <cstddef>
#include <cstdint>

#include "common/stats_segment.h"

namespace sluice::worker {

// A module's list of counter names, lowercase (shown as "<module>.<name>").
struct CounterNames {
  const char* const* names = nullptr;
  size_t count = 0;
};

template <size_t N>
constexpr CounterNames counter_names(const char* const (&names)[N]) {
  return CounterNames{names, N};
}

// A module's view of its counters, indexed by the module's own enum.
class ModuleCounters {
 public:
  ModuleCounters() = default;
  ModuleCounters(common::Counter* first, size_t count) : first_(first), count_(count) {}

  void add(size_t index, uint64_t n = 1) {
    if (index < count_) first_[index].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t get(size_t index) const {
    return index < count_ ? first_[index].load(std::memory_order_relaxed) : 0;
  }

 private:
  common::Counter* first_ = nullptr;
  size_t count_ = 0;
};

}  // namespace sluice::worker
