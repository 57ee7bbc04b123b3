#include "worker/modules/publish/message_fields.h"

#include <rapidjson/document.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice::worker::publish {
namespace {

using common::Errc;
using common::Error;
using common::FormFields;
using common::Result;
using JsonValue = rapidjson::Value;

constexpr std::size_t kMaxShortstr = 255;  // AMQP shortstr: one length octet

Error invalid(std::string_view field, std::string_view rule) {
  std::string message = "field \"";
  message.append(field).append("\" ").append(rule);
  return common::make_error(Errc::bad_request, "invalid_field", std::move(message));
}

// statelessd sets a property only when its value is truthy (`if value:`): an empty field is
// the same as an absent one, while "0" counts.
const std::string* find_set(const FormFields& fields, std::string_view name) {
  auto it = fields.find(name);
  return it == fields.end() || it->second.empty() ? nullptr : &it->second;
}

// Plain decimal digits only (no sign, space, '+' or hex), which is exactly what RabbitMQ and
// the AMQP octets accept. Saturates at UINT64_MAX so the caller's range check reports a
// too-large value as out of range rather than as garbage.
std::optional<uint64_t> parse_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<uint64_t>::max();
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// RabbitMQ closes the channel on an expiration that is not a plain integer of milliseconds
// within check_expiry's bounds, so it never gets that far.
Result<void> check_expire(std::string_view value) {
  std::optional<uint64_t> ms = parse_decimal(value);
  if (!ms) return invalid("expire", "must be a number of milliseconds");
  if (*ms > kMaxExpireMs)
    return invalid("expire",
                   "must be at most " + std::to_string(kMaxExpireMs) + " milliseconds (ten years)");
  return {};
}

// Direct reply-to only works on a channel that consumes from it; on our publishing channel
// the broker answers with a channel-closing PRECONDITION_FAILED.
Result<void> check_reply_to(std::string_view value) {
  if (value == "amq.rabbitmq.reply-to")
    return invalid("reply_to", "must not be RabbitMQ's direct reply-to pseudo-queue");
  return {};
}

struct ShortstrField {
  const char* name;
  amqp_flags_t flag;
  amqp_bytes_t amqp_basic_properties_t::*member;
  Result<void> (*check)(std::string_view value);  // extra rule beyond 255 bytes, or null
};

constexpr ShortstrField kShortstrFields[] = {
    {"app_id", AMQP_BASIC_APP_ID_FLAG, &amqp_basic_properties_t::app_id, nullptr},
    {"content_encoding", AMQP_BASIC_CONTENT_ENCODING_FLAG,
     &amqp_basic_properties_t::content_encoding, nullptr},
    {"content_type", AMQP_BASIC_CONTENT_TYPE_FLAG, &amqp_basic_properties_t::content_type, nullptr},
    {"correlation_id", AMQP_BASIC_CORRELATION_ID_FLAG, &amqp_basic_properties_t::correlation_id,
     nullptr},
    // statelessd's field name is `expire`; the AMQP property is `expiration`.
    {"expire", AMQP_BASIC_EXPIRATION_FLAG, &amqp_basic_properties_t::expiration, check_expire},
    {"message_id", AMQP_BASIC_MESSAGE_ID_FLAG, &amqp_basic_properties_t::message_id, nullptr},
    {"reply_to", AMQP_BASIC_REPLY_TO_FLAG, &amqp_basic_properties_t::reply_to, check_reply_to},
    {"type", AMQP_BASIC_TYPE_FLAG, &amqp_basic_properties_t::type, nullptr},
    {"user_id", AMQP_BASIC_USER_ID_FLAG, &amqp_basic_properties_t::user_id, nullptr},
};
Result<void> set_shortstr(const ShortstrField& field, const FormFields& fields, AmqpMessage& msg) {
  const std::string* value = find_set(fields, field.name);
  if (value == nullptr) return {};
  if (value->size() > kMaxShortstr) return invalid(field.name, "must be at most 255 bytes");
  if (field.check != nullptr)
    if (Result<void> r = field.check(*value); !r) return r;
  msg.set_string(field.member, field.flag, *value);
  return {};
}

struct OctetField {
  const char* name;
  amqp_flags_t flag;
  uint8_t amqp_basic_properties_t::*member;
  uint64_t min;
  uint64_t max;
  const char* rule;  // completes `field "<name>" ...`
};

// AMQP allows any octet for delivery-mode, but RabbitMQ refuses a message whose mode is not
// 1 or 2 by closing the channel (rabbit_basic:is_message_persistent).
constexpr OctetField kOctetFields[] = {
    {"delivery_mode", AMQP_BASIC_DELIVERY_MODE_FLAG, &amqp_basic_properties_t::delivery_mode, 1, 2,
     "must be 1 (non-persistent) or 2 (persistent)"},
    {"priority", AMQP_BASIC_PRIORITY_FLAG, &amqp_basic_properties_t::priority, 0, 255,
     "must be an integer from 0 to 255"},
};

Result<void> set_octet(const OctetField& field, const FormFields& fields,
                       amqp_basic_properties_t& props) {
  const std::string* value = find_set(fields, field.name);
  if (value == nullptr) return {};
  std::optional<uint64_t> n = parse_decimal(*value);
  if (!n || *n < field.min || *n > field.max) return invalid(field.name, field.rule);
  props.*field.member = static_cast<uint8_t>(*n);
  props._flags |= field.flag;
  return {};
}

// The AMQP timestamp is unsigned 64-bit, but clients such as Java's read it into a signed
// long, so values above INT64_MAX would come out negative there.
Result<void> set_timestamp(const FormFields& fields, amqp_basic_properties_t& props) {
  const std::string* value = find_set(fields, "timestamp");
  if (value == nullptr) return {};
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  std::optional<uint64_t> seconds = parse_decimal(*value);
  if (!seconds || *seconds > kMax)
    return invalid("timestamp", "must be Unix seconds from 0 to " + std::to_string(kMax));
  props.timestamp = *seconds;
  props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
  return {};
}

// Turns parsed JSON into rabbitmq-c field values allocated in the message, counting
// the bytes amqp_encode_table will write so the header frame always fits frame_max.
class TableBuilder {
 public:
  explicit TableBuilder(AmqpMessage& msg) : msg_(msg) {}

  Result<void> table(const JsonValue& object, int depth, amqp_table_t& out);

 private:
  Result<void> array(const JsonValue& array, int depth, amqp_array_t& out);
  Result<void> value(const JsonValue& v, int depth, amqp_field_value_t& out);
  Result<void> charge(std::size_t bytes);
  amqp_bytes_t copy(std::string_view bytes) { return msg_.copy(bytes); }
  void* allocate(std::size_t bytes) { return msg_.allocate(bytes); }

  AmqpMessage& msg_;
  std::size_t encoded_ = 0;
};

using JsonMember = JsonValue::Member;

std::string_view json_string(const JsonValue& v) {
  return {v.GetString(), v.GetStringLength()};
}

// JSON allows a repeated key; keep its last value (as JSON.parse, Python and PHP do) so the
// table never holds two entries for one key, which RabbitMQ and clients would read
// differently (the broker takes the first).
std::vector<const JsonMember*> last_of_each_key(const JsonValue& object) {
  std::unordered_map<std::string_view, std::size_t> slot;
  std::vector<const JsonMember*> kept;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    auto [pos, inserted] = slot.emplace(json_string(it->name), kept.size());
    if (inserted)
      kept.push_back(&*it);
    else
      kept[pos->second] = &*it;
  }
  return kept;
}

Result<void> TableBuilder::table(const JsonValue& object, int depth, amqp_table_t& out) {
  std::vector<const JsonMember*> members = last_of_each_key(object);
  // The table's length word, then a key length octet and a kind octet per entry; charged
  // before allocating so a huge object fails without a huge allocation.
  if (Result<void> r = charge(4 + 2 * members.size()); !r) return r;
  out.num_entries = static_cast<int>(members.size());
  out.entries =
      static_cast<amqp_table_entry_t*>(allocate(members.size() * sizeof(amqp_table_entry_t)));
  for (std::size_t i = 0; i < members.size(); ++i) {
    std::string_view key = json_string(members[i]->name);
    const JsonValue& v = members[i]->value;
    // rabbitmq-c writes the key length as one octet and would silently truncate a longer key,
    // and its amqp_table_clone (inside amqp_read_message) refuses an empty one, so no
    // rabbitmq-c consumer, ours included, could read the message.
    if (key.empty() || key.size() > kMaxShortstr)
      return invalid("headers", "must have keys of 1 to 255 bytes");
    // RabbitMQ reads top-level CC and BCC as extra routing keys and closes the channel when
    // either is not an array (rabbit_basic:header_routes).
    if (depth == 1 && (key == "CC" || key == "BCC") && !v.IsArray())
      return invalid("headers", "must give CC and BCC as arrays of routing keys");
    if (Result<void> r = charge(key.size()); !r) return r;
    out.entries[i].key = copy(key);
    if (Result<void> r = value(v, depth, out.entries[i].value); !r) return r;
  }
  return {};
}

Result<void> TableBuilder::array(const JsonValue& array, int depth, amqp_array_t& out) {
  // Length word, then a kind octet per element.
  if (Result<void> r = charge(4 + array.Size()); !r) return r;
  out.num_entries = static_cast<int>(array.Size());
  out.entries =
      static_cast<amqp_field_value_t*>(allocate(array.Size() * sizeof(amqp_field_value_t)));
  for (rapidjson::SizeType i = 0; i < array.Size(); ++i)
    if (Result<void> r = value(array[i], depth, out.entries[i]); !r) return r;
  return {};
}

// `depth` is the level of the container holding `v`; the kind octet is already charged.
Result<void> TableBuilder::value(const JsonValue& v, int depth, amqp_field_value_t& out) {
  if (v.IsString()) {
    out.kind = AMQP_FIELD_KIND_UTF8;  // longstr 'S': what CC/BCC routing and clients expect
    if (Result<void> r = charge(4 + v.GetStringLength()); !r) return r;
    out.value.bytes = copy(json_string(v));
  } else if (v.IsBool()) {
    out.kind = AMQP_FIELD_KIND_BOOLEAN;
    out.value.boolean = v.GetBool() ? 1 : 0;
    return charge(1);
  } else if (v.IsNull()) {
    out.kind = AMQP_FIELD_KIND_VOID;
  } else if (v.IsInt64()) {
    out.kind = AMQP_FIELD_KIND_I64;
    out.value.i64 = v.GetInt64();
    return charge(8);
  } else if (v.IsNumber()) {
    // Fractions, exponents, and integers above INT64_MAX: RabbitMQ decodes an unsigned 'L' as
    // signed, so 2^63 would arrive negative; a double keeps its magnitude.
    out.kind = AMQP_FIELD_KIND_F64;
    out.value.f64 = v.GetDouble();
    return charge(8);
  } else if (depth >= kMaxHeadersDepth) {
    return invalid("headers",
                   "must not nest more than " + std::to_string(kMaxHeadersDepth) + " levels");
  } else if (v.IsObject()) {
    out.kind = AMQP_FIELD_KIND_TABLE;
    return table(v, depth + 1, out.value.table);
  } else {
    out.kind = AMQP_FIELD_KIND_ARRAY;
    return array(v, depth + 1, out.value.array);
  }
  return {};
}

Result<void> TableBuilder::charge(std::size_t bytes) {
  encoded_ += bytes;
  if (encoded_ > kMaxHeadersBytes)
    return invalid("headers", "must be at most " + std::to_string(kMaxHeadersBytes) +
                                  " bytes once encoded as an AMQP table");
  return {};
}

Result<void> set_headers(const FormFields& fields, AmqpMessage& msg) {
  const std::string* text = find_set(fields, "headers");
  if (text == nullptr) return {};
  rapidjson::Document doc;
  // Iterative parsing, so client input cannot recurse the parser off the stack; header
  // strings are declared UTF-8 ('S'), so the text must be valid UTF-8.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc.Parse<kFlags>(text->data(), text->size());
  if (doc.HasParseError() || !doc.IsObject()) return invalid("headers", "must be a JSON object");
  amqp_basic_properties_t& props = msg.properties();
  TableBuilder builder(msg);
  if (Result<void> r = builder.table(doc, 1, props.headers); !r) return r;
  props._flags |= AMQP_BASIC_HEADERS_FLAG;
  return {};
}

// basic.publish's mandatory bit, not a property: true/false/1/0, as clients spell booleans in
// a form.
Result<void> set_mandatory(const FormFields& fields, bool& mandatory) {
  const std::string* value = find_set(fields, "mandatory");
  if (value == nullptr) return {};
  if (*value == "true" || *value == "1") {
    mandatory = true;
  } else if (*value == "false" || *value == "0") {
    mandatory = false;
  } else {
    return invalid("mandatory", "must be true, false, 1 or 0");
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<AmqpMessage>> build_message(const FormFields& fields,
                                                   const MessageDefaults& defaults) {
  auto msg = std::make_unique<AmqpMessage>();
  // Byte-exact: no strip, no control-character replacement, NULs and CR/LF kept.
  if (auto body = fields.find("body"); body != fields.end()) msg->set_body(body->second);

  amqp_basic_properties_t& props = msg->properties();
  Result<void> r;
  for (std::size_t i = 0; r && i < std::size(kShortstrFields); ++i)
    r = set_shortstr(kShortstrFields[i], fields, *msg);
  for (std::size_t i = 0; r && i < std::size(kOctetFields); ++i)
    r = set_octet(kOctetFields[i], fields, props);
  if (r) r = set_timestamp(fields, props);
  if (r) r = set_headers(fields, *msg);
  bool mandatory = defaults.mandatory;
  if (r) r = set_mandatory(fields, mandatory);
  if (!r) return r.error();
  msg->set_mandatory(mandatory);
  if (defaults.delivery_mode != 0 && !(props._flags & AMQP_BASIC_DELIVERY_MODE_FLAG)) {
    props.delivery_mode = defaults.delivery_mode;
    props._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
  }
  return {std::move(msg)};
}

}  // namespace sluice::worker::publish
