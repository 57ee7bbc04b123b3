#define BOOST_TEST_MODULE publish_message_fields
#include "worker/modules/publish/message_fields.h"
#include "tests/unit/worker/modules/publish/message_helpers.h"

#include <amqp_framing.h>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using sluice::common::Errc;
using sluice::common::Error;
using sluice::common::FormFields;
using sluice::worker::AmqpMessage;
using sluice::worker::publish::build_message;
using sluice::worker::publish::MessageDefaults;
using Props = amqp_basic_properties_t;

namespace {

std::string text(amqp_bytes_t b) {
  return sluice::test::to_string(b);
}
using sluice::test::build_ok;

// Every error is a 400 "invalid_field" whose sentence names the field and never echoes the
// value (short values such as "3" may coincide with the stated range, so only longer ones are
// checked for leaks).
Error expect_error(const FormFields& fields, const std::string& field) {
  auto r = build_message(fields);
  BOOST_REQUIRE_MESSAGE(!r.ok(), "expected an error for field " << field);
  const Error& e = r.error();
  BOOST_TEST(static_cast<int>(e.code) == static_cast<int>(Errc::bad_request));
  BOOST_TEST(e.short_code == "invalid_field");
  BOOST_TEST(e.message.rfind("field \"" + field + "\" ", 0) == 0, e.message);
  auto value = fields.find(field);
  if (value != fields.end() && value->second.size() >= 4)
    BOOST_TEST(e.message.find(value->second) == std::string::npos, e.message);
  return e;
}

Error expect_error(const std::string& field, const std::string& value) {
  return expect_error(FormFields{{field, value}}, field);
}

Error headers_error(const std::string& json) {
  return expect_error(FormFields{{"headers", json}}, "headers");
}

const amqp_table_t& headers_of(const AmqpMessage& m) {
  BOOST_REQUIRE(m.properties()._flags & AMQP_BASIC_HEADERS_FLAG);
  return m.properties().headers;
}

const amqp_field_value_t* find(const amqp_table_t& table, std::string_view key) {
  for (int i = 0; i < table.num_entries; ++i)
    if (text(table.entries[i].key) == key) return &table.entries[i].value;
  return nullptr;
}

const amqp_field_value_t& at(const amqp_table_t& table, std::string_view key) {
  const amqp_field_value_t* v = find(table, key);
  BOOST_REQUIRE_MESSAGE(v != nullptr, "no header " << key);
  return *v;
}

struct ShortstrCase {
  const char* field;
  amqp_flags_t flag;
  amqp_bytes_t Props::*member;
};

const ShortstrCase kShortstrs[] = {
    {"app_id", AMQP_BASIC_APP_ID_FLAG, &Props::app_id},
    {"content_encoding", AMQP_BASIC_CONTENT_ENCODING_FLAG, &Props::content_encoding},
    {"content_type", AMQP_BASIC_CONTENT_TYPE_FLAG, &Props::content_type},
    {"correlation_id", AMQP_BASIC_CORRELATION_ID_FLAG, &Props::correlation_id},
    {"expire", AMQP_BASIC_EXPIRATION_FLAG, &Props::expiration},
    {"message_id", AMQP_BASIC_MESSAGE_ID_FLAG, &Props::message_id},
    {"reply_to", AMQP_BASIC_REPLY_TO_FLAG, &Props::reply_to},
    {"type", AMQP_BASIC_TYPE_FLAG, &Props::type},
    {"user_id", AMQP_BASIC_USER_ID_FLAG, &Props::user_id},
};

// A value every shortstr accepts, expire included.
std::string shortstr_value(const ShortstrCase& c, std::size_t length) {
  return std::string(length, std::string_view(c.field) == "expire" ? '7' : 'v');
}

FormFields all_fields() {
  return {
      {"body", "hello"},
      {"app_id", "app"},
      {"content_encoding", "gzip"},
      {"content_type", "text/plain"},
      {"correlation_id", "corr-1"},
      {"delivery_mode", "2"},
      {"expire", "60000"},
      {"headers", R"({"a":"b"})"},
      {"message_id", "msg-1"},
      {"priority", "9"},
      {"reply_to", "replies"},
      {"timestamp", "1364403057"},
      {"type", "greeting"},
      {"user_id", "guest"},
  };
}

}  // namespace

// --- body -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(no_fields_give_an_empty_body_and_no_properties) {
  auto m = build_ok({});
  BOOST_TEST(m->body().empty());
  BOOST_TEST(m->properties()._flags == 0u);
}

BOOST_AUTO_TEST_CASE(body_is_byte_exact) {
  const std::string body("  \0bin\r\n\xff\xfe\t \x01\x1f  ", 17);
  auto m = build_ok({{"body", body}});
  BOOST_TEST(m->body() == body);
  BOOST_TEST(m->body().size() == 17u);
  BOOST_TEST(m->properties()._flags == 0u);
}

BOOST_AUTO_TEST_CASE(empty_body_is_an_empty_body) {
  BOOST_TEST(build_ok({{"body", ""}})->body().empty());
}

// --- every field together -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(all_fields_set_every_flag_and_value) {
  auto m = build_ok(all_fields());
  const Props& p = m->properties();
  const amqp_flags_t all =
      AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
      AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_EXPIRATION_FLAG |
      AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_PRIORITY_FLAG |
      AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG |
      AMQP_BASIC_USER_ID_FLAG;
  BOOST_TEST(p._flags == all);
  BOOST_TEST(m->body() == "hello");
  BOOST_TEST(text(p.app_id) == "app");
  BOOST_TEST(text(p.content_encoding) == "gzip");
  BOOST_TEST(text(p.content_type) == "text/plain");
  BOOST_TEST(text(p.correlation_id) == "corr-1");
  BOOST_TEST(p.delivery_mode == 2);
  BOOST_TEST(text(p.expiration) == "60000");
  BOOST_TEST(text(p.message_id) == "msg-1");
  BOOST_TEST(p.priority == 9);
  BOOST_TEST(text(p.reply_to) == "replies");
  BOOST_TEST(p.timestamp == 1364403057u);
  BOOST_TEST(text(p.type) == "greeting");
  BOOST_TEST(text(p.user_id) == "guest");
  BOOST_TEST(p.headers.num_entries == 1);
  BOOST_TEST(text(at(p.headers, "a").value.bytes) == "b");
}

BOOST_AUTO_TEST_CASE(unknown_and_hyphenated_fields_are_ignored) {
  auto m = build_ok({{"content-type", "text/plain"}, {"cluster_id", "c"}, {"foo", "bar"}});
  BOOST_TEST(m->properties()._flags == 0u);
}

BOOST_AUTO_TEST_CASE(empty_fields_are_absent) {
  FormFields fields;
  for (const auto& [name, value] : all_fields())
    fields[name] = "";
  auto m = build_ok(fields);
  BOOST_TEST(m->properties()._flags == 0u);
  BOOST_TEST(m->body().empty());
}

// The properties point into the message itself and its pool: moving the owning pointer around
// (and the containers holding it) must not invalidate them.
BOOST_AUTO_TEST_CASE(properties_survive_moving_the_pointer) {
  std::vector<std::unique_ptr<AmqpMessage>> queue;
  for (int i = 0; i < 50; ++i) {
    FormFields f = all_fields();
    f["app_id"] = "a" + std::to_string(i);  // short: lives in the SSO buffer
    f["message_id"] = std::string(200, 'm') + std::to_string(i);
    queue.push_back(build_ok(f));
  }
  std::vector<std::unique_ptr<AmqpMessage>> moved;
  for (auto& m : queue)
    moved.push_back(std::move(m));
  for (int i = 0; i < 50; ++i) {
    const Props& p = moved[i]->properties();
    BOOST_TEST(text(p.app_id) == "a" + std::to_string(i));
    BOOST_TEST(text(p.message_id) == std::string(200, 'm') + std::to_string(i));
    BOOST_TEST(text(at(p.headers, "a").value.bytes) == "b");
  }
}

// --- string properties ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(each_string_field_sets_only_its_flag) {
  for (const ShortstrCase& c : kShortstrs) {
    BOOST_TEST_CONTEXT("field " << c.field) {
      const std::string value = shortstr_value(c, 8);
      auto m = build_ok({{c.field, value}});
      BOOST_TEST(m->properties()._flags == c.flag);
      BOOST_TEST(text(m->properties().*c.member) == value);
    }
  }
}

BOOST_AUTO_TEST_CASE(string_fields_keep_their_bytes) {
  const std::string raw(" a\0b\r\n\xc3\x28 ", 9);  // spaces, NUL, CR/LF, invalid UTF-8
  auto m = build_ok({{"app_id", raw}, {"type", "0"}});
  BOOST_TEST(text(m->properties().app_id) == raw);
  BOOST_TEST(text(m->properties().type) == "0");  // "0" is truthy in statelessd
}

BOOST_AUTO_TEST_CASE(string_fields_accept_255_bytes_and_refuse_256) {
  for (const ShortstrCase& c : kShortstrs) {
    BOOST_TEST_CONTEXT("field " << c.field) {
      if (std::string_view(c.field) == "expire") continue;  // a 255-digit number is too large
      auto m = build_ok({{c.field, shortstr_value(c, 255)}});
      BOOST_TEST((m->properties().*c.member).len == 255u);
      Error e = expect_error(c.field, shortstr_value(c, 256));
      BOOST_TEST(e.message.find("255 bytes") != std::string::npos, e.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(expire_takes_milliseconds_up_to_ten_years) {
  for (const char* ok : {"0", "1", "60000", "000123", "315360000000"}) {
    auto m = build_ok({{"expire", ok}});
    BOOST_TEST(text(m->properties().expiration) == ok);
  }
  for (const char* bad : {"-1", "+5", " 5", "5 ", "1.5", "1e3", "0x10", "abc", "60s"}) {
    BOOST_TEST_CONTEXT("expire=" << bad) {
      Error e = expect_error("expire", bad);
      BOOST_TEST(e.message == "field \"expire\" must be a number of milliseconds");
    }
  }
  for (const char* big : {"315360000001", "18446744073709551616", "99999999999999999999999"}) {
    BOOST_TEST_CONTEXT("expire=" << big) {
      Error e = expect_error("expire", big);
      BOOST_TEST(e.message.find("315360000000 milliseconds") != std::string::npos, e.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(reply_to_refuses_direct_reply_to) {
  expect_error("reply_to", "amq.rabbitmq.reply-to");
  auto m = build_ok({{"reply_to", "amq.rabbitmq.reply-to.g2dkAA"}});
  BOOST_TEST(text(m->properties().reply_to) == "amq.rabbitmq.reply-to.g2dkAA");
}

// --- octets and timestamp -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(delivery_mode_is_1_or_2) {
  for (const char* ok : {"1", "2", "02"}) {
    auto m = build_ok({{"delivery_mode", ok}});
    BOOST_TEST(m->properties()._flags == AMQP_BASIC_DELIVERY_MODE_FLAG);
    BOOST_TEST(m->properties().delivery_mode == std::stoi(ok));
  }
  for (const char* bad : {"0", "3", "255", "256", "-1", "+1", " 1", "1.0", "two", "0x1"}) {
    BOOST_TEST_CONTEXT("delivery_mode=" << bad) {
      Error e = expect_error("delivery_mode", bad);
      BOOST_TEST(e.message ==
                 "field \"delivery_mode\" must be 1 (non-persistent) or 2 (persistent)");
    }
  }
}

BOOST_AUTO_TEST_CASE(priority_is_an_octet) {
  for (const char* ok : {"0", "9", "255"}) {
    auto m = build_ok({{"priority", ok}});
    BOOST_TEST(m->properties()._flags == AMQP_BASIC_PRIORITY_FLAG);
    BOOST_TEST(m->properties().priority == std::stoi(ok));
  }
  for (const char* bad : {"256", "-1", "1000000000000000000000", "1e2", "0x10", "high", " 5"}) {
    BOOST_TEST_CONTEXT("priority=" << bad) {
      Error e = expect_error("priority", bad);
      BOOST_TEST(e.message == "field \"priority\" must be an integer from 0 to 255");
    }
  }
}

BOOST_AUTO_TEST_CASE(timestamp_is_unix_seconds_up_to_int64_max) {
  for (const char* ok : {"0", "1364403057", "9223372036854775807"}) {
    auto m = build_ok({{"timestamp", ok}});
    BOOST_TEST(m->properties()._flags == AMQP_BASIC_TIMESTAMP_FLAG);
    BOOST_TEST(m->properties().timestamp == std::stoull(ok));
  }
  for (const char* bad : {"-1", "-9223372036854775808", "9223372036854775808",
                          "18446744073709551616", "1.5", "now", "+1", "1364403057 "}) {
    BOOST_TEST_CONTEXT("timestamp=" << bad) {
      Error e = expect_error("timestamp", bad);
      BOOST_TEST(e.message ==
                 "field \"timestamp\" must be Unix seconds from 0 to 9223372036854775807");
    }
  }
}

// --- defaults and mandatory ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_default_delivery_mode_applies_only_when_the_field_is_absent) {
  MessageDefaults persistent{2, false};
  auto m = build_ok({{"body", "x"}}, persistent);
  BOOST_TEST(m->properties()._flags == AMQP_BASIC_DELIVERY_MODE_FLAG);
  BOOST_TEST(m->properties().delivery_mode == 2);
  BOOST_TEST(build_ok({{"delivery_mode", ""}}, persistent)->properties().delivery_mode == 2);
  // A client asking for transient gets it.
  BOOST_TEST(build_ok({{"delivery_mode", "1"}}, persistent)->properties().delivery_mode == 1);
  BOOST_TEST(build_ok({}, MessageDefaults{1, false})->properties().delivery_mode == 1);
  // Value-initialised defaults add nothing (statelessd's behaviour).
  BOOST_TEST(build_ok({}, MessageDefaults{})->properties()._flags == 0u);
  // Still refused when invalid, whatever the default.
  expect_error(FormFields{{"delivery_mode", "3"}}, "delivery_mode");
}

BOOST_AUTO_TEST_CASE(mandatory_is_true_false_1_or_0_and_defaults_to_the_setting) {
  for (const char* yes : {"true", "1"})
    BOOST_TEST(build_ok({{"mandatory", yes}})->mandatory());
  for (const char* no : {"false", "0"})
    BOOST_TEST(!build_ok({{"mandatory", no}}, MessageDefaults{2, true})->mandatory());
  BOOST_TEST(!build_ok({})->mandatory());
  BOOST_TEST(build_ok({}, MessageDefaults{2, true})->mandatory());
  BOOST_TEST(build_ok({{"mandatory", ""}}, MessageDefaults{2, true})->mandatory());
  // Not an AMQP property.
  BOOST_TEST(build_ok({{"mandatory", "true"}})->properties()._flags == 0u);
  for (const char* bad : {"yes", "TRUE", "2", " 1", "on"}) {
    BOOST_TEST_CONTEXT("mandatory=" << bad) {
      Error e = expect_error("mandatory", bad);
      BOOST_TEST(e.message == "field \"mandatory\" must be true, false, 1 or 0");
    }
  }
}

BOOST_AUTO_TEST_CASE(first_invalid_field_is_reported_and_nothing_is_returned) {
  FormFields f = all_fields();
  f["priority"] = "300";
  expect_error(f, "priority");
}

// --- headers --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(headers_convert_every_json_type) {
  auto m = build_ok({{"headers", R"({
      "s": "text", "empty": "", "nul": "a\u0000b", "utf8": "caf\u00e9",
      "i": 42, "neg": -7, "min": -9223372036854775808, "max": 9223372036854775807,
      "big": 9223372036854775808, "f": 1.5, "exp": 1e3,
      "t": true, "no": false, "null": null,
      "obj": {"inner": "x", "n": 1},
      "arr": [1, "two", 3.5, false, null, {"k": "v"}, [7]],
      "none": {}, "nothing": []
    })"}});
  const amqp_table_t& h = headers_of(*m);
  BOOST_TEST(h.num_entries == 18);

  BOOST_TEST(at(h, "s").kind == AMQP_FIELD_KIND_UTF8);
  BOOST_TEST(text(at(h, "s").value.bytes) == "text");
  BOOST_TEST(at(h, "empty").kind == AMQP_FIELD_KIND_UTF8);
  BOOST_TEST(at(h, "empty").value.bytes.len == 0u);
  BOOST_TEST(text(at(h, "nul").value.bytes) == std::string("a\0b", 3));
  BOOST_TEST(text(at(h, "utf8").value.bytes) == "caf\xc3\xa9");

  BOOST_TEST(at(h, "i").kind == AMQP_FIELD_KIND_I64);
  BOOST_TEST(at(h, "i").value.i64 == 42);
  BOOST_TEST(at(h, "neg").value.i64 == -7);
  BOOST_TEST(at(h, "min").kind == AMQP_FIELD_KIND_I64);
  BOOST_TEST(at(h, "min").value.i64 == std::numeric_limits<int64_t>::min());
  BOOST_TEST(at(h, "max").value.i64 == std::numeric_limits<int64_t>::max());
  // RabbitMQ reads an unsigned 'L' as signed, so integers above INT64_MAX travel as doubles.
  BOOST_TEST(at(h, "big").kind == AMQP_FIELD_KIND_F64);
  BOOST_TEST(at(h, "big").value.f64 == 9223372036854775808.0);

  BOOST_TEST(at(h, "f").kind == AMQP_FIELD_KIND_F64);
  BOOST_TEST(at(h, "f").value.f64 == 1.5);
  BOOST_TEST(at(h, "exp").kind == AMQP_FIELD_KIND_F64);
  BOOST_TEST(at(h, "exp").value.f64 == 1000.0);

  BOOST_TEST(at(h, "t").kind == AMQP_FIELD_KIND_BOOLEAN);
  BOOST_TEST(at(h, "t").value.boolean == 1);
  BOOST_TEST(at(h, "no").kind == AMQP_FIELD_KIND_BOOLEAN);
  BOOST_TEST(at(h, "no").value.boolean == 0);
  BOOST_TEST(at(h, "null").kind == AMQP_FIELD_KIND_VOID);

  const amqp_field_value_t& obj = at(h, "obj");
  BOOST_TEST(obj.kind == AMQP_FIELD_KIND_TABLE);
  BOOST_TEST(obj.value.table.num_entries == 2);
  BOOST_TEST(text(at(obj.value.table, "inner").value.bytes) == "x");
  BOOST_TEST(at(obj.value.table, "n").value.i64 == 1);

  const amqp_field_value_t& arr = at(h, "arr");
  BOOST_TEST(arr.kind == AMQP_FIELD_KIND_ARRAY);
  BOOST_REQUIRE(arr.value.array.num_entries == 7);
  const amqp_field_value_t* e = arr.value.array.entries;
  BOOST_TEST(e[0].kind == AMQP_FIELD_KIND_I64);
  BOOST_TEST(e[0].value.i64 == 1);
  BOOST_TEST(e[1].kind == AMQP_FIELD_KIND_UTF8);
  BOOST_TEST(text(e[1].value.bytes) == "two");
  BOOST_TEST(e[2].kind == AMQP_FIELD_KIND_F64);
  BOOST_TEST(e[2].value.f64 == 3.5);
  BOOST_TEST(e[3].kind == AMQP_FIELD_KIND_BOOLEAN);
  BOOST_TEST(e[3].value.boolean == 0);
  BOOST_TEST(e[4].kind == AMQP_FIELD_KIND_VOID);
  BOOST_TEST(e[5].kind == AMQP_FIELD_KIND_TABLE);
  BOOST_TEST(text(at(e[5].value.table, "k").value.bytes) == "v");
  BOOST_TEST(e[6].kind == AMQP_FIELD_KIND_ARRAY);
  BOOST_REQUIRE(e[6].value.array.num_entries == 1);
  BOOST_TEST(e[6].value.array.entries[0].value.i64 == 7);

  BOOST_TEST(at(h, "none").kind == AMQP_FIELD_KIND_TABLE);
  BOOST_TEST(at(h, "none").value.table.num_entries == 0);
  BOOST_TEST(at(h, "nothing").kind == AMQP_FIELD_KIND_ARRAY);
  BOOST_TEST(at(h, "nothing").value.array.num_entries == 0);
}

BOOST_AUTO_TEST_CASE(headers_keep_key_order_and_the_last_of_a_repeated_key) {
  auto m = build_ok({{"headers", R"({"b": 1, "a": 2, "b": "again", "c": null})"}});
  const amqp_table_t& h = headers_of(*m);
  BOOST_REQUIRE(h.num_entries == 3);
  BOOST_TEST(text(h.entries[0].key) == "b");
  BOOST_TEST(h.entries[0].value.kind == AMQP_FIELD_KIND_UTF8);
  BOOST_TEST(text(h.entries[0].value.value.bytes) == "again");
  BOOST_TEST(text(h.entries[1].key) == "a");
  BOOST_TEST(text(h.entries[2].key) == "c");
}

BOOST_AUTO_TEST_CASE(empty_headers_object_sets_an_empty_table) {
  auto m = build_ok({{"headers", " { } "}});
  BOOST_TEST(m->properties()._flags == AMQP_BASIC_HEADERS_FLAG);
  BOOST_TEST(m->properties().headers.num_entries == 0);
}

BOOST_AUTO_TEST_CASE(headers_must_be_a_json_object) {
  for (const char* bad :
       {"not json", "[1,2]", "\"str\"", "42", "null", "true", "{\"a\":1", "{\"a\":1} x", "{'a':1}",
        "{\"a\":1,}", "{\"a\":NaN}", "{a:1}", "{\"a\":\"\xff\"}", "{\"a\":1e999}"}) {
    BOOST_TEST_CONTEXT("headers=" << bad) {
      Error e = headers_error(bad);
      BOOST_TEST(e.message == "field \"headers\" must be a JSON object");
    }
  }
}

namespace {

std::string nested(int levels, char open, char close, const std::string& inner) {
  std::string out;
  for (int i = 1; i < levels; ++i)
    out += open == '{' ? "{\"k\":" : "[";
  out += "{\"leaf\":" + inner + "}";
  for (int i = 1; i < levels; ++i)
    out += close;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(headers_nest_at_most_16_levels) {
  build_ok({{"headers", nested(16, '{', '}', "1")}});
  build_ok({{"headers", nested(15, '{', '}', "[1]")}});
  build_ok({{"headers", "{\"a\":" + nested(15, '[', ']', "1") + "}"}});
  for (const std::string& deep :
       {nested(17, '{', '}', "1"), nested(16, '{', '}', "[]"), nested(16, '{', '}', "{}"),
        "{\"a\":" + nested(16, '[', ']', "1") + "}"}) {
    Error e = headers_error(deep);
    BOOST_TEST(e.message == "field \"headers\" must not nest more than 16 levels");
  }
}

BOOST_AUTO_TEST_CASE(very_deep_headers_fail_without_crashing) {
  // Parsed iteratively: a client cannot recurse the parser (or the builder) off the stack.
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  headers_error("{\"a\":" + deep + "}");
  headers_error(deep);
}

// Keys are shortstrs, and rabbitmq-c consumers cannot read a table with an empty key.
BOOST_AUTO_TEST_CASE(header_keys_have_1_to_255_bytes) {
  const std::string k255(255, 'k');
  auto m = build_ok({{"headers", "{\"" + k255 + "\": {\"" + k255 + "\": 1}, \"K\": 2}"}});
  BOOST_TEST(headers_of(*m).entries[0].key.len == 255u);
  BOOST_TEST(text(headers_of(*m).entries[1].key) == "K");
  for (const std::string& bad :
       {"{\"" + std::string(256, 'k') + "\": 1}", "{\"a\": {\"" + std::string(256, 'k') + "\": 1}}",
        std::string(R"({"": 1})"), std::string(R"({"a": [{"": 1}]})")}) {
    Error e = headers_error(bad);
    BOOST_TEST(e.message == "field \"headers\" must have keys of 1 to 255 bytes");
  }
}

BOOST_AUTO_TEST_CASE(cc_and_bcc_must_be_arrays) {
  auto m = build_ok({{"headers", R"({"CC": ["rk1", "rk2"], "BCC": [], "x": {"CC": "nested"}})"}});
  const amqp_table_t& h = headers_of(*m);
  BOOST_TEST(at(h, "CC").kind == AMQP_FIELD_KIND_ARRAY);
  BOOST_TEST(text(at(h, "CC").value.array.entries[1].value.bytes) == "rk2");
  build_ok({{"headers", R"({"cc": "lowercase is just a header"})"}});
  for (const char* bad : {R"({"CC": "rk"})", R"({"BCC": {"a": 1}})", R"({"CC": null})",
                          R"({"CC": ["ok"], "CC": 1})"}) {
    Error e = headers_error(bad);
    BOOST_TEST(e.message == "field \"headers\" must give CC and BCC as arrays of routing keys");
  }
}

namespace {

std::string string_header(std::size_t length) {
  return "{\"k\":\"" + std::string(length, 'x') + "\"}";
}

}  // namespace

// The cap is on the encoded table: 4 (table length) + 1 + 1 (key) + 1 (kind) + 4 + n.
BOOST_AUTO_TEST_CASE(headers_are_capped_at_64_kib_encoded) {
  const std::size_t fits = sluice::worker::publish::kMaxHeadersBytes - 11;
  auto m = build_ok({{"headers", string_header(fits)}});
  std::vector<char> buffer(2 * sluice::worker::publish::kMaxHeadersBytes);
  amqp_bytes_t out{buffer.size(), buffer.data()};
  size_t offset = 0;
  amqp_table_t table = m->properties().headers;
  BOOST_REQUIRE(amqp_encode_table(out, &table, &offset) == AMQP_STATUS_OK);
  BOOST_TEST(offset == sluice::worker::publish::kMaxHeadersBytes);

  Error e = headers_error(string_header(fits + 1));
  BOOST_TEST(e.message ==
             "field \"headers\" must be at most 65536 bytes once encoded as an AMQP table");
  // Many small entries count their key and kind octets too.
  std::string many = "{";
  for (int i = 0; i < 20000; ++i)
    many += (i ? ",\"" : "\"") + std::to_string(i) + "\":null";
  headers_error(many + "}");
}

// rabbitmq-c itself must be able to encode what we built and read back the same thing.
BOOST_AUTO_TEST_CASE(properties_round_trip_through_rabbitmq_c) {
  FormFields f = all_fields();
  f["headers"] = R"({"s":"v","n":-1,"d":0.25,"b":true,"z":null,"t":{"a":[1,"x"]}})";
  auto m = build_ok(f);
  std::vector<char> buffer(131072);
  Props copy = m->properties();
  int len = amqp_encode_properties(AMQP_BASIC_CLASS, &copy, {buffer.size(), buffer.data()});
  BOOST_REQUIRE(len > 0);

  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  void* decoded = nullptr;
  int rc = amqp_decode_properties(AMQP_BASIC_CLASS, &pool,
                                  {static_cast<size_t>(len), buffer.data()}, &decoded);
  BOOST_REQUIRE(rc == AMQP_STATUS_OK);
  const Props& p = *static_cast<const Props*>(decoded);
  BOOST_TEST(p._flags == m->properties()._flags);
  BOOST_TEST(text(p.expiration) == "60000");
  BOOST_TEST(text(p.user_id) == "guest");
  BOOST_TEST(p.delivery_mode == 2);
  BOOST_TEST(p.priority == 9);
  BOOST_TEST(p.timestamp == 1364403057u);
  BOOST_TEST(p.headers.num_entries == 6);
  BOOST_TEST(at(p.headers, "n").value.i64 == -1);
  BOOST_TEST(at(p.headers, "d").value.f64 == 0.25);
  const amqp_array_t& a = at(at(p.headers, "t").value.table, "a").value.array;
  BOOST_REQUIRE(a.num_entries == 2);
  BOOST_TEST(text(a.entries[1].value.bytes) == "x");
  empty_amqp_pool(&pool);
}
