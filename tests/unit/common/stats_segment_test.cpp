#define BOOST_TEST_MODULE stats_segment
// The shared stats segment: slots claimed and released by the supervisor, counters a worker
// bumps in its own slot, and the point of it all, that a forked child's writes are what the
// parent (and every other worker) reads.
#include "common/stats_segment.h"

#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <climits>
#include <cstdint>
#include <vector>

using sluice::common::kStatsFirstStatus;
using sluice::common::kStatsLastStatus;
using sluice::common::kStatsMaxSlots;
using sluice::common::kStatsMethodSlots;
using sluice::common::StatsSegment;
using sluice::common::WorkerSlot;

namespace {

constexpr size_t kStatuses = kStatsLastStatus - kStatsFirstStatus + 1;

struct Segment {
  StatsSegment segment;
  Segment() { BOOST_REQUIRE(segment.create()); }
};

uint64_t responses(const WorkerSlot& s, int status) {
  return s.responses[status - kStatsFirstStatus].load();
}

uint64_t all_responses(const WorkerSlot& s) {
  uint64_t sum = 0;
  for (const auto& c : s.responses)
    sum += c.load();
  return sum;
}

uint64_t all_methods(const WorkerSlot& s) {
  uint64_t sum = 0;
  for (const auto& c : s.methods)
    sum += c.load();
  return sum;
}

int64_t now_ms() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}

// Runs `child` in a forked process that leaves with _exit(child()); returns its exit code,
// or -1 if it did not exit normally.
template <class F>
int in_child(F child) {
  pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) _exit(child());
  int status = 0;
  BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_segment_is_invalid_until_created_and_then_all_free) {
  StatsSegment unmapped;
  BOOST_TEST(!unmapped.valid());
  Segment s;
  BOOST_TEST(s.segment.valid());
  BOOST_TEST(s.segment.size() == kStatsMaxSlots);
  for (size_t i = 0; i < s.segment.size(); ++i) {
    const WorkerSlot& slot = s.segment.slot(i);
    BOOST_TEST_CONTEXT("slot " << i) {
      BOOST_TEST(slot.claimed.load() == 0u);
      BOOST_TEST(slot.pid.load() == 0);
      BOOST_TEST(all_responses(slot) == 0u);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(claim_takes_the_first_free_slot_and_fills_it_in, Segment) {
  BOOST_TEST(segment.claim(8000, 0) == 0);
  BOOST_TEST(segment.claim(8001, 3) == 1);
  const WorkerSlot& second = segment.slot(1);
  BOOST_TEST(second.claimed.load() == 1u);
  BOOST_TEST(second.port.load() == 8001u);
  BOOST_TEST(second.respawns.load() == 3u);
  BOOST_TEST(second.pid.load() == 0);  // the worker sets its pid itself
  BOOST_TEST(second.started.load() == 0);
  BOOST_TEST(segment.slot(0).port.load() == 8000u);
}

BOOST_FIXTURE_TEST_CASE(a_released_slot_is_claimed_again_with_fresh_counters, Segment) {
  int first = segment.claim(8000, 0);
  int second = segment.claim(8001, 0);
  WorkerSlot& old = segment.slot(first);
  old.pid.store(1234);
  old.started.store(99);
  old.count_method(1);
  old.count_response(204, 50);
  old.connections_accepted.store(7);
  old.connections_open.store(2);
  segment.release(first);
  BOOST_TEST(old.claimed.load() == 0u);
  BOOST_TEST(old.pid.load() == 0);  // no live worker there for /stats/fleet any more

  BOOST_TEST(segment.claim(9000, 5) == first);  // the lowest free slot
  BOOST_TEST(old.port.load() == 9000u);
  BOOST_TEST(old.respawns.load() == 5u);
  BOOST_TEST(old.started.load() == 0);
  BOOST_TEST(all_methods(old) == 0u);
  BOOST_TEST(all_responses(old) == 0u);
  BOOST_TEST(old.processing_time_us.load() == 0u);
  BOOST_TEST(old.connections_accepted.load() == 0u);
  BOOST_TEST(old.connections_open.load() == 0u);
  BOOST_TEST(segment.slot(second).claimed.load() == 1u);  // untouched
}

BOOST_FIXTURE_TEST_CASE(claim_fails_when_every_slot_is_taken, Segment) {
  for (size_t i = 0; i < kStatsMaxSlots; ++i)
    BOOST_REQUIRE(segment.claim(8000, 0) == static_cast<int>(i));
  BOOST_TEST(segment.claim(8000, 0) == -1);
  segment.release(17);
  BOOST_TEST(segment.claim(8000, 0) == 17);
  BOOST_TEST(segment.claim(8000, 0) == -1);
}

BOOST_FIXTURE_TEST_CASE(releasing_a_slot_out_of_range_does_nothing, Segment) {
  int taken = segment.claim(8000, 0);
  for (int index : {-1, INT_MIN, static_cast<int>(kStatsMaxSlots), INT_MAX})
    segment.release(index);
  BOOST_TEST(segment.slot(taken).claimed.load() == 1u);
  BOOST_TEST(segment.claim(8001, 0) == taken + 1);
}

BOOST_FIXTURE_TEST_CASE(count_response_counts_100_to_599_and_always_the_time, Segment) {
  WorkerSlot& s = segment.slot(segment.claim(8000, 0));
  s.count_response(100, 1);
  s.count_response(204, 10);
  s.count_response(204, 10);
  s.count_response(599, 100);
  BOOST_TEST(responses(s, 100) == 1u);
  BOOST_TEST(responses(s, 204) == 2u);
  BOOST_TEST(responses(s, 599) == 1u);
  BOOST_TEST(s.responses[kStatuses - 1].load() == 1u);  // 599 is the last counter
  BOOST_TEST(all_responses(s) == 4u);
  BOOST_TEST(s.processing_time_us.load() == 121u);

  // Out of range: no counter (and nothing written past the array), but the time is counted.
  for (int status : {99, 600, 0, -1, INT_MIN, INT_MAX})
    s.count_response(status, 1000);
  BOOST_TEST(all_responses(s) == 4u);
  BOOST_TEST(s.processing_time_us.load() == 6121u);
}

BOOST_FIXTURE_TEST_CASE(count_method_puts_unknown_methods_in_the_last_counter, Segment) {
  WorkerSlot& s = segment.slot(segment.claim(8000, 0));
  s.count_method(0);
  s.count_method(1);
  s.count_method(1);
  s.count_method(kStatsMethodSlots - 1);
  s.count_method(kStatsMethodSlots);
  s.count_method(UINT_MAX);
  BOOST_TEST(s.methods[0].load() == 1u);
  BOOST_TEST(s.methods[1].load() == 2u);
  BOOST_TEST(s.methods[kStatsMethodSlots - 1].load() == 3u);
  BOOST_TEST(all_methods(s) == 6u);
}

BOOST_FIXTURE_TEST_CASE(reset_counters_keeps_the_slots_identity, Segment) {
  WorkerSlot& s = segment.slot(segment.claim(8000, 2));
  s.pid.store(42);
  s.count_method(3);
  s.count_response(500, 7);
  s.connections_accepted.store(9);
  s.connections_open.store(1);
  s.reset_counters();
  BOOST_TEST(all_methods(s) == 0u);
  BOOST_TEST(all_responses(s) == 0u);
  BOOST_TEST(s.processing_time_us.load() == 0u);
  BOOST_TEST(s.connections_accepted.load() == 0u);
  BOOST_TEST(s.connections_open.load() == 0u);
  BOOST_TEST(s.pid.load() == 42);
  BOOST_TEST(s.claimed.load() == 1u);
  BOOST_TEST(s.port.load() == 8000u);
  BOOST_TEST(s.respawns.load() == 2u);
}

BOOST_FIXTURE_TEST_CASE(publish_rusage_takes_a_current_snapshot, Segment) {
  WorkerSlot& s = segment.slot(segment.claim(8000, 0));
  int64_t before = now_ms();
  s.publish_rusage();
  int64_t after = now_ms();
  auto taken = static_cast<int64_t>(s.usage.taken_at_ms.load());
  BOOST_TEST(taken >= before);
  BOOST_TEST(taken <= after);
  BOOST_TEST(s.usage.max_rss_kb.load() > 0u);
  BOOST_TEST(s.usage.current_rss_kb.load() > 0u);
  BOOST_TEST(s.usage.minor_faults.load() > 0u);
}

// What /stats/fleet rests on: the mapping is shared, not copied on write, across fork().
BOOST_FIXTURE_TEST_CASE(a_forked_childs_writes_are_seen_by_the_parent, Segment) {
  int index = segment.claim(8000, 1);
  segment.slot(index).count_response(200, 5);  // before the fork: the child sees it too
  int code = in_child([&] {
    WorkerSlot& own = segment.slot(static_cast<size_t>(index));
    if (responses(own, 200) != 1) return 3;
    own.pid.store(static_cast<int32_t>(getpid()));
    own.count_method(2);
    for (int i = 0; i < 1000; ++i)
      own.count_response(204, 1);
    own.connections_accepted.fetch_add(10);
    own.publish_rusage();
    return 0;
  });
  BOOST_REQUIRE(code == 0);
  const WorkerSlot& seen = segment.slot(index);
  BOOST_TEST(seen.pid.load() > 0);
  BOOST_TEST(seen.pid.load() != static_cast<int32_t>(getpid()));
  BOOST_TEST(seen.methods[2].load() == 1u);
  BOOST_TEST(responses(seen, 200) == 1u);
  BOOST_TEST(responses(seen, 204) == 1000u);
  BOOST_TEST(seen.processing_time_us.load() == 1005u);
  BOOST_TEST(seen.connections_accepted.load() == 10u);
  BOOST_TEST(seen.usage.taken_at_ms.load() > 0u);
}

// Two workers at once, each in its own slot, and one reading the other's (as /stats/fleet
// does); and the supervisor's claim after a fork is visible to a child forked before it.
BOOST_FIXTURE_TEST_CASE(workers_forked_from_one_supervisor_share_every_slot, Segment) {
  int a = segment.claim(8000, 0);
  int b = segment.claim(8001, 0);
  int pipe_fds[2];
  BOOST_REQUIRE(pipe(pipe_fds) == 0);
  pid_t reader = fork();
  BOOST_REQUIRE(reader >= 0);
  if (reader == 0) {
    close(pipe_fds[1]);
    char go;
    if (read(pipe_fds[0], &go, 1) != 1) _exit(4);  // until the writer has finished
    const WorkerSlot& other = segment.slot(static_cast<size_t>(b));
    bool ok = responses(other, 404) == 7 && segment.slot(2).claimed.load() == 1 &&
              segment.slot(2).port.load() == 8002;
    segment.slot(static_cast<size_t>(a)).count_response(200, 0);
    _exit(ok ? 0 : 5);
  }
  close(pipe_fds[0]);
  int writer = in_child([&] {
    for (int i = 0; i < 7; ++i)
      segment.slot(static_cast<size_t>(b)).count_response(404, 0);
    return 0;
  });
  BOOST_TEST(writer == 0);
  BOOST_TEST(segment.claim(8002, 0) == 2);  // after the reader was forked
  BOOST_REQUIRE(write(pipe_fds[1], "x", 1) == 1);
  close(pipe_fds[1]);
  int status = 0;
  BOOST_REQUIRE(waitpid(reader, &status, 0) == reader);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(responses(segment.slot(a), 200) == 1u);
}

BOOST_AUTO_TEST_CASE(two_segments_are_independent) {
  Segment one;
  Segment two;
  one.segment.slot(one.segment.claim(8000, 0)).count_response(200, 1);
  BOOST_TEST(two.segment.slot(0).claimed.load() == 0u);
  BOOST_TEST(all_responses(two.segment.slot(0)) == 0u);
}
