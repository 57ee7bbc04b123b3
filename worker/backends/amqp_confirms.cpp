#include "worker/backends/amqp_confirms.h"

#include <algorithm>
#include <iterator>

#include "worker/backends/amqp_bytes.h"

namespace sluice::worker {

uint64_t ConfirmBooks::add(PublishDone done, Clock::time_point deadline,
                           const ReturnKey* mandatory) {
  uint64_t tag = next_tag_++;
  unconfirmed_.emplace_hint(unconfirmed_.end(), tag, Inflight{std::move(done), deadline});
  if (mandatory != nullptr) mandatory_.emplace_hint(mandatory_.end(), tag, Mandatory{*mandatory});
  return tag;
}

void ConfirmBooks::on_return(const amqp_basic_return_t& method) {
  return_started_ = true;
  partial_.exchange = to_string(method.exchange);
  partial_.routing_key = to_string(method.routing_key);
}

void ConfirmBooks::on_content_header(uint64_t body_size) {
  if (!return_started_) return;  // not after a basic.return: nothing of ours
  return_started_ = false;
  partial_.body_size = body_size;
  returns_.push_back(std::move(partial_));
  partial_ = ReturnKey{};
}

// Which message a basic.return is for. The return names no delivery tag, only the exchange,
// routing key and (in its content header) the body; so it is tied by order:
//   - RabbitMQ's channel process handles one publish at a time. An unroutable mandatory
//     message is returned while its publish is handled, and it is confirmed at that same
//     moment (no queue is waited for); the confirms gathered are sent once the channel has
//     nothing else to do (rabbit_channel's noreply_coalesce), all through the one writer, so
//     the return always comes before the ack that covers its message, and any ack sent
//     before the return was gathered before that message was handled.
//   - So a return belongs to a message that one of the next ack/nack frames on its channel
//     resolves (one gathering may go out as several frames: a multiple ack up to the oldest
//     message still awaited, then single acks, then nacks).
// When a frame resolves one tag, that is the message. When it resolves several (multiple),
// the returns are matched to the mandatory messages among them with the same (exchange,
// routing key, body size), the most recent first: an unroutable message is confirmed at once,
// so the older messages an ack sweeps up are the ones that waited for a queue, i.e. the
// routed ones. The remaining ambiguity needs two mandatory messages with identical keys whose
// routing differed (a binding changed between them, or a headers exchange) within one
// gathering of confirms. A return no frame could claim stays for the next frames and is
// dropped once no message it could be for is left.
void ConfirmBooks::match_returns(uint64_t tag, bool multiple) {
  if (mandatory_.empty()) {
    returns_.clear();
    return;
  }
  auto first = multiple ? mandatory_.begin() : mandatory_.find(tag);
  auto last = multiple ? mandatory_.upper_bound(tag)
                       : (first == mandatory_.end() ? first : std::next(first));
  std::vector<ReturnKey> unclaimed;
  for (auto& r : returns_) {
    bool claimed = false;
    for (auto it = std::make_reverse_iterator(last); it != std::make_reverse_iterator(first);
         ++it) {
      if (!it->second.returned && it->second.key == r) {
        it->second.returned = true;
        claimed = true;
        break;
      }
    }
    if (!claimed) unclaimed.push_back(std::move(r));
  }
  returns_ = std::move(unclaimed);
}

void ConfirmBooks::resolve(uint64_t tag, bool multiple, PublishOutcome outcome,
                           std::vector<Answer>& out) {
  if (!returns_.empty()) match_returns(tag, multiple);
  auto first = multiple ? unconfirmed_.begin() : unconfirmed_.find(tag);
  auto last = multiple ? unconfirmed_.upper_bound(tag)
                       : (first == unconfirmed_.end() ? first : std::next(first));
  for (auto it = first; it != last; ++it) {
    PublishOutcome o = outcome;
    if (!mandatory_.empty()) {
      auto m = mandatory_.find(it->first);
      if (m != mandatory_.end() && m->second.returned) o = PublishOutcome::unroutable;
    }
    out.push_back(Answer{std::move(it->second.done), o});
  }
  unconfirmed_.erase(first, last);
  if (mandatory_.empty()) return;
  auto mfirst = multiple ? mandatory_.begin() : mandatory_.find(tag);
  auto mlast = multiple ? mandatory_.upper_bound(tag)
                        : (mfirst == mandatory_.end() ? mfirst : std::next(mfirst));
  mandatory_.erase(mfirst, mlast);
  // A return whose message is gone from the books (it cannot be anyone else's).
  returns_.erase(std::remove_if(returns_.begin(), returns_.end(),
                                [this](const ReturnKey& r) {
                                  return std::none_of(
                                      mandatory_.begin(), mandatory_.end(), [&](const auto& m) {
                                        return !m.second.returned && m.second.key == r;
                                      });
                                }),
                 returns_.end());
}

void ConfirmBooks::expire(Clock::time_point now, std::vector<PublishDone>& out) {
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second.done));
    it = unconfirmed_.erase(it);  // a mandatory one stays in mandatory_ for its return
  }
}

void ConfirmBooks::take_all(std::vector<PublishDone>& out) {
  for (auto& [tag, inflight] : unconfirmed_)
    out.push_back(std::move(inflight.done));
  unconfirmed_.clear();
  mandatory_.clear();
  returns_.clear();
  return_started_ = false;
  next_tag_ = 1;
}

}  // namespace sluice::worker
