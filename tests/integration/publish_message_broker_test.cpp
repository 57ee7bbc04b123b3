// build_message against a real RabbitMQ: the broker accepts every property we build, the body
// and the headers table come back unchanged through basic.get, and the broker rules that
// build_message enforces (each of which closes the publishing channel) are pinned here next to
// the refusal, so relaxing a check, or a broker that changes its mind, shows up. Cases named
// broker_... or rabbitmq_c_... check only what RabbitMQ or its C client does (the reasons
// behind build_message's rules), not sluice.
#define BOOST_TEST_MODULE publish_message_broker
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/harness/harness.h"
#include "tests/unit/worker/modules/publish/message_helpers.h"
#include "worker/modules/publish/message_fields.h"

namespace st = sluice::test;
using sluice::common::FormFields;
using sluice::worker::AmqpMessage;
using sluice::worker::publish::build_message;
using Props = amqp_basic_properties_t;

namespace {

amqp_bytes_t bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string text(amqp_bytes_t b) {
  return sluice::test::to_string(b);
}
using sluice::test::build_ok;

const amqp_field_value_t& at(const amqp_table_t& table, std::string_view key) {
  const amqp_field_value_t* found = nullptr;
  for (int i = 0; i < table.num_entries && found == nullptr; ++i)
    if (text(table.entries[i].key) == key) found = &table.entries[i].value;
  BOOST_REQUIRE_MESSAGE(found != nullptr, "no header " << key);
  return *found;
}

struct Message {
  amqp_message_t msg{};
  ~Message() { amqp_destroy_message(&msg); }
};

// One blocking rabbitmq-c connection to the shared node, as guest on vhost "/". Every queue
// is exclusive, so it disappears with the connection.
class Broker {
 public:
  Broker() : conn_(amqp_new_connection()) {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    BOOST_REQUIRE(socket != nullptr);
    int rc = amqp_socket_open(socket, "127.0.0.1", st::shared_rabbit().amqp_port());
    BOOST_REQUIRE_MESSAGE(rc == AMQP_STATUS_OK, amqp_error_string2(rc));
    timeval timeout{10, 0};
    amqp_set_rpc_timeout(conn_, &timeout);
    amqp_rpc_reply_t r =
        amqp_login(conn_, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    BOOST_REQUIRE(r.reply_type == AMQP_RESPONSE_NORMAL);
  }
  ~Broker() {
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn_);
  }
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // A fresh channel each time: a channel the broker closed is never reused.
  amqp_channel_t open_channel() {
    amqp_channel_open(conn_, ++channel_);
    BOOST_REQUIRE(amqp_get_rpc_reply(conn_).reply_type == AMQP_RESPONSE_NORMAL);
    return channel_;
  }

  void declare(amqp_channel_t ch, const std::string& queue) {
    amqp_queue_declare(conn_, ch, bytes(queue), 0, 0, 1, 0, amqp_empty_table);
    BOOST_REQUIRE(amqp_get_rpc_reply(conn_).reply_type == AMQP_RESPONSE_NORMAL);
  }

  // To the default exchange, so the routing key is the queue name.
  void publish(amqp_channel_t ch, const std::string& queue, const Props& props,
               const std::string& body) {
    int rc =
        amqp_basic_publish(conn_, ch, amqp_empty_bytes, bytes(queue), 0, 0, &props, bytes(body));
    BOOST_REQUIRE_MESSAGE(rc == AMQP_STATUS_OK, amqp_error_string2(rc));
  }

  // 0 while the channel is open; otherwise the reply code of the broker's channel.close
  // (answered with close-ok). A passive queue.declare is the round trip that shows it.
  int channel_status(amqp_channel_t ch, const std::string& queue) {
    amqp_queue_declare(conn_, ch, bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    BOOST_REQUIRE(r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION);
    BOOST_REQUIRE(r.reply.id == AMQP_CHANNEL_CLOSE_METHOD);
    amqp_channel_close_ok_t ok{};
    BOOST_REQUIRE(amqp_send_method(conn_, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) == 0);
    return static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code;
  }

  // basic.get (no-ack), retried briefly; nullptr if the queue stays empty.
  std::unique_ptr<Message> get(amqp_channel_t ch, const std::string& queue) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      amqp_rpc_reply_t r = amqp_basic_get(conn_, ch, bytes(queue), 1);
      BOOST_REQUIRE(r.reply_type == AMQP_RESPONSE_NORMAL);
      if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
        auto m = std::make_unique<Message>();
        amqp_rpc_reply_t read = amqp_read_message(conn_, ch, &m->msg, 0);
        BOOST_REQUIRE_MESSAGE(read.reply_type == AMQP_RESPONSE_NORMAL,
                              "amqp_read_message: " << amqp_error_string2(read.library_error));
        return m;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
  }

  // basic.get of one message whose read must fail; returns rabbitmq-c's error code.
  int read_fails(amqp_channel_t ch, const std::string& queue) {
    amqp_rpc_reply_t r = amqp_basic_get(conn_, ch, bytes(queue), 1);
    BOOST_REQUIRE(r.reply_type == AMQP_RESPONSE_NORMAL);
    BOOST_REQUIRE(r.reply.id == AMQP_BASIC_GET_OK_METHOD);
    Message m;
    amqp_rpc_reply_t read = amqp_read_message(conn_, ch, &m.msg, 0);
    BOOST_REQUIRE(read.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION);
    return read.library_error;
  }

  // Publishes, reads the message back and checks the channel survived.
  std::unique_ptr<Message> round_trip(const std::string& queue, const Props& props,
                                      const std::string& body) {
    amqp_channel_t ch = open_channel();
    declare(ch, queue);
    publish(ch, queue, props, body);
    std::unique_ptr<Message> m = get(ch, queue);
    BOOST_REQUIRE_MESSAGE(m != nullptr, "nothing came back from " << queue);
    BOOST_TEST(channel_status(ch, queue) == 0);
    return m;
  }

 private:
  amqp_connection_state_t conn_;
  amqp_channel_t channel_ = 0;
};

std::string body_bytes(const amqp_message_t& m) {
  return text(m.body);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_property_and_header_type_round_trips) {
  const std::string body("bin\0\r\n\xff ", 8);
  auto built = build_ok({
      {"body", body},
      {"app_id", "sluice-test"},
      {"content_encoding", "identity"},
      {"content_type", "application/octet-stream"},
      {"correlation_id", std::string("corr\0\xfe", 6)},
      {"delivery_mode", "2"},
      {"expire", "600000"},
      {"headers", R"({"s":"caf\u00e9","i":-42,"big":9223372036854775808,"f":0.5,"t":true,
                      "z":null,"o":{"a":[1,"x",false,{"deep":[]}]},"e":{},"K":"key"})"},
      {"message_id", "m-1"},
      {"priority", "255"},
      {"reply_to", "replies"},
      {"timestamp", "9223372036854775807"},
      {"type", "t"},
      {"user_id", "guest"},  // must be the connecting user
  });
  Broker broker;
  auto got = broker.round_trip("pmb-all", built->properties(), built->body());
  const Props& p = got->msg.properties;
  BOOST_TEST(body_bytes(got->msg) == body);
  BOOST_TEST(p._flags == built->properties()._flags);
  BOOST_TEST(text(p.app_id) == "sluice-test");
  BOOST_TEST(text(p.content_encoding) == "identity");
  BOOST_TEST(text(p.content_type) == "application/octet-stream");
  BOOST_TEST(text(p.correlation_id) == std::string("corr\0\xfe", 6));
  BOOST_TEST(p.delivery_mode == 2);
  BOOST_TEST(text(p.expiration) == "600000");
  BOOST_TEST(text(p.message_id) == "m-1");
  BOOST_TEST(p.priority == 255);
  BOOST_TEST(text(p.reply_to) == "replies");
  BOOST_TEST(p.timestamp == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  BOOST_TEST(text(p.type) == "t");
  BOOST_TEST(text(p.user_id) == "guest");

  const amqp_table_t& h = p.headers;
  BOOST_TEST(h.num_entries == 9);
  BOOST_TEST(at(h, "s").kind == AMQP_FIELD_KIND_UTF8);
  BOOST_TEST(text(at(h, "s").value.bytes) == "caf\xc3\xa9");
  BOOST_TEST(at(h, "i").kind == AMQP_FIELD_KIND_I64);
  BOOST_TEST(at(h, "i").value.i64 == -42);
  BOOST_TEST(at(h, "big").kind == AMQP_FIELD_KIND_F64);
  BOOST_TEST(at(h, "big").value.f64 == 9223372036854775808.0);
  BOOST_TEST(at(h, "f").value.f64 == 0.5);
  BOOST_TEST(at(h, "t").kind == AMQP_FIELD_KIND_BOOLEAN);
  BOOST_TEST(at(h, "t").value.boolean == 1);
  BOOST_TEST(at(h, "z").kind == AMQP_FIELD_KIND_VOID);
  BOOST_TEST(at(h, "e").kind == AMQP_FIELD_KIND_TABLE);
  BOOST_TEST(text(at(h, "K").value.bytes) == "key");
  const amqp_field_value_t& o = at(h, "o");
  BOOST_REQUIRE(o.kind == AMQP_FIELD_KIND_TABLE);
  const amqp_field_value_t& a = at(o.value.table, "a");
  BOOST_REQUIRE(a.kind == AMQP_FIELD_KIND_ARRAY);
  BOOST_REQUIRE(a.value.array.num_entries == 4);
  BOOST_TEST(a.value.array.entries[0].value.i64 == 1);
  BOOST_TEST(text(a.value.array.entries[1].value.bytes) == "x");
  BOOST_TEST(a.value.array.entries[2].kind == AMQP_FIELD_KIND_BOOLEAN);
  BOOST_TEST(a.value.array.entries[3].kind == AMQP_FIELD_KIND_TABLE);
  BOOST_TEST(at(a.value.array.entries[3].value.table, "deep").kind == AMQP_FIELD_KIND_ARRAY);
}

namespace {

std::string nested_16_levels() {
  std::string json;
  for (int i = 1; i < 16; ++i)
    json += "{\"k\":";
  json += "{\"leaf\":1}";
  return json + std::string(15, '}');
}

}  // namespace

// The limits build_message allows are ones the broker takes: longest shortstrs and keys,
// deepest nesting, largest table, the extreme octets and expirations, an empty body.
BOOST_AUTO_TEST_CASE(the_largest_accepted_values_are_accepted_by_the_broker) {
  const std::string s255(255, 's');
  const std::string big_header =
      "{\"k\":\"" + std::string(sluice::worker::publish::kMaxHeadersBytes - 11, 'x') + "\"}";
  const std::vector<FormFields> cases = {
      {{"app_id", s255},
       {"content_encoding", s255},
       {"content_type", s255},
       {"correlation_id", s255},
       {"message_id", s255},
       {"reply_to", s255},
       {"type", s255},
       {"headers", "{\"" + s255 + "\":{\"" + s255 + "\":\"" + s255 + "\"}}"}},
      {{"headers", nested_16_levels()}, {"delivery_mode", "1"}, {"priority", "0"}},
      {{"headers", big_header}, {"expire", "315360000000"}, {"timestamp", "0"}},
      {{"body", ""}},
  };
  Broker broker;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    BOOST_TEST_CONTEXT("case " << i) {
      auto built = build_ok(cases[i]);
      auto got =
          broker.round_trip("pmb-limits-" + std::to_string(i), built->properties(), built->body());
      BOOST_TEST(got->msg.properties._flags == built->properties()._flags);
      BOOST_TEST(body_bytes(got->msg) == built->body());
    }
  }
}

BOOST_AUTO_TEST_CASE(expire_zero_is_accepted) {
  // With no consumer a zero TTL drops the message at once, so only the channel is checked.
  auto built = build_ok({{"expire", "0"}, {"body", "gone"}});
  Broker broker;
  amqp_channel_t ch = broker.open_channel();
  broker.declare(ch, "pmb-ttl0");
  broker.publish(ch, "pmb-ttl0", built->properties(), built->body());
  BOOST_TEST(broker.channel_status(ch, "pmb-ttl0") == 0);
}

// RabbitMQ's sender-selected distribution: CC adds routing keys, BCC too but is stripped.
// Broker behaviour only: build_message passes both headers on as they are.
BOOST_AUTO_TEST_CASE(broker_routes_cc_and_bcc_headers_to_more_queues) {
  auto built =
      build_ok({{"body", "fan"}, {"headers", R"({"CC":["pmb-cc-2"],"BCC":["pmb-cc-3"],"x":1})"}});
  Broker broker;
  amqp_channel_t ch = broker.open_channel();
  for (const char* q : {"pmb-cc-1", "pmb-cc-2", "pmb-cc-3"})
    broker.declare(ch, q);
  broker.publish(ch, "pmb-cc-1", built->properties(), built->body());
  for (const char* q : {"pmb-cc-1", "pmb-cc-2", "pmb-cc-3"}) {
    BOOST_TEST_CONTEXT("queue " << q) {
      auto got = broker.get(ch, q);
      BOOST_REQUIRE(got != nullptr);
      BOOST_TEST(body_bytes(got->msg) == "fan");
      const amqp_table_t& h = got->msg.properties.headers;
      BOOST_TEST(at(h, "CC").kind == AMQP_FIELD_KIND_ARRAY);
      for (int i = 0; i < h.num_entries; ++i)
        BOOST_TEST(text(h.entries[i].key) != "BCC");
    }
  }
  BOOST_TEST(broker.channel_status(ch, "pmb-cc-1") == 0);
}

namespace {

// Properties build_message can never produce, set by hand, with the form fields it refuses
// instead. Each must close the channel with PRECONDITION_FAILED.
struct Refusal {
  const char* what;
  FormFields fields;  // refused by build_message
  void (*set)(Props& props, amqp_table_entry_t& header);
};

const Refusal kRefusals[] = {
    {"delivery_mode 3",
     {{"delivery_mode", "3"}},
     [](Props& p, amqp_table_entry_t&) {
       p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
       p.delivery_mode = 3;
     }},
    {"delivery_mode 0",
     {{"delivery_mode", "0"}},
     [](Props& p, amqp_table_entry_t&) {
       p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
       p.delivery_mode = 0;
     }},
    {"expiration above ten years",
     {{"expire", "315360000001"}},
     [](Props& p, amqp_table_entry_t&) {
       p._flags = AMQP_BASIC_EXPIRATION_FLAG;
       p.expiration = amqp_cstring_bytes("315360000001");
     }},
    {"negative expiration",
     {{"expire", "-1"}},
     [](Props& p, amqp_table_entry_t&) {
       p._flags = AMQP_BASIC_EXPIRATION_FLAG;
       p.expiration = amqp_cstring_bytes("-1");
     }},
    {"direct reply-to",
     {{"reply_to", "amq.rabbitmq.reply-to"}},
     [](Props& p, amqp_table_entry_t&) {
       p._flags = AMQP_BASIC_REPLY_TO_FLAG;
       p.reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to");
     }},
    {"CC as a string",
     {{"headers", R"({"CC":"rk"})"}},
     [](Props& p, amqp_table_entry_t& h) {
       h.key = amqp_cstring_bytes("CC");
       h.value.kind = AMQP_FIELD_KIND_UTF8;
       h.value.value.bytes = amqp_cstring_bytes("rk");
       p._flags = AMQP_BASIC_HEADERS_FLAG;
       p.headers = amqp_table_t{1, &h};
     }},
};

}  // namespace

BOOST_AUTO_TEST_CASE(what_the_broker_refuses_build_message_refuses) {
  Broker broker;
  int n = 0;
  for (const Refusal& r : kRefusals) {
    BOOST_TEST_CONTEXT(r.what) {
      BOOST_TEST(!build_message(r.fields).ok());
      Props props{};
      amqp_table_entry_t header{};
      r.set(props, header);
      const std::string queue = "pmb-refused-" + std::to_string(n++);
      amqp_channel_t ch = broker.open_channel();
      broker.declare(ch, queue);
      broker.publish(ch, queue, props, "x");
      BOOST_TEST(broker.channel_status(ch, queue) == AMQP_PRECONDITION_FAILED);
    }
  }
}

// Not checked by build_message (it does not know the user): the caller must compare user_id.
// Broker behaviour only: it refuses a user_id that is not the connection's user.
BOOST_AUTO_TEST_CASE(broker_closes_the_channel_for_another_users_user_id) {
  auto built = build_ok({{"user_id", "someone-else"}});
  Broker broker;
  amqp_channel_t ch = broker.open_channel();
  broker.declare(ch, "pmb-user");
  broker.publish(ch, "pmb-user", built->properties(), "x");
  BOOST_TEST(broker.channel_status(ch, "pmb-user") == AMQP_PRECONDITION_FAILED);
}

// Why integers above INT64_MAX become doubles: the broker decodes an unsigned 'L' as signed,
// so once it re-encodes the headers (here because it strips BCC; also for dead-lettering)
// 2^63 comes back as a negative 'l'. Broker behaviour only: the headers are set by hand.
BOOST_AUTO_TEST_CASE(broker_returns_unsigned_64_bit_headers_signed) {
  amqp_table_entry_t headers[2] = {};
  headers[0].key = amqp_cstring_bytes("u");
  headers[0].value.kind = AMQP_FIELD_KIND_U64;
  headers[0].value.value.u64 = 9223372036854775808ULL;
  headers[1].key = amqp_cstring_bytes("BCC");
  headers[1].value.kind = AMQP_FIELD_KIND_ARRAY;
  Props props{};
  props._flags = AMQP_BASIC_HEADERS_FLAG;
  props.headers = amqp_table_t{2, headers};
  Broker broker;
  auto got = broker.round_trip("pmb-u64", props, "x");
  const amqp_field_value_t& u = at(got->msg.properties.headers, "u");
  BOOST_TEST(u.kind == AMQP_FIELD_KIND_I64);
  BOOST_TEST(u.value.i64 == std::numeric_limits<int64_t>::min());
}

// Why empty header keys are refused: the broker passes them on, but rabbitmq-c's
// amqp_read_message (amqp_table_clone) cannot read such a message. Last, on its own
// connection, since the failed read leaves that connection in an unknown state. rabbitmq-c's
// behaviour (the refusal itself is unit-tested in message_fields_test).
BOOST_AUTO_TEST_CASE(rabbitmq_c_cannot_read_a_message_with_an_empty_header_key) {
  BOOST_TEST(!build_message({{"headers", R"({"": 1})"}}).ok());
  amqp_table_entry_t header{};
  header.key = amqp_empty_bytes;
  header.value.kind = AMQP_FIELD_KIND_I64;
  Props props{};
  props._flags = AMQP_BASIC_HEADERS_FLAG;
  props.headers = amqp_table_t{1, &header};
  Broker broker;
  amqp_channel_t ch = broker.open_channel();
  broker.declare(ch, "pmb-empty-key");
  broker.publish(ch, "pmb-empty-key", props, "");  // no body frames left behind
  BOOST_TEST(broker.read_fails(ch, "pmb-empty-key") == AMQP_STATUS_INVALID_PARAMETER);
}
