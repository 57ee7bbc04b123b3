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
//
// Beyond statelessd's fields, `mandatory` (true/false/1/0) asks the broker to return the
// message when no queue takes it, which turns the answer into 404 unroutable.
#include <amqp.h>
#include <yaml-cpp/yaml.h>

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

// What a message gets for a field the client did not send. Value-initialised it adds nothing
// (statelessd's own behaviour); the publish module's settings (parse_publish_settings) make
// messages persistent unless the client asks for transient.
struct MessageDefaults {
  uint8_t delivery_mode = 0;  // 0: leave the property unset; else 1 or 2
  bool mandatory = false;
};

// The `publish:` YAML section: default_delivery_mode (1 or 2, default 2) and mandatory
// (a boolean, default false). Every problem is reported: the first one's key path
// ("publish.default_delivery_mode") is the error's short_code and its message carries the
// others as "; <key>: <reason>", each with its line and column (the caller positions the
// error at the section).
common::Result<MessageDefaults> parse_publish_settings(const YAML::Node& section);

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
  // Published with basic.publish's mandatory flag: an unroutable message comes back.
  bool mandatory() const { return mandatory_; }
  // Valid as long as this object lives; ready for amqp_basic_publish.
  const amqp_basic_properties_t& properties() const { return props_; }

 private:
  friend common::Result<std::unique_ptr<PublishMessage>> build_message(
      const common::FormFields& fields, const MessageDefaults& defaults);

  std::string body_;
  bool mandatory_ = false;
  amqp_basic_properties_t props_{};
  // Storage behind props_. The object is heap-allocated and never moved or copied, so the
  // shortstr properties may point into these strings (even into their SSO buffers); the
  // headers table lives in pool_.
  std::string strings_[kShortstrCount];
  amqp_pool_t pool_{};
};

// Fields: body, app_id, content_encoding, content_type, correlation_id, delivery_mode,
// expire, headers, message_id, priority, reply_to, timestamp, type, user_id, and mandatory.
// A property is set only when its field is present and non-empty (statelessd sets "truthy"
// values; "0" is kept); an absent one takes `defaults`. Unknown fields are ignored. Errors are
// bad_request with short_code "invalid_field" and a message that names the field but never quotes
// its value.
common::Result<std::unique_ptr<PublishMessage>> build_message(const common::FormFields& fields,
                                                              const MessageDefaults& defaults = {});

}  // namespace sluice::worker
