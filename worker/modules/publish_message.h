#pragma once
// One message to publish, built from statelessd's 14 form fields: body plus the AMQP basic
// properties. It owns every byte the properties point to (strings and the headers table), so
// it can wait in a queue until the channel takes it. Upstream bugs are fixed here: `expire`
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
#include <amqp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "common/form.h"
#include "common/result.h"

namespace sluice::worker {

// Encoded size limit of the headers table (kind bytes, lengths and data, as on the wire).
inline constexpr std::size_t kMaxHeadersBytes = 65536;
// Containers nested deeper than this in `headers` (the top object is level 1) are refused.
inline constexpr int kMaxHeadersDepth = 16;
// RabbitMQ's MAX_EXPIRY_TIMER (ten years, in milliseconds).
inline constexpr unsigned long long kMaxExpireMs = 315360000000ULL;

class PublishMessage {
 public:
  // The string properties: app_id, content_encoding, content_type, correlation_id, expire,
  // message_id, reply_to, type, user_id.
  static constexpr std::size_t kShortstrCount = 9;

  PublishMessage();
  ~PublishMessage();
  PublishMessage(const PublishMessage&) = delete;
  PublishMessage& operator=(const PublishMessage&) = delete;

  const std::string& body() const { return body_; }
  // Valid as long as this object lives; ready for amqp_basic_publish.
  const amqp_basic_properties_t& properties() const { return props_; }

 private:
  friend common::Result<std::unique_ptr<PublishMessage>> build_message(
      const common::FormFields& fields);

  std::string body_;
  amqp_basic_properties_t props_{};
  // Storage behind props_. The object is heap-allocated and never moved or copied, so the
  // shortstr properties may point into these strings (even into their SSO buffers); the
  // headers table lives in pool_.
  std::string strings_[kShortstrCount];
  amqp_pool_t pool_{};
};

// Fields: body, app_id, content_encoding, content_type, correlation_id, delivery_mode,
// expire, headers, message_id, priority, reply_to, timestamp, type, user_id. A property is
// set only when its field is present and non-empty (statelessd sets "truthy" values; "0" is
// kept). Unknown fields are ignored. Errors are bad_request with short_code "invalid_field"
// and a message that names the field but never quotes its value.
common::Result<std::unique_ptr<PublishMessage>> build_message(const common::FormFields& fields);

}  // namespace sluice::worker
