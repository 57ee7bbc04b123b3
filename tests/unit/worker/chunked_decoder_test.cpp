#define BOOST_TEST_MODULE chunked_decoder
#include "worker/chunked_decoder.h"

#include <event2/buffer.h>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using sluice::common::Errc;
using sluice::worker::ChunkedDecoder;
using Status = ChunkedDecoder::Status;
using namespace std::string_literals;

namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();
const std::string kNext = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";  // the pipelined request

struct Buffer {
  evbuffer* b = evbuffer_new();
  Buffer() = default;
  explicit Buffer(const std::string& s) : Buffer() { add(s); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { evbuffer_free(b); }
  void add(const std::string& s) { evbuffer_add(b, s.data(), s.size()); }
  size_t size() const { return evbuffer_get_length(b); }
  std::string str() const {
    std::string out(size(), '\0');
    evbuffer_copyout(b, out.data(), out.size());
    return out;
  }
};

// The wire bytes for a failure message: escaped, and cut short when long.
std::string shown(const std::string& wire) {
  std::string out;
  for (unsigned char c : wire.substr(0, 80)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (wire.size() > 80) out += "... (" + std::to_string(wire.size()) + " bytes)";
  return out;
}

struct Outcome {
  Status status;
  std::string body;
  std::string rest;  // what the decoder left in the input
};

Outcome decode_at_once(const std::string& wire, uint64_t max = kUnlimited) {
  ChunkedDecoder d(max);
  Buffer in(wire);
  Buffer body;
  Status s = d.feed(in.b, body.b);
  if (s == Status::done) BOOST_TEST(d.body_size() == body.size());
  return {s, body.str(), in.str()};
}

// The body arrives one byte per read; the decoder must say `more` until the last byte of the
// body and leave nothing behind in between. The bytes after the body arrive last.
Outcome decode_bytewise(const std::string& chunked, const std::string& after) {
  ChunkedDecoder d(kUnlimited);
  Buffer in;
  Buffer body;
  for (size_t i = 0; i < chunked.size(); ++i) {
    in.add(chunked.substr(i, 1));
    Status s = d.feed(in.b, body.b);
    bool last = i + 1 == chunked.size();
    BOOST_TEST((s == (last ? Status::done : Status::more)),
               "byte " << i << " of " << shown(chunked));
    BOOST_TEST(in.size() == 0u, "byte " << i << " left in the input");
    if (s == Status::failed) return {s, body.str(), in.str()};
  }
  in.add(after);
  Status s = d.feed(in.b, body.b);  // done already: must not touch the next request
  return {s, body.str(), in.str()};
}

// Every byte its own evbuffer chain: the decoder must walk chains, not just the first one.
Outcome decode_scattered(const std::string& wire) {
  ChunkedDecoder d(kUnlimited);
  Buffer in;
  Buffer body;
  for (const char& c : wire)
    evbuffer_add_reference(in.b, &c, 1, nullptr, nullptr);
  Status s = d.feed(in.b, body.b);
  return {s, body.str(), in.str()};
}

void expect_body(const std::string& chunked, const std::string& decoded) {
  BOOST_TEST_CONTEXT(shown(chunked)) {
    Outcome once = decode_at_once(chunked + kNext);
    BOOST_TEST((once.status == Status::done));
    BOOST_TEST(once.body == decoded);
    BOOST_TEST(once.rest == kNext);

    Outcome bytewise = decode_bytewise(chunked, kNext);
    BOOST_TEST((bytewise.status == Status::done));
    BOOST_TEST(bytewise.body == decoded);
    BOOST_TEST(bytewise.rest == kNext);

    std::string wire = chunked + kNext;
    Outcome scattered = decode_scattered(wire);
    BOOST_TEST((scattered.status == Status::done));
    BOOST_TEST(scattered.body == decoded);
    BOOST_TEST(scattered.rest == kNext);

    // Two reads, split at every point: the first read may end anywhere in the framing.
    for (size_t k = 0; k <= wire.size(); ++k) {
      ChunkedDecoder d(kUnlimited);
      Buffer in(wire.substr(0, k));
      Buffer body;
      Status first = d.feed(in.b, body.b);
      if (k < chunked.size()) BOOST_TEST((first == Status::more), "split at " << k);
      in.add(wire.substr(k));
      Status second = d.feed(in.b, body.b);
      BOOST_TEST((second == Status::done), "split at " << k);
      BOOST_TEST(body.str() == decoded, "split at " << k);
      BOOST_TEST(in.str() == kNext, "split at " << k);
    }
  }
}

void expect_error(const std::string& wire, Errc code, const std::string& short_code,
                  uint64_t max = kUnlimited) {
  BOOST_TEST_CONTEXT(shown(wire)) {
    ChunkedDecoder d(max);
    Buffer in(wire);
    Buffer body;
    BOOST_TEST((d.feed(in.b, body.b) == Status::failed));
    BOOST_TEST((d.error().code == code));
    BOOST_TEST(d.error().short_code == short_code);
    BOOST_TEST(!d.error().message.empty());
    in.add("0\r\n\r\n");
    BOOST_TEST((d.feed(in.b, body.b) == Status::failed), "a failure is final");

    // The same error when the bytes come one at a time.
    ChunkedDecoder slow(max);
    Buffer in2;
    Buffer body2;
    Status s = Status::more;
    for (size_t i = 0; i < wire.size() && s == Status::more; ++i) {
      in2.add(wire.substr(i, 1));
      s = slow.feed(in2.b, body2.b);
    }
    BOOST_TEST((s == Status::failed));
    BOOST_TEST((slow.error().code == code));
  }
}

void expect_bad(const std::string& wire) {
  expect_error(wire, Errc::bad_request, "invalid_chunked_body");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_body_decodes_the_same_whole_bytewise_scattered_and_split) {
  expect_body("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
  expect_body("0\r\n\r\n", "");
  expect_body("1\r\n\0\r\n0\r\n\r\n"s, "\0"s);
  // Data that looks like framing is data.
  expect_body("7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(chunk_sizes_are_hex_in_either_case) {
  std::string ten = "0123456789";
  std::string sixteen = "0123456789abcdef";
  std::string twenty_six = "abcdefghijklmnopqrstuvwxyz";
  expect_body("A\r\n" + ten + "\r\na\r\n" + ten + "\r\n0\r\n\r\n", ten + ten);
  expect_body("10\r\n" + sixteen + "\r\n0\r\n\r\n", sixteen);
  expect_body("1A\r\n" + twenty_six + "\r\n1a\r\n" + twenty_six + "\r\n0\r\n\r\n",
              twenty_six + twenty_six);
  std::string big(0x1fF, 'x');
  expect_body("1fF\r\n" + big + "\r\n0\r\n\r\n", big);
}

BOOST_AUTO_TEST_CASE(leading_zeros_do_not_overflow) {
  expect_body("0000000000000000005\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body("00000000000000000000000000000000\r\n\r\n", "");
}

BOOST_AUTO_TEST_CASE(the_largest_64_bit_size_is_a_size_not_an_overflow) {
  ChunkedDecoder d(kUnlimited);
  Buffer in("ffffffffffffffff\r\nabc");
  Buffer body;
  BOOST_TEST((d.feed(in.b, body.b) == Status::more));
  BOOST_TEST(body.str() == "abc");
}

BOOST_AUTO_TEST_CASE(chunk_extensions_are_accepted_and_ignored) {
  expect_body("5;name=value\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body("5 ;x\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body("5\t;x\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body("5;a=1;b=\"two words\"\r\nhello\r\n0;last\r\n\r\n", "hello");
  expect_body("5;\ta=\tb\r\nhello\r\n0\r\n\r\n", "hello");
}

BOOST_AUTO_TEST_CASE(trailer_fields_are_dropped) {
  expect_body("5\r\nhello\r\n0\r\nX-Checksum: 1234\r\nX-Other: y\r\n\r\n", "hello");
  expect_body("0\r\nX: 1\r\n\r\n", "");
}

BOOST_AUTO_TEST_CASE(bare_lf_ends_lines) {
  expect_body("5\nhello\n0\n\n", "hello");
  expect_body("5;x\nhello\r\n0\nX: 1\n\n", "hello");
  expect_body("5\r\nhello\n0\r\nX: 1\r\n\n", "hello");
}

BOOST_AUTO_TEST_CASE(the_decoder_says_more_until_the_last_byte) {
  std::string wire = "5\r\nhello\r\n0\r\nX: 1\r\n\r\n";
  for (size_t k = 0; k < wire.size(); ++k) {
    BOOST_TEST_CONTEXT("first " << k << " bytes") {
      Outcome o = decode_at_once(wire.substr(0, k));
      BOOST_TEST((o.status == Status::more));
      BOOST_TEST(o.rest.empty());
    }
  }
  BOOST_TEST((decode_at_once(wire).status == Status::done));
}

BOOST_AUTO_TEST_CASE(a_finished_decoder_reads_nothing_more) {
  ChunkedDecoder d(kUnlimited);
  Buffer in("0\r\n\r\n");
  Buffer body;
  BOOST_TEST((d.feed(in.b, body.b) == Status::done));
  in.add("5\r\nhello\r\n");
  BOOST_TEST((d.feed(in.b, body.b) == Status::done));
  BOOST_TEST(in.str() == "5\r\nhello\r\n");
  BOOST_TEST(body.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_size_must_be_hex_digits) {
  expect_bad("g\r\nhello\r\n0\r\n\r\n");
  expect_bad("5g\r\nhello\r\n0\r\n\r\n");
  expect_bad("0x5\r\nhello\r\n0\r\n\r\n");
  expect_bad("-5\r\nhello\r\n0\r\n\r\n");
  expect_bad("+5\r\nhello\r\n0\r\n\r\n");
  expect_bad(" 5\r\nhello\r\n0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(an_empty_size_is_refused) {
  expect_bad("\r\nhello\r\n0\r\n\r\n");
  expect_bad("\nhello\r\n0\r\n\r\n");
  expect_bad(";ext\r\nhello\r\n0\r\n\r\n");
  expect_bad("5\r\nhello\r\n\r\n0\r\n\r\n");  // the size after a chunk is empty
}

BOOST_AUTO_TEST_CASE(a_size_past_64_bits_is_bad_framing_not_a_wrapped_size) {
  // 2^64 would wrap to 0: the "body" would end here and the rest be read as a request.
  expect_bad("10000000000000000\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n");
  expect_bad("ffffffffffffffff0\r\n");
  expect_bad("ffffffffffffffffff\r\n");
  expect_bad("10000000000000005\r\nhello\r\n0\r\n\r\n");  // would wrap to 5
  expect_bad("000010000000000000000\r\n");
}

BOOST_AUTO_TEST_CASE(data_longer_than_its_size_is_refused) {
  expect_bad("5\r\nhelloX\r\n0\r\n\r\n");
  expect_bad("5\r\nhello\rX\r\n0\r\n\r\n");
  expect_bad("3\r\nhello\r\n0\r\n\r\n");
  // The stray byte is not taken for the CR or the LF: what follows would parse as framing.
  expect_bad("5\r\nhelloX0\r\n\r\n");
  expect_bad("5\r\nhello\rX0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_size_line_must_end_with_crlf) {
  expect_bad("5\rX\nhello\r\n0\r\n\r\n");
  expect_bad("5;x\rX\nhello\r\n0\r\n\r\n");
  expect_bad("5\rXhello\r\n0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(the_body_must_end_with_an_empty_line) {
  expect_bad("0\r\n\rX");
  expect_bad("0\r\nX: 1\r\n\rX");
}

BOOST_AUTO_TEST_CASE(control_bytes_in_an_extension_are_refused) {
  expect_bad(
      "5;a\x01"
      "b\r\nhello\r\n0\r\n\r\n");
  expect_bad("5;a\0b\r\nhello\r\n0\r\n\r\n"s);
  expect_bad(
      "5;a\x7f"
      "b\r\nhello\r\n0\r\n\r\n");
  expect_bad("5;a\x1b[2Jb\r\nhello\r\n0\r\n\r\n");
  expect_bad("5 \x0b\r\nhello\r\n0\r\n\r\n");
}

// RFC 9112 allows whitespace after the size only before a ';': "5 5" is not a size a proxy
// in front would read the same way.
BOOST_AUTO_TEST_CASE(only_an_extension_may_follow_whitespace_after_the_size) {
  expect_body("5 \t ;x\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body("5  \r\nhello\r\n0\r\n\r\n", "hello");
  expect_bad("5 5\r\nhello\r\n0\r\n\r\n");
  expect_bad("5 x=1\r\nhello\r\n0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_size_line_longer_than_the_limit_is_refused) {
  std::string fits = "5;" + std::string(ChunkedDecoder::kMaxLine - 2, 'a');
  BOOST_REQUIRE(fits.size() == ChunkedDecoder::kMaxLine);
  expect_body(fits + "\r\nhello\r\n0\r\n\r\n", "hello");
  expect_body(fits + "\nhello\r\n0\r\n\r\n", "hello");
  expect_bad(fits + "a\r\nhello\r\n0\r\n\r\n");
  expect_bad(fits + "a\nhello\r\n0\r\n\r\n");
  // A size line that never ends is refused without waiting for its end.
  expect_bad("5;" + std::string(100000, 'a'));
  expect_bad(std::string(100000, '0'));
}

BOOST_AUTO_TEST_CASE(a_trailer_longer_than_the_limits_is_refused) {
  std::string line = "X: " + std::string(ChunkedDecoder::kMaxLine - 3, 'v');
  BOOST_REQUIRE(line.size() == ChunkedDecoder::kMaxLine);
  expect_body("0\r\n" + line + "\r\n\r\n", "");
  expect_bad("0\r\n" + line + "v\r\n\r\n");
  expect_bad("0\r\n" + std::string(100000, 'v'));

  // Lines that each fit but are too many together.
  std::string each = "X: " + std::string(3997, 'v') + "\r\n";  // 4000 bytes before CRLF
  std::string four;
  for (int i = 0; i < 4; ++i)
    four += each;
  expect_body("0\r\n" + four + "\r\n", "");
  expect_bad("0\r\n" + four + each + "\r\n");
}

BOOST_AUTO_TEST_CASE(a_body_over_max_body_size_is_too_large) {
  expect_error("b\r\nhello world\r\n0\r\n\r\n", Errc::too_large, "body_too_large", 10);
  expect_error("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Errc::too_large, "body_too_large", 10);
  expect_error("ffffffffffffffff\r\n", Errc::too_large, "body_too_large", 1u << 20);
  expect_error("1\r\nx\r\n", Errc::too_large, "body_too_large", 0);

  // Refused from the size line, before any of the chunk's data has arrived.
  ChunkedDecoder d(10);
  Buffer in("5\r\nhello\r\n6\r\n");
  Buffer body;
  BOOST_TEST((d.feed(in.b, body.b) == Status::failed));
  BOOST_TEST((d.error().code == Errc::too_large));

  // Exactly max_body_size is fine.
  Outcome o = decode_at_once("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10);
  BOOST_TEST((o.status == Status::done));
  BOOST_TEST(o.body == "helloworld");
  BOOST_TEST((decode_at_once("0\r\n\r\n", 0).status == Status::done));
}
