#pragma once
// The shared stats segment: an anonymous MAP_SHARED mapping the supervisor creates before
// the first fork, with one slot per worker. Each worker updates only its own slot (relaxed
// atomics: counters, not synchronisation); any worker can read every slot to answer
// /stats/fleet. The supervisor claims a slot for each worker it forks and frees it when
// the worker is reaped.
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::common {

constexpr size_t kStatsMaxSlots = 256;    // ports x 2 during a reload, with room to spare
constexpr size_t kStatsMethodSlots = 32;  // indexed by libevhtp's htp_method
constexpr int kStatsFirstStatus = 100;
constexpr int kStatsLastStatus = 599;
// Counters the modules declare (worker/module_counters.h), for every module of the build.
constexpr size_t kStatsModuleCounters = 128;

using Counter = std::atomic<uint64_t>;
static_assert(Counter::is_always_lock_free, "process-shared counters must be lock-free");

// getrusage(RUSAGE_SELF) as last published by the worker, so other workers can read it.
struct RusageSnapshot {
  Counter user_us;
  Counter system_us;
  Counter max_rss_kb;
  Counter current_rss_kb;
  Counter minor_faults;
  Counter major_faults;
  Counter block_in;
  Counter block_out;
  Counter context_switches;
  Counter signals;
  Counter swaps;
  Counter taken_at_ms;  // unix time of the snapshot
};

struct WorkerSlot {
  std::atomic<int32_t> pid;  // 0: slot holds no live worker
  std::atomic<uint32_t> claimed;
  std::atomic<uint32_t> port;
  std::atomic<uint32_t> respawns;
  std::atomic<int64_t> started;  // unix seconds
  Counter methods[kStatsMethodSlots];
  Counter responses[kStatsLastStatus - kStatsFirstStatus + 1];
  Counter processing_time_us;
  Counter connections_accepted;
  Counter connections_open;
  Counter module_counters[kStatsModuleCounters];
  RusageSnapshot usage;

  void count_response(int status, uint64_t elapsed_us);
  void count_method(unsigned method);
  void reset_counters();
  // Takes getrusage(RUSAGE_SELF) and /proc/self/statm into `usage`.
  void publish_rusage();
};

class StatsSegment {
 public:
  StatsSegment() = default;
  StatsSegment(const StatsSegment&) = delete;
  StatsSegment& operator=(const StatsSegment&) = delete;
  ~StatsSegment();

  // mmap(MAP_SHARED | MAP_ANONYMOUS); false (errno set) on failure.
  bool create();
  bool valid() const { return slots_ != nullptr; }

  // Supervisor side: a free slot for a worker on `port`, or -1 when all are taken.
  int claim(uint16_t port, uint32_t respawns);
  void release(int index);

  WorkerSlot& slot(size_t index) { return slots_[index]; }
  const WorkerSlot& slot(size_t index) const { return slots_[index]; }
  size_t size() const { return kStatsMaxSlots; }

 private:
  WorkerSlot* slots_ = nullptr;
};

}  // namespace sluice::common
