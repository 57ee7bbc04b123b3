#define BOOST_TEST_MODULE head_scan
#include "worker/head_scan.h"

#include <event2/buffer.h>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using sluice::worker::HeadScan;
using namespace std::string_literals;

namespace {

struct Buffer {
  evbuffer* b = evbuffer_new();
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { evbuffer_free(b); }
  void add(const std::string& s) { evbuffer_add(b, s.data(), s.size()); }
  size_t size() const { return evbuffer_get_length(b); }
};

bool scan_at_once(const std::string& wire) {
  HeadScan scan;
  scan.start();
  Buffer in;
  in.add(wire);
  scan.feed(in.b);
  return scan.nul();
}

// One byte per read, the parser leaving everything in the buffer.
bool scan_bytewise(const std::string& wire) {
  HeadScan scan;
  scan.start();
  Buffer in;
  for (char c : wire) {
    in.add(std::string(1, c));
    scan.feed(in.b);
  }
  return scan.nul();
}

// Every byte its own evbuffer chain, so one feed walks many chains.
bool scan_scattered(const std::string& wire) {
  HeadScan scan;
  scan.start();
  Buffer in;
  for (const char& c : wire)
    evbuffer_add_reference(in.b, &c, 1, nullptr, nullptr);
  scan.feed(in.b);
  return scan.nul();
}

// Reads split at `cuts`; after each feed the parser drains `drain` bytes (at most what is
// in the buffer) from the front and says so with consumed().
bool scan_in_pieces(const std::string& wire, const std::vector<size_t>& cuts, size_t drain) {
  HeadScan scan;
  scan.start();
  Buffer in;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  for (size_t to : ends) {
    in.add(wire.substr(from, to - from));
    from = to;
    scan.feed(in.b);
    size_t n = std::min(drain, in.size());
    evbuffer_drain(in.b, n);
    scan.consumed(n);
  }
  return scan.nul();
}

void expect_scan(const std::string& wire, bool nul) {
  BOOST_TEST(scan_at_once(wire) == nul);
  BOOST_TEST(scan_bytewise(wire) == nul);
  BOOST_TEST(scan_scattered(wire) == nul);
  for (size_t k = 0; k <= wire.size(); ++k) {
    for (size_t drain : {size_t{0}, size_t{1}, size_t{3}, k, wire.size()}) {
      BOOST_TEST(scan_in_pieces(wire, {k}, drain) == nul, "split at " << k << ", drain " << drain);
    }
    if (k + 5 <= wire.size()) {
      BOOST_TEST(scan_in_pieces(wire, {k, k + 2, k + 5}, 2) == nul, "splits from " << k);
    }
  }
}

const std::string kHead = "GET /a HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(a_clean_head_has_no_nul) {
  expect_scan(kHead, false);
  expect_scan("GET / HTTP/1.0\r\n\r\n", false);
}

BOOST_AUTO_TEST_CASE(a_nul_in_the_request_line_is_noted) {
  expect_scan("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"s, true);
  expect_scan("\0GET / HTTP/1.1\r\nHost: x\r\n\r\n"s, true);
}

BOOST_AUTO_TEST_CASE(a_nul_in_a_header_is_noted) {
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\nX-User: alice\0admin\r\n\r\n"s, true);
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\nX-Us\0er: alice\r\n\r\n"s, true);
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\n\0X: y\r\n\r\n"s, true);  // first byte of a line
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\nX: y\0\r\n\r\n"s, true);  // last byte of a field
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\n\r\0\n"s, true);  // a CR then NUL is no empty line
  expect_scan("GET / HTTP/1.1\nHost: x\n\0\n"s, true);
}

BOOST_AUTO_TEST_CASE(a_nul_after_the_empty_line_is_body_not_head) {
  expect_scan(kHead + "bo\0dy"s, false);
  expect_scan(kHead + "\0"s, false);
  expect_scan("GET / HTTP/1.1\nHost: x\n\n\0"s, false);      // LF LF
  expect_scan("GET / HTTP/1.1\r\nHost: x\n\r\n\0"s, false);  // mixed endings
  expect_scan("GET / HTTP/1.1\r\nHost: x\r\n\n\0"s, false);
  expect_scan("GET / HTTP/1.1\r\n\r\n\0"s, false);  // no header fields at all
}

BOOST_AUTO_TEST_CASE(empty_lines_before_the_request_line_are_skipped) {
  // Were they taken for the end of the head, the NUL in the head would go unseen.
  expect_scan("\r\nGET /\0 HTTP/1.1\r\nHost: x\r\n\r\n"s, true);
  expect_scan("\r\n\r\nGET / HTTP/1.1\r\nX: \0\r\n\r\n"s, true);
  expect_scan("\n\n\nGET / HTTP/1.1\r\nX: \0\r\n\r\n"s, true);
  expect_scan("\r\n\r\n" + kHead + "\0"s, false);
}

BOOST_AUTO_TEST_CASE(a_line_with_only_a_cr_inside_is_not_the_end) {
  expect_scan("GET / HTTP/1.1\r\nX: a\rb\r\nY: \0\r\n\r\n"s, true);
  expect_scan("GET / HTTP/1.1\r\n\rX: \0\r\n\r\n"s, true);
}

BOOST_AUTO_TEST_CASE(the_scan_stops_at_the_end_of_the_head) {
  HeadScan scan;
  scan.start();
  Buffer in;
  in.add(kHead);
  scan.feed(in.b);
  BOOST_TEST(!scan.nul());
  in.add("\0\0\0"s);
  scan.feed(in.b);
  BOOST_TEST(!scan.nul());
  // A pipelined next head is not this head: it gets a start() of its own.
  in.add("GET /\0 HTTP/1.1\r\n\r\n"s);
  scan.feed(in.b);
  BOOST_TEST(!scan.nul());
}

BOOST_AUTO_TEST_CASE(a_head_still_arriving_is_scanned_as_it_comes) {
  HeadScan scan;
  scan.start();
  Buffer in;
  in.add("GET / HTTP/1.1\r\nHost: x\r\n");
  scan.feed(in.b);
  BOOST_TEST(!scan.nul());
  in.add("X: a\0"s);
  scan.feed(in.b);
  BOOST_TEST(scan.nul());
}

BOOST_AUTO_TEST_CASE(consumed_bytes_are_neither_rescanned_nor_skipped) {
  // The parser drains the request line; the scan must pick up right after what it saw, so
  // the CRLF it already counted is not counted again (which would end the head early).
  HeadScan scan;
  scan.start();
  Buffer in;
  in.add("GET / HTTP/1.1\r\n");
  scan.feed(in.b);
  evbuffer_drain(in.b, in.size());
  scan.consumed(16);
  in.add("\r");
  scan.feed(in.b);
  in.add("X: \0\r\n\r\n"s);
  scan.feed(in.b);
  BOOST_TEST(scan.nul());

  // Drained partly: the bytes left at the front were seen, the new ones not yet.
  HeadScan part;
  part.start();
  Buffer in2;
  in2.add("GET / HTTP/1.1\r\nHost: x");
  part.feed(in2.b);
  evbuffer_drain(in2.b, 16);
  part.consumed(16);
  in2.add("\r\n\0\r\n\r\n"s);
  part.feed(in2.b);
  BOOST_TEST(part.nul());

  // The request line drained without its CRLF: that CRLF was seen once and is not seen
  // again as an empty line.
  HeadScan line;
  line.start();
  Buffer in3;
  in3.add("GET / HTTP/1.1\r\n");
  line.feed(in3.b);
  evbuffer_drain(in3.b, 14);
  line.consumed(14);
  line.feed(in3.b);
  in3.add("X: \0\r\n\r\n"s);
  line.feed(in3.b);
  BOOST_TEST(line.nul());
}

BOOST_AUTO_TEST_CASE(start_resets_for_the_next_head) {
  HeadScan scan;
  scan.start();
  Buffer in;
  in.add("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n"s);
  scan.feed(in.b);
  BOOST_TEST(scan.nul());
  evbuffer_drain(in.b, in.size());
  scan.consumed(29);

  scan.start();
  in.add(kHead);
  scan.feed(in.b);
  BOOST_TEST(!scan.nul());

  // A finished scan starts over, from the first byte of the input.
  evbuffer_drain(in.b, in.size());
  in.add("GET / HTTP/1.1\r\nX: \0\r\n\r\n"s);
  scan.start();
  scan.feed(in.b);
  BOOST_TEST(scan.nul());

  // Mid-head too: the state of a half-read head does not carry over.
  HeadScan mid;
  mid.start();
  Buffer in2;
  in2.add("GET / HTTP/1.1\r\n");
  mid.feed(in2.b);
  evbuffer_drain(in2.b, in2.size());
  mid.start();
  in2.add("\r\nGET / HTTP/1.1\r\nX: \0\r\n\r\n"s);
  mid.feed(in2.b);
  BOOST_TEST(mid.nul());
}
