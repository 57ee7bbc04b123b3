#pragma once
// One message to publish (worker/backends/amqp_message.h), built from statelessd's 14 form
// fields: body plus the AMQP basic properties. Upstream bugs are fixed here: `expire`
// is AMQP `expiration`, `headers` is a JSON object turned into a field table, the body is
// byte-exact and may be absent (empty), and out-of-range numbers or shortstr fields over 255
// bytes are a 400 naming the field.
//
// Validation follows what RabbitMQ 3.10 itself refuses, because a refused publish closes the
// whole channel (PRECONDITION_FAILED) after we already answered the client, and every other
// request sharing that channel loses its message too. So, beyond the AMQP types:
//   - delivery_mode must be 1 or 2 (rabbit_basic:is_message_persistent throws on others);
//   - expire must be 0..315360000000 ms (rabbit_misc:check_expiry);
//   - reply_to must not be "amq.rabbitmq.reply-to" (direct reply-to needs a consumer on the
//     publishing channel, which ours never has);
//   - a top-level "CC" or "BCC" header must be an array (rabbit_basic:header_routes);
//   - header keys are 1..255 bytes (rabbitmq-c truncates longer ones, and its consumers
//     cannot read a message with an empty key);
//   - header integers above INT64_MAX become doubles: RabbitMQ decodes 'L' as signed;
//   - the encoded headers table is capped at kMaxHeadersBytes so the header frame always fits
//     frame_max (rabbitmq-c has already sent the method frame when that encode would fail).
// Not checked here: user_id must equal the connecting user unless it has the impersonator tag;
// the caller knows the user and must compare properties().user_id itself.
//
// Beyond statelessd's fields, `mandatory` (true/false/1/0) asks the broker to return the
// message when no queue takes it, which turns the answer into 404 unroutable.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/form.h"
#include "common/result.h"
#include "worker/backends/amqp_message.h"

namespace sluice::worker::publish {

// Encoded size limit of the headers table (kind bytes, lengths and data, as on the wire).
inline constexpr std::size_t kMaxHeadersBytes = 65536;
// Containers nested deeper than this in `headers` (the top object is level 1) are refused.
inline constexpr int kMaxHeadersDepth = 16;
// RabbitMQ's MAX_EXPIRY_TIMER (ten years, in milliseconds).
inline constexpr unsigned long long kMaxExpireMs = 315360000000ULL;

// What a message gets for a field the client did not send. Value-initialised it adds nothing
// (statelessd's own behaviour); the publish section's settings (publish_config.h) make
// messages persistent unless the client asks for transient.
struct MessageDefaults {
  uint8_t delivery_mode = 0;  // 0: leave the property unset; else 1 or 2
  bool mandatory = false;
};

// Fields: body, app_id, content_encoding, content_type, correlation_id, delivery_mode,
// expire, headers, message_id, priority, reply_to, timestamp, type, user_id, and mandatory.
// A property is set only when its field is present and non-empty (statelessd sets "truthy"
// values; "0" is kept); an absent one takes `defaults`. Unknown fields are ignored. Errors are
// bad_request with short_code "invalid_field" and a message that names the field but never quotes
// its value.
common::Result<std::unique_ptr<AmqpMessage>> build_message(const common::FormFields& fields,
                                                           const MessageDefaults& defaults = {});

}  // namespace sluice::worker::publish
