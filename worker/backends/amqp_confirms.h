#pragma once
// The books of one confirm-mode channel: which delivery tag belongs to which waiting caller,
// and which basic.return belongs to which mandatory message. AmqpConnection keeps one per
// publishing channel (the shared one and the trial one) and turns what these return into
// answers; nothing here calls a callback.
#include <amqp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sluice::worker {

enum class PublishOutcome {
  confirmed,           // the broker acked it: the message is safe
  rejected,            // the broker nacked it
  unroutable,          // mandatory, and the broker returned it: no queue took it
  timed_out,           // no confirm within rabbitmq.confirm_timeout
  unavailable,         // no connection, or it dropped before the confirm
  blocked,             // the broker sent connection.blocked (resource alarm)
  backlogged,          // the broker has stopped reading: unsent bytes pile up in the socket
  refused_login,       // the broker refused the user or password
  refused_vhost,       // the user may not use the vhost (or it does not exist)
  exchange_not_found,  // the broker closed the trial channel with 404
  exchange_forbidden,  // the broker refused the publish (403): no write access, or internal
  too_many_logins,     // the worker's bound on new broker logins per second was reached
};

using PublishDone = std::function<void(PublishOutcome)>;

// What a basic.return tells about the message it returns.
struct ReturnKey {
  std::string exchange;
  std::string routing_key;
  uint64_t body_size = 0;

  bool operator==(const ReturnKey& o) const {
    return body_size == o.body_size && exchange == o.exchange && routing_key == o.routing_key;
  }
};

class ConfirmBooks {
 public:
  using Clock = std::chrono::steady_clock;

  struct Answer {
    PublishDone done;
    PublishOutcome outcome;
  };

  // Books the next basic.publish on the channel and returns its delivery tag. `mandatory` is
  // null for a message published without the flag, which then costs no return bookkeeping.
  uint64_t add(PublishDone done, Clock::time_point deadline, const ReturnKey* mandatory);

  // basic.return's method frame, then its content header: the return is known once the
  // header gives the body size (body frames carry nothing we need).
  void on_return(const amqp_basic_return_t& method);
  void on_content_header(uint64_t body_size);

  // basic.ack / basic.nack: the callers of the tags it resolves, with their outcome.
  void resolve(uint64_t tag, bool multiple, PublishOutcome outcome, std::vector<Answer>& out);
  // Messages past their deadline (answered timed_out).
  void expire(Clock::time_point now, std::vector<PublishDone>& out);
  // Everything waiting, for a channel or connection that is gone; the next tag is 1 again.
  void take_all(std::vector<PublishDone>& out);

  // Callers waiting for a confirm.
  size_t size() const { return unconfirmed_.size(); }
  // Anything the broker still owes an answer for (timed-out mandatory messages included).
  bool owes_anything() const { return !unconfirmed_.empty() || !mandatory_.empty(); }

 private:
  struct Inflight {
    PublishDone done;
    Clock::time_point deadline;
  };
  struct Mandatory {
    ReturnKey key;
    bool returned = false;
  };

  void match_returns(uint64_t tag, bool multiple);

  uint64_t next_tag_ = 1;
  std::map<uint64_t, Inflight> unconfirmed_;
  // Mandatory messages the broker has not acked or nacked yet, whether or not their caller is
  // still waiting: a timed-out one must still take its own return, not a neighbour's.
  std::map<uint64_t, Mandatory> mandatory_;
  std::vector<ReturnKey> returns_;  // received, not yet tied to a message
  bool return_started_ = false;     // a basic.return method awaits its content header
  ReturnKey partial_;
};

}  // namespace sluice::worker
