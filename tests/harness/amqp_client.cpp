#include "tests/harness/amqp_client.h"

#include <amqp_tcp_socket.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <stdexcept>

#include "worker/backends/amqp_bytes.h"

namespace sluice::test {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string text(const amqp_bytes_t& b) {
  return worker::to_string(b);
}

void write_field(Writer& w, const amqp_field_value_t& v);

void write_table(Writer& w, const amqp_table_t& t) {
  w.StartObject();
  for (int i = 0; i < t.num_entries; ++i) {
    std::string key = text(t.entries[i].key);
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    write_field(w, t.entries[i].value);
  }
  w.EndObject();
}

void write_field(Writer& w, const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      w.Bool(v.value.boolean != 0);
      break;
    case AMQP_FIELD_KIND_I8:
      w.Int(v.value.i8);
      break;
    case AMQP_FIELD_KIND_U8:
      w.Uint(v.value.u8);
      break;
    case AMQP_FIELD_KIND_I16:
      w.Int(v.value.i16);
      break;
    case AMQP_FIELD_KIND_U16:
      w.Uint(v.value.u16);
      break;
    case AMQP_FIELD_KIND_I32:
      w.Int(v.value.i32);
      break;
    case AMQP_FIELD_KIND_U32:
      w.Uint(v.value.u32);
      break;
    case AMQP_FIELD_KIND_I64:
      w.Int64(v.value.i64);
      break;
    case AMQP_FIELD_KIND_U64:
      w.Uint64(v.value.u64);
      break;
    case AMQP_FIELD_KIND_F32:
      w.Double(v.value.f32);
      break;
    case AMQP_FIELD_KIND_F64:
      w.Double(v.value.f64);
      break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
      std::string s = text(v.value.bytes);
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      break;
    }
    case AMQP_FIELD_KIND_TABLE:
      write_table(w, v.value.table);
      break;
    case AMQP_FIELD_KIND_ARRAY:
      w.StartArray();
      for (int i = 0; i < v.value.array.num_entries; ++i)
        write_field(w, v.value.array.entries[i]);
      w.EndArray();
      break;
    default:
      w.Null();
      break;
  }
}

void copy_properties(const amqp_basic_properties_t& p, ReceivedMessage& out) {
  struct Str {
    amqp_flags_t flag;
    const char* name;
    amqp_bytes_t amqp_basic_properties_t::*member;
  };
  static const Str kStrings[] = {
      {AMQP_BASIC_APP_ID_FLAG, "app_id", &amqp_basic_properties_t::app_id},
      {AMQP_BASIC_CONTENT_ENCODING_FLAG, "content_encoding",
       &amqp_basic_properties_t::content_encoding},
      {AMQP_BASIC_CONTENT_TYPE_FLAG, "content_type", &amqp_basic_properties_t::content_type},
      {AMQP_BASIC_CORRELATION_ID_FLAG, "correlation_id", &amqp_basic_properties_t::correlation_id},
      {AMQP_BASIC_EXPIRATION_FLAG, "expiration", &amqp_basic_properties_t::expiration},
      {AMQP_BASIC_MESSAGE_ID_FLAG, "message_id", &amqp_basic_properties_t::message_id},
      {AMQP_BASIC_REPLY_TO_FLAG, "reply_to", &amqp_basic_properties_t::reply_to},
      {AMQP_BASIC_TYPE_FLAG, "type", &amqp_basic_properties_t::type},
      {AMQP_BASIC_USER_ID_FLAG, "user_id", &amqp_basic_properties_t::user_id},
  };
  for (const auto& s : kStrings) {
    if (p._flags & s.flag) out.properties[s.name] = text(p.*(s.member));
  }
  if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) {
    out.properties["delivery_mode"] = std::to_string(p.delivery_mode);
  }
  if (p._flags & AMQP_BASIC_PRIORITY_FLAG) out.properties["priority"] = std::to_string(p.priority);
  if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) {
    out.properties["timestamp"] = std::to_string(p.timestamp);
  }
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    write_table(w, p.headers);
    out.headers_json.assign(buf.GetString(), buf.GetSize());
  }
}

}  // namespace

AmqpClient::AmqpClient(uint16_t port, const std::string& vhost, const std::string& user,
                       const std::string& password)
    : conn_(amqp_new_connection()) {
  amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
  timeval timeout{5, 0};
  if (socket == nullptr || amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) != 0) {
    amqp_destroy_connection(conn_);
    throw std::runtime_error("AmqpClient: cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  amqp_rpc_reply_t r = amqp_login(conn_, vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                  user.c_str(), password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    amqp_destroy_connection(conn_);
    throw std::runtime_error("AmqpClient: login failed");
  }
  amqp_channel_open(conn_, 1);
  check("channel.open");
}

AmqpClient::~AmqpClient() {
  amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn_);
}

void AmqpClient::check(const char* what) {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::string why = "unexpected reply";
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    why = text(static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_text);
  } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    why = amqp_error_string2(r.library_error);
  }
  throw std::runtime_error(std::string("AmqpClient: ") + what + " failed: " + why);
}

void AmqpClient::declare_queue(const std::string& queue, bool durable) {
  amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 0, durable ? 1 : 0, 0, 0,
                     amqp_empty_table);
  check("queue.declare");
}

void AmqpClient::declare_bounded_queue(const std::string& queue, int64_t max_length) {
  amqp_table_entry_t args[2];
  args[0].key = amqp_cstring_bytes("x-max-length");
  args[0].value.kind = AMQP_FIELD_KIND_I64;
  args[0].value.value.i64 = max_length;
  args[1].key = amqp_cstring_bytes("x-overflow");
  args[1].value.kind = AMQP_FIELD_KIND_UTF8;
  args[1].value.value.bytes = amqp_cstring_bytes("reject-publish");
  amqp_table_t table{2, args};
  amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 0, 0, 0, 0, table);
  check("queue.declare (bounded)");
}

void AmqpClient::declare_exchange(const std::string& exchange, const std::string& type) {
  amqp_exchange_declare(conn_, 1, amqp_cstring_bytes(exchange.c_str()),
                        amqp_cstring_bytes(type.c_str()), 0, 0, 0, 0, amqp_empty_table);
  check("exchange.declare");
}

void AmqpClient::bind(const std::string& queue, const std::string& exchange,
                      const std::string& key) {
  amqp_queue_bind(conn_, 1, amqp_cstring_bytes(queue.c_str()), amqp_cstring_bytes(exchange.c_str()),
                  amqp_cstring_bytes(key.c_str()), amqp_empty_table);
  check("queue.bind");
}

void AmqpClient::purge(const std::string& queue) {
  amqp_queue_purge(conn_, 1, amqp_cstring_bytes(queue.c_str()));
  check("queue.purge");
}

void AmqpClient::delete_exchange(const std::string& exchange) {
  amqp_exchange_delete(conn_, 1, amqp_cstring_bytes(exchange.c_str()), 0);
  check("exchange.delete");
}

uint32_t AmqpClient::count(const std::string& queue) {
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 1, 0, 0, 0, amqp_empty_table);
  check("queue.declare (passive)");
  return ok->message_count;
}

std::optional<ReceivedMessage> AmqpClient::get(const std::string& queue) {
  amqp_rpc_reply_t r = amqp_basic_get(conn_, 1, amqp_cstring_bytes(queue.c_str()), 1);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) check("basic.get");
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
  ReceivedMessage m;
  m.exchange = text(ok->exchange);
  m.routing_key = text(ok->routing_key);
  amqp_message_t message;
  amqp_rpc_reply_t read = amqp_read_message(conn_, 1, &message, 0);
  if (read.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("AmqpClient: read failed");
  m.body = text(message.body);
  copy_properties(message.properties, m);
  amqp_destroy_message(&message);
  amqp_maybe_release_buffers(conn_);
  return m;
}

}  // namespace sluice::test
