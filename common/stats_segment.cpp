#include "common/stats_segment.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace sluice::common {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

uint64_t to_us(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

uint64_t current_rss_kb() {
  FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024u;
}

}  // namespace

void WorkerSlot::count_response(int status, uint64_t elapsed_us) {
  if (status >= kStatsFirstStatus && status <= kStatsLastStatus) {
    responses[status - kStatsFirstStatus].fetch_add(1, kRelaxed);
  }
  processing_time_us.fetch_add(elapsed_us, kRelaxed);
}

void WorkerSlot::count_method(unsigned method) {
  if (method >= kStatsMethodSlots) method = kStatsMethodSlots - 1;
  methods[method].fetch_add(1, kRelaxed);
}

void WorkerSlot::reset_counters() {
  for (auto& c : methods)
    c.store(0, kRelaxed);
  for (auto& c : responses)
    c.store(0, kRelaxed);
  for (auto& c : module_counters)
    c.store(0, kRelaxed);
  processing_time_us.store(0, kRelaxed);
  connections_accepted.store(0, kRelaxed);
  connections_open.store(0, kRelaxed);
}

void WorkerSlot::publish_rusage() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  usage.user_us.store(to_us(ru.ru_utime), kRelaxed);
  usage.system_us.store(to_us(ru.ru_stime), kRelaxed);
  usage.max_rss_kb.store(static_cast<uint64_t>(ru.ru_maxrss), kRelaxed);
  usage.current_rss_kb.store(current_rss_kb(), kRelaxed);
  usage.minor_faults.store(static_cast<uint64_t>(ru.ru_minflt), kRelaxed);
  usage.major_faults.store(static_cast<uint64_t>(ru.ru_majflt), kRelaxed);
  usage.block_in.store(static_cast<uint64_t>(ru.ru_inblock), kRelaxed);
  usage.block_out.store(static_cast<uint64_t>(ru.ru_oublock), kRelaxed);
  usage.context_switches.store(static_cast<uint64_t>(ru.ru_nvcsw + ru.ru_nivcsw), kRelaxed);
  usage.signals.store(static_cast<uint64_t>(ru.ru_nsignals), kRelaxed);
  usage.swaps.store(static_cast<uint64_t>(ru.ru_nswap), kRelaxed);
  timeval now{};
  gettimeofday(&now, nullptr);
  usage.taken_at_ms.store(to_us(now) / 1000u, kRelaxed);
}

StatsSegment::~StatsSegment() {
  if (slots_ != nullptr) munmap(slots_, sizeof(WorkerSlot) * kStatsMaxSlots);
}

bool StatsSegment::create() {
  void* p = mmap(nullptr, sizeof(WorkerSlot) * kStatsMaxSlots, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  // Anonymous mappings are zero-filled, which is a valid state for every atomic here.
  slots_ = static_cast<WorkerSlot*>(p);
  return true;
}

int StatsSegment::claim(uint16_t port, uint32_t respawns) {
  for (size_t i = 0; i < kStatsMaxSlots; ++i) {
    WorkerSlot& s = slots_[i];
    if (s.claimed.load(kRelaxed) != 0) continue;
    s.claimed.store(1, kRelaxed);
    s.pid.store(0, kRelaxed);
    s.port.store(port, kRelaxed);
    s.respawns.store(respawns, kRelaxed);
    s.started.store(0, kRelaxed);
    s.reset_counters();
    return static_cast<int>(i);
  }
  return -1;
}

void StatsSegment::release(int index) {
  if (index < 0 || static_cast<size_t>(index) >= kStatsMaxSlots) return;
  slots_[index].pid.store(0, kRelaxed);
  slots_[index].claimed.store(0, kRelaxed);
}

}  // namespace sluice::common
