#define BOOST_TEST_MODULE amqp_confirms
// A channel's confirm books: acks and nacks answer their own callers, and a basic.return is
// tied to the mandatory message the next ack resolves, never to a neighbour.
#include "worker/backends/amqp_confirms.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <vector>

using sluice::worker::ConfirmBooks;
using sluice::worker::PublishDone;
using sluice::worker::PublishOutcome;
using sluice::worker::ReturnKey;

namespace {

using Clock = ConfirmBooks::Clock;

struct Channel {
  ConfirmBooks books;
  std::map<int, PublishOutcome> answers;  // by the caller's number

  uint64_t publish(int caller, const ReturnKey* mandatory = nullptr,
                   Clock::time_point deadline = Clock::now() + std::chrono::hours(1)) {
    return books.add([this, caller](PublishOutcome o) { answers[caller] = o; }, deadline,
                     mandatory);
  }
  void returned(const ReturnKey& key) {
    amqp_basic_return_t r{};
    r.exchange = amqp_cstring_bytes(key.exchange.c_str());
    r.routing_key = amqp_cstring_bytes(key.routing_key.c_str());
    books.on_return(r);
    books.on_content_header(key.body_size);
  }
  void ack(uint64_t tag, bool multiple, PublishOutcome outcome = PublishOutcome::confirmed) {
    std::vector<ConfirmBooks::Answer> out;
    books.resolve(tag, multiple, outcome, out);
    for (auto& a : out)
      a.done(a.outcome);
  }
};

const ReturnKey kLost{"ex", "nobody", 5};
const ReturnKey kRouted{"ex", "somebody", 5};

}  // namespace

BOOST_AUTO_TEST_CASE(acks_answer_their_own_tags) {
  Channel c;
  BOOST_TEST(c.publish(1) == 1u);
  BOOST_TEST(c.publish(2) == 2u);
  BOOST_TEST(c.publish(3) == 3u);
  c.ack(2, false);
  BOOST_TEST(c.answers.size() == 1u);
  BOOST_TEST((c.answers[2] == PublishOutcome::confirmed));
  c.ack(3, true, PublishOutcome::rejected);
  BOOST_TEST((c.answers[1] == PublishOutcome::rejected));
  BOOST_TEST((c.answers[3] == PublishOutcome::rejected));
  BOOST_TEST(c.books.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_return_then_its_single_ack_is_unroutable) {
  Channel c;
  c.publish(1, &kRouted);
  c.publish(2, &kLost);
  c.publish(3);
  c.returned(kLost);
  c.ack(2, false);
  c.ack(3, true);
  BOOST_TEST((c.answers[1] == PublishOutcome::confirmed));
  BOOST_TEST((c.answers[2] == PublishOutcome::unroutable));
  BOOST_TEST((c.answers[3] == PublishOutcome::confirmed));
}

// A multiple ack sweeping up routed and returned messages alike: the return goes to the
// message with its key, the most recent one when several have it.
BOOST_AUTO_TEST_CASE(a_multiple_ack_ties_returns_by_key_most_recent_first) {
  Channel c;
  c.publish(1, &kLost);  // same key, but routed then (its confirm waited for a queue)
  c.publish(2, &kRouted);
  c.publish(3, &kLost);
  c.publish(4);
  c.returned(kLost);
  c.ack(4, true);
  BOOST_TEST((c.answers[1] == PublishOutcome::confirmed));
  BOOST_TEST((c.answers[2] == PublishOutcome::confirmed));
  BOOST_TEST((c.answers[3] == PublishOutcome::unroutable));
  BOOST_TEST((c.answers[4] == PublishOutcome::confirmed));
}

// One gathering of confirms can go out as a multiple ack and then single acks: a return whose
// message is in a later frame waits for it.
BOOST_AUTO_TEST_CASE(a_return_not_claimed_by_one_frame_waits_for_the_next) {
  Channel c;
  c.publish(1, &kRouted);
  c.publish(2);  // still awaited by a queue
  c.publish(3, &kLost);
  c.returned(kLost);
  c.ack(1, true);
  BOOST_TEST((c.answers[1] == PublishOutcome::confirmed));
  c.ack(3, false);
  BOOST_TEST((c.answers[3] == PublishOutcome::unroutable));
  c.ack(2, false);
  BOOST_TEST((c.answers[2] == PublishOutcome::confirmed));
}

// A mandatory message that timed out keeps its place: its late return must not be pinned on
// a neighbour with the same key.
BOOST_AUTO_TEST_CASE(a_timed_out_message_still_takes_its_own_return) {
  Channel c;
  auto now = Clock::now();
  c.publish(1, &kLost, now - std::chrono::seconds(1));
  c.publish(2, &kLost);
  std::vector<PublishDone> expired;
  c.books.expire(now, expired);
  BOOST_TEST(expired.size() == 1u);
  c.returned(kLost);
  c.ack(1, false);
  c.ack(2, false);
  BOOST_TEST(c.answers.count(1) == 0u);  // answered timed_out by the caller of expire()
  BOOST_TEST((c.answers[2] == PublishOutcome::confirmed));
  BOOST_TEST(!c.books.owes_anything());
}

BOOST_AUTO_TEST_CASE(non_mandatory_messages_never_become_unroutable) {
  Channel c;
  c.publish(1);
  c.returned(kLost);  // cannot be ours: dropped when nothing could claim it
  c.ack(1, false);
  BOOST_TEST((c.answers[1] == PublishOutcome::confirmed));
  c.publish(2, &kLost);
  c.ack(2, false);
  BOOST_TEST((c.answers[2] == PublishOutcome::confirmed));
}

BOOST_AUTO_TEST_CASE(take_all_restarts_the_tags) {
  Channel c;
  c.publish(1, &kLost);
  c.publish(2);
  c.returned(kLost);
  std::vector<PublishDone> all;
  c.books.take_all(all);
  BOOST_TEST(all.size() == 2u);
  BOOST_TEST(!c.books.owes_anything());
  BOOST_TEST(c.publish(3, &kLost) == 1u);
  c.ack(1, false);
  BOOST_TEST((c.answers[3] == PublishOutcome::confirmed));
}
