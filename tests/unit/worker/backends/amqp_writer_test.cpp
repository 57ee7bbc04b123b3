#define BOOST_TEST_MODULE amqp_writer
// The AMQP frames sluice writes itself: each is decoded by rabbitmq-c's own frame parser
// (amqp_handle_input) and compared byte for byte with what rabbitmq-c writes for the same call
// (amqp_send_method, amqp_basic_publish), body frames split at frame_max as rabbitmq-c does;
// and flush() over a socketpair that takes part of the bytes, none of them, or is closed.
#include "worker/backends/amqp_writer.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <boost/test/unit_test.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"

using sluice::common::UniqueFd;
using sluice::worker::AmqpWriter;
using Flush = AmqpWriter::Flush;

namespace {

constexpr size_t kFrameMax = 4096;
constexpr size_t kChunk = kFrameMax - 8;  // body bytes per frame: type, channel, size, end

amqp_bytes_t bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string text(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

// A connected AF_UNIX stream pair: `near` is the writer's end (non-blocking), `far` the
// broker's.
struct SocketPair {
  UniqueFd near_end, far_end;
  SocketPair() {
    int fds[2];
    BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    near_end.reset(fds[0]);
    far_end.reset(fds[1]);
    BOOST_REQUIRE(fcntl(near_end.get(), F_SETFL, O_NONBLOCK) == 0);
    BOOST_REQUIRE(fcntl(far_end.get(), F_SETFL, O_NONBLOCK) == 0);
  }
  // Whatever the far end can read now.
  std::string take() {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = read(far_end.get(), buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

// Everything the writer has queued, written to a socketpair and read back.
std::string written(AmqpWriter& writer, SocketPair& pair) {
  std::string out;
  for (int i = 0; i < 10000; ++i) {
    Flush f = writer.flush();
    out += pair.take();
    if (f == Flush::done) return out;
    BOOST_REQUIRE(f == Flush::blocked);
  }
  BOOST_FAIL("flush() never finished");
  return out;
}

// A new rabbitmq-c connection is in its handshake state, where sending and tuning are
// refused; the server's protocol header, as amqp_handle_input decodes it, ends that state.
void past_handshake(amqp_connection_state_t conn, size_t frame_max) {
  std::string header("AMQP\x00\x00\x09\x01", 8);
  amqp_frame_t f{};
  BOOST_REQUIRE(amqp_handle_input(conn, bytes(header), &f) == 8);
  BOOST_REQUIRE(f.frame_type != 0);  // rabbitmq-c's pseudo-frame for a protocol header
  BOOST_REQUIRE(amqp_tune_connection(conn, 0, static_cast<int>(frame_max), 0) == 0);
}

// rabbitmq-c's own client on a blocking socketpair, tuned to frame_max, to see what it writes.
// rabbitmq-c waits until the socket takes everything, so a thread reads the far end as it
// writes; one call per Reference (its write end is shut down to end the reading).
class Reference {
 public:
  explicit Reference(size_t frame_max) : conn_(amqp_new_connection()) {
    int fds[2];
    BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    near_ = fds[0];
    far_.reset(fds[1]);
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    BOOST_REQUIRE(socket != nullptr);
    amqp_tcp_socket_set_sockfd(socket, near_);  // rabbitmq-c closes it
    past_handshake(conn_, frame_max);
  }
  ~Reference() { amqp_destroy_connection(conn_); }
  Reference(const Reference&) = delete;
  Reference& operator=(const Reference&) = delete;

  std::string method(amqp_channel_t channel, amqp_method_number_t id, void* decoded) {
    return capture([&] { return amqp_send_method(conn_, channel, id, decoded); });
  }
  std::string publish(amqp_channel_t channel, const std::string& exchange,
                      const std::string& routing_key, bool mandatory,
                      const amqp_basic_properties_t& props, const std::string& body) {
    return capture([&] {
      return amqp_basic_publish(conn_, channel, bytes(exchange), bytes(routing_key),
                                mandatory ? 1 : 0, 0, &props, bytes(body));
    });
  }
  std::string heartbeat() {
    amqp_frame_t f{};
    f.frame_type = AMQP_FRAME_HEARTBEAT;
    f.channel = 0;
    return capture([&] { return amqp_send_frame(conn_, &f); });
  }

 private:
  template <class Send>
  std::string capture(Send send) {
    std::string out;
    std::thread reader([&] {
      char buf[65536];
      for (ssize_t n; (n = read(far_.get(), buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<size_t>(n));
    });
    int rc = send();
    shutdown(near_, SHUT_WR);
    reader.join();
    BOOST_REQUIRE_MESSAGE(rc == AMQP_STATUS_OK, amqp_error_string2(rc));
    return out;
  }

  amqp_connection_state_t conn_;
  int near_ = -1;  // owned by conn_
  UniqueFd far_;
};

// A frame as rabbitmq-c's parser decoded it, copied out of its pools.
struct Frame {
  uint8_t type = 0;
  amqp_channel_t channel = 0;
  amqp_method_number_t method = 0;
  std::string exchange, routing_key;  // basic.publish
  bool mandatory = false;
  uint64_t body_size = 0;  // content header
  amqp_flags_t flags = 0;
  std::string content_type, message_id;
  uint8_t delivery_mode = 0;
  int header_entries = -1;
  std::string body;        // body frame
  std::string reply_text;  // channel.close / connection.close
  uint16_t reply_code = 0;
};

// Decodes `wire` with amqp_handle_input; every byte must belong to a whole frame.
std::vector<Frame> decode(const std::string& wire) {
  amqp_connection_state_t conn = amqp_new_connection();
  past_handshake(conn, 131072);  // the largest frame_max used here
  std::vector<Frame> frames;
  amqp_bytes_t rest = bytes(wire);
  while (rest.len > 0) {
    amqp_frame_t f{};
    int used = amqp_handle_input(conn, rest, &f);
    BOOST_REQUIRE_MESSAGE(used > 0, "amqp_handle_input: " << amqp_error_string2(used));
    rest.bytes = static_cast<char*>(rest.bytes) + used;
    rest.len -= static_cast<size_t>(used);
    if (f.frame_type == 0) continue;  // a frame's first part only
    Frame out;
    out.type = f.frame_type;
    out.channel = f.channel;
    if (f.frame_type == AMQP_FRAME_METHOD) {
      out.method = f.payload.method.id;
      if (out.method == AMQP_BASIC_PUBLISH_METHOD) {
        auto* p = static_cast<amqp_basic_publish_t*>(f.payload.method.decoded);
        out.exchange = text(p->exchange);
        out.routing_key = text(p->routing_key);
        out.mandatory = p->mandatory != 0;
      } else if (out.method == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* c = static_cast<amqp_channel_close_t*>(f.payload.method.decoded);
        out.reply_code = c->reply_code;
        out.reply_text = text(c->reply_text);
      }
    } else if (f.frame_type == AMQP_FRAME_HEADER) {
      BOOST_TEST(f.payload.properties.class_id == AMQP_BASIC_CLASS);
      out.body_size = f.payload.properties.body_size;
      auto* p = static_cast<amqp_basic_properties_t*>(f.payload.properties.decoded);
      out.flags = p->_flags;
      if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) out.content_type = text(p->content_type);
      if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) out.message_id = text(p->message_id);
      if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) out.delivery_mode = p->delivery_mode;
      if (p->_flags & AMQP_BASIC_HEADERS_FLAG) out.header_entries = p->headers.num_entries;
    } else if (f.frame_type == AMQP_FRAME_BODY) {
      out.body = text(f.payload.body_fragment);
    }
    frames.push_back(std::move(out));
  }
  amqp_destroy_connection(conn);
  return frames;
}

// Persistent text/plain with a message id and a one-entry headers table.
struct Properties {
  amqp_table_entry_t header{};
  amqp_basic_properties_t props{};
  Properties() {
    header.key = amqp_cstring_bytes("x-try");
    header.value.kind = AMQP_FIELD_KIND_I32;
    header.value.value.i32 = 3;
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("text/plain");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes("m-1");
    props.headers = amqp_table_t{1, &header};
  }
};

struct Writer {
  SocketPair pair;
  AmqpWriter writer{pair.near_end.get(), kFrameMax};
  Writer() { std::signal(SIGPIPE, SIG_IGN); }  // as in every sluice process
  std::string publish(amqp_channel_t channel, const std::string& body, bool mandatory = false) {
    Properties p;
    BOOST_REQUIRE(writer.add_publish(channel, amqp_cstring_bytes("amq.direct"),
                                     amqp_cstring_bytes("rk"), mandatory, p.props, bytes(body)));
    return written(writer, pair);
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + i % 26);
  return s;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_method_frame_is_what_rabbitmq_c_writes, Writer) {
  amqp_channel_close_t close{};
  close.reply_code = AMQP_REPLY_SUCCESS;
  close.reply_text = amqp_cstring_bytes("bye");
  BOOST_REQUIRE(writer.add_method(7, AMQP_CHANNEL_CLOSE_METHOD, &close));
  BOOST_TEST(writer.pending() > 0u);
  std::string wire = written(writer, pair);
  BOOST_TEST(writer.pending() == 0u);

  std::vector<Frame> frames = decode(wire);
  BOOST_REQUIRE(frames.size() == 1u);
  BOOST_TEST(frames[0].type == AMQP_FRAME_METHOD);
  BOOST_TEST(frames[0].channel == 7);
  BOOST_TEST(frames[0].method == AMQP_CHANNEL_CLOSE_METHOD);
  BOOST_TEST(frames[0].reply_code == AMQP_REPLY_SUCCESS);
  BOOST_TEST(frames[0].reply_text == "bye");
  BOOST_TEST(wire == Reference(kFrameMax).method(7, AMQP_CHANNEL_CLOSE_METHOD, &close));

  amqp_confirm_select_t select{};
  BOOST_REQUIRE(writer.add_method(1, AMQP_CONFIRM_SELECT_METHOD, &select));
  BOOST_TEST(written(writer, pair) ==
             Reference(kFrameMax).method(1, AMQP_CONFIRM_SELECT_METHOD, &select));
}

BOOST_FIXTURE_TEST_CASE(a_heartbeat_is_an_empty_frame_on_channel_0, Writer) {
  writer.add_heartbeat();
  std::string wire = written(writer, pair);
  BOOST_TEST(wire == std::string("\x08\x00\x00\x00\x00\x00\x00\xce", 8));
  BOOST_TEST(wire == Reference(kFrameMax).heartbeat());
  std::vector<Frame> frames = decode(wire);
  BOOST_REQUIRE(frames.size() == 1u);
  BOOST_TEST(frames[0].type == AMQP_FRAME_HEARTBEAT);
}

BOOST_FIXTURE_TEST_CASE(a_small_publish_is_method_header_and_one_body_frame, Writer) {
  std::string wire = publish(3, "hello", true);
  std::vector<Frame> frames = decode(wire);
  BOOST_REQUIRE(frames.size() == 3u);
  BOOST_TEST(frames[0].method == AMQP_BASIC_PUBLISH_METHOD);
  BOOST_TEST(frames[0].exchange == "amq.direct");
  BOOST_TEST(frames[0].routing_key == "rk");
  BOOST_TEST(frames[0].mandatory);
  BOOST_TEST(frames[1].type == AMQP_FRAME_HEADER);
  BOOST_TEST(frames[1].body_size == 5u);
  BOOST_TEST(frames[1].content_type == "text/plain");
  BOOST_TEST(frames[1].message_id == "m-1");
  BOOST_TEST(frames[1].delivery_mode == 2);
  BOOST_TEST(frames[1].header_entries == 1);
  BOOST_TEST(frames[2].type == AMQP_FRAME_BODY);
  BOOST_TEST(frames[2].body == "hello");
  for (const Frame& f : frames)
    BOOST_TEST(f.channel == 3);
  Properties p;
  BOOST_TEST(wire == Reference(kFrameMax).publish(3, "amq.direct", "rk", true, p.props, "hello"));
}

// Around the size where a body needs a second frame, and well past it: the bytes are
// rabbitmq-c's, every body frame but the last is full, and the pieces add up to the body.
BOOST_FIXTURE_TEST_CASE(a_body_is_split_at_frame_max_as_rabbitmq_c_splits_it, Writer) {
  Properties p;
  for (size_t size : {size_t{0}, size_t{1}, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk,
                      3 * kChunk + 17, size_t{200000}}) {
    BOOST_TEST_CONTEXT("body of " << size << " bytes") {
      std::string body = pattern(size);
      std::string wire = publish(1, body);
      std::vector<Frame> frames = decode(wire);
      BOOST_REQUIRE(frames.size() >= 2u);
      BOOST_TEST(frames[1].body_size == size);
      size_t body_frames = frames.size() - 2;
      BOOST_TEST(body_frames == (size + kChunk - 1) / kChunk);  // none for an empty body
      std::string joined;
      for (size_t i = 2; i < frames.size(); ++i) {
        BOOST_TEST(frames[i].type == AMQP_FRAME_BODY);
        if (i + 1 < frames.size()) BOOST_TEST(frames[i].body.size() == kChunk);
        joined += frames[i].body;
      }
      BOOST_TEST(joined == body);
      BOOST_TEST(wire == Reference(kFrameMax).publish(1, "amq.direct", "rk", false, p.props, body));
    }
  }
}

BOOST_AUTO_TEST_CASE(the_broker_s_usual_frame_max_gives_the_same_bytes_as_rabbitmq_c) {
  SocketPair pair;
  AmqpWriter writer(pair.near_end.get(), 131072);
  Properties p;
  std::string body = pattern(300000);
  BOOST_REQUIRE(writer.add_publish(2, amqp_cstring_bytes(""), amqp_cstring_bytes("queue"), false,
                                   p.props, bytes(body)));
  std::string wire = written(writer, pair);
  BOOST_TEST(decode(wire).size() == 2u + 3u);
  BOOST_TEST(wire == Reference(131072).publish(2, "", "queue", false, p.props, body));
}

// Frames come out in the order they were added, whatever the channel.
BOOST_FIXTURE_TEST_CASE(frames_keep_their_order_and_channels, Writer) {
  Properties p;
  amqp_confirm_select_t select{};
  BOOST_REQUIRE(writer.add_method(5, AMQP_CONFIRM_SELECT_METHOD, &select));
  BOOST_REQUIRE(writer.add_publish(5, amqp_cstring_bytes("a"), amqp_cstring_bytes("1"), false,
                                   p.props, bytes("one")));
  writer.add_heartbeat();
  BOOST_REQUIRE(writer.add_publish(9, amqp_cstring_bytes("b"), amqp_cstring_bytes("2"), false,
                                   p.props, bytes(pattern(kChunk + 5))));
  std::vector<Frame> frames = decode(written(writer, pair));
  std::vector<int> types, channels;
  for (const Frame& f : frames) {
    types.push_back(f.type);
    channels.push_back(f.channel);
  }
  std::vector<int> want_types = {1, 1, 2, 3, 8, 1, 2, 3, 3};
  std::vector<int> want_channels = {5, 5, 5, 5, 0, 9, 9, 9, 9};
  BOOST_TEST(types == want_types, boost::test_tools::per_element());
  BOOST_TEST(channels == want_channels, boost::test_tools::per_element());
  BOOST_TEST(frames[3].body == "one");
  BOOST_TEST(frames[5].exchange == "b");
}

// Nothing is queued for a call that fails: the connection's byte stream stays whole.
BOOST_FIXTURE_TEST_CASE(what_cannot_be_encoded_is_refused_and_queues_nothing, Writer) {
  Properties p;
  std::string long_name(256, 'x');  // a shortstr holds 255 bytes
  BOOST_TEST(!writer.add_publish(1, bytes(long_name), amqp_cstring_bytes("rk"), false, p.props,
                                 bytes("x")));
  BOOST_TEST(!writer.add_publish(1, amqp_cstring_bytes("ex"), bytes(long_name), false, p.props,
                                 bytes("x")));
  // Properties larger than a frame: 200 headers of 40 bytes each.
  std::vector<std::string> keys;
  keys.reserve(200);  // entries point into it
  std::vector<amqp_table_entry_t> entries(200);
  for (size_t i = 0; i < entries.size(); ++i) {
    keys.push_back("header-" + std::to_string(i) + std::string(30, 'k'));
    entries[i].key = bytes(keys.back());
    entries[i].value.kind = AMQP_FIELD_KIND_I32;
  }
  amqp_basic_properties_t big{};
  big._flags = AMQP_BASIC_HEADERS_FLAG;
  big.headers = amqp_table_t{static_cast<int>(entries.size()), entries.data()};
  BOOST_TEST(!writer.add_publish(1, amqp_cstring_bytes("ex"), amqp_cstring_bytes("rk"), false, big,
                                 bytes("x")));
  amqp_channel_close_t close{};
  close.reply_text = bytes(long_name);
  BOOST_TEST(!writer.add_method(1, AMQP_CHANNEL_CLOSE_METHOD, &close));
  amqp_confirm_select_t select{};
  BOOST_TEST(!writer.add_method(1, 0x7fff7fff, &select));  // no such method
  BOOST_TEST(writer.pending() == 0u);
  BOOST_TEST((writer.flush() == Flush::done));
  BOOST_TEST(pair.take().empty());

  // And the writer still works.
  std::vector<Frame> frames = decode(publish(1, "after"));
  BOOST_REQUIRE(frames.size() == 3u);
  BOOST_TEST(frames[2].body == "after");
}

BOOST_FIXTURE_TEST_CASE(flush_with_nothing_queued_is_done, Writer) {
  BOOST_TEST((writer.flush() == Flush::done));
  BOOST_TEST(writer.pending() == 0u);
}

// A broker that stops reading: flush() writes what the socket takes and says blocked, keeps
// the rest, and carries on from there once the far end reads; nothing is lost or repeated.
BOOST_FIXTURE_TEST_CASE(a_full_socket_blocks_and_the_rest_follows_later, Writer) {
  int small = 4096;
  BOOST_REQUIRE(setsockopt(pair.near_end.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  Properties p;
  std::string body = pattern(1 << 20);
  BOOST_REQUIRE(writer.add_publish(4, amqp_cstring_bytes("ex"), amqp_cstring_bytes("rk"), false,
                                   p.props, bytes(body)));
  size_t queued = writer.pending();
  BOOST_TEST(queued > body.size());

  BOOST_TEST((writer.flush() == Flush::blocked));
  size_t left = writer.pending();
  BOOST_TEST(left > 0u);
  BOOST_TEST(left < queued);                       // a partial write
  BOOST_TEST((writer.flush() == Flush::blocked));  // still full: nothing more goes
  BOOST_TEST(writer.pending() == left);

  std::string wire = pair.take();
  BOOST_TEST(wire.size() == queued - left);
  int rounds = 0;
  for (Flush f = writer.flush(); f != Flush::done; f = writer.flush()) {
    BOOST_REQUIRE((f == Flush::blocked));
    wire += pair.take();
    BOOST_REQUIRE(++rounds < 100000);
  }
  wire += pair.take();
  BOOST_TEST(rounds > 1);
  BOOST_TEST(writer.pending() == 0u);
  BOOST_TEST(wire.size() == queued);
  std::vector<Frame> frames = decode(wire);
  std::string joined;
  for (size_t i = 2; i < frames.size(); ++i)
    joined += frames[i].body;
  BOOST_TEST(joined == body);
  BOOST_TEST(wire == Reference(kFrameMax).publish(4, "ex", "rk", false, p.props, body));
}

BOOST_FIXTURE_TEST_CASE(a_closed_socket_fails_the_flush, Writer) {
  pair.far_end.reset();
  writer.add_heartbeat();
  BOOST_TEST((writer.flush() == Flush::failed));  // EPIPE, not a SIGPIPE
  BOOST_TEST(writer.pending() > 0u);
}

BOOST_AUTO_TEST_CASE(a_descriptor_that_is_not_open_fails_the_flush) {
  UniqueFd closed(open("/dev/null", O_RDONLY | O_CLOEXEC));
  int fd = closed.get();
  closed.reset();
  AmqpWriter writer(fd, kFrameMax);
  writer.add_heartbeat();
  BOOST_TEST((writer.flush() == Flush::failed));
}
