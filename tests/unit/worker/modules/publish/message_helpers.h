#pragma once
// Shared by the message_fields unit test and its broker round-trip test.
#include <boost/test/unit_test.hpp>
#include <memory>

#include "worker/backends/amqp_bytes.h"
#include "worker/backends/amqp_message.h"
#include "worker/modules/publish/message_fields.h"

namespace sluice::test {

using worker::to_string;

// The message built from `fields`, failing the test case when it cannot be built.
inline std::unique_ptr<worker::AmqpMessage> build_ok(
    const common::FormFields& fields, const worker::publish::MessageDefaults& defaults = {}) {
  auto r = worker::publish::build_message(fields, defaults);
  BOOST_REQUIRE_MESSAGE(r.ok(), "build_message failed: " << (r.ok() ? "" : r.error().message));
  return std::move(r.value());
}

}  // namespace sluice::test
