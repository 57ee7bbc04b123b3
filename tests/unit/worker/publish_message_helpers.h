#pragma once
// Shared by the publish_message unit test and its broker round-trip test.
#include <boost/test/unit_test.hpp>
#include <memory>

#include "worker/backends/amqp_bytes.h"
#include "worker/modules/publish_message.h"

namespace sluice::test {

using worker::to_string;

// The message built from `fields`, failing the test case when it cannot be built.
inline std::unique_ptr<worker::PublishMessage> build_ok(
    const common::FormFields& fields, const worker::MessageDefaults& defaults = {}) {
  auto r = worker::build_message(fields, defaults);
  BOOST_REQUIRE_MESSAGE(r.ok(), "build_message failed: " << (r.ok() ? "" : r.error().message));
  return std::move(r.value());
}

}  // namespace sluice::test
