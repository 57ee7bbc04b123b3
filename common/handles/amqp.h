#pragma once
// RAII for rabbitmq-c's connection. The destructor only calls amqp_destroy_connection (which
// closes the socket without a word to the broker): the blocking close handshakes, when
// wanted, run explicitly and under a timeout, because every rabbitmq-c RPC blocks the loop.
#include <amqp.h>

#include <memory>

#include "common/handles/c_free.h"

namespace sluice::common {

using AmqpConnPtr = std::unique_ptr<amqp_connection_state_t_, CFree<amqp_destroy_connection>>;

}  // namespace sluice::common
