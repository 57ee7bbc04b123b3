#define BOOST_TEST_MODULE http_framing
#include "worker/http_framing.h"

#include <evhtp.h>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

using sluice::common::Errc;
using sluice::common::http_status;
using sluice::worker::BodyFraming;
using sluice::worker::check_framing;
using sluice::worker::check_header_field;
using sluice::worker::parse_content_length;
using Kind = BodyFraming::Kind;
using namespace std::string_literals;

namespace {

// A real evhtp_headers_t, as libevhtp's parser hands it to the headers hook.
class Headers {
 public:
  Headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
    for (const auto& [key, value] : fields)
      evhtp_headers_add_header(h_, evhtp_header_new(key, value, 1, 1));
  }
  Headers(const Headers&) = delete;
  Headers& operator=(const Headers&) = delete;
  ~Headers() { evhtp_headers_free(h_); }
  evhtp_headers_t* get() const { return h_; }

 private:
  evhtp_headers_t* h_ = evhtp_headers_new();
};

BodyFraming framing_ok(const Headers& h, bool http11 = true) {
  auto r = check_framing(h.get(), http11);
  BOOST_TEST_REQUIRE(r.ok(), "refused: " << (r.ok() ? "" : r.error().short_code));
  return *r;
}

void framing_refused(const Headers& h, int status, const std::string& short_code,
                     bool http11 = true) {
  auto r = check_framing(h.get(), http11);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(http_status(r.error().code) == status);
  BOOST_TEST(r.error().short_code == short_code);
  BOOST_TEST(!r.error().message.empty());
}

BodyFraming with_te(const char* value) {
  return framing_ok(Headers{{"Host", "x"}, {"Transfer-Encoding", value}});
}

void te_refused(const char* value, int status, const std::string& short_code) {
  BOOST_TEST_CONTEXT("Transfer-Encoding: " << value) {
    framing_refused(Headers{{"Host", "x"}, {"Transfer-Encoding", value}}, status, short_code);
  }
}

bool field_ok(std::string_view name, std::string_view value) {
  return check_header_field(name, value).ok();
}

}  // namespace

// --- check_header_field ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ordinary_fields_are_accepted) {
  BOOST_TEST(field_ok("Host", "example.com"));
  BOOST_TEST(field_ok("Content-Length", "8"));
  BOOST_TEST(field_ok("X-Custom_Header.1", "a value, with: colons; and \"quotes\""));
  BOOST_TEST(field_ok("!#$%&'*+-.^_`|~09azAZ", "v"));
  BOOST_TEST(field_ok("X-Empty", ""));
  BOOST_TEST(field_ok("X-Tab", "a\tb"));
  BOOST_TEST(field_ok("X-Utf8", "caf\xc3\xa9"));  // obs-text is not framing
}

BOOST_AUTO_TEST_CASE(a_name_with_whitespace_before_the_colon_is_refused) {
  // libevhtp takes "Content-Length : 8" for an unknown field named "Content-Length ".
  auto r = check_header_field("Content-Length ", "8");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == Errc::bad_request));
  BOOST_TEST(r.error().short_code == "invalid_header");
  BOOST_TEST(!field_ok("Transfer-Encoding\t", "chunked"));
  BOOST_TEST(!field_ok(" Host", "x"));
  BOOST_TEST(!field_ok("X Y", "v"));
}

BOOST_AUTO_TEST_CASE(an_empty_name_is_refused) {
  auto r = check_header_field("", "v");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(http_status(r.error().code) == 400);
  BOOST_TEST(r.error().short_code == "invalid_header");
}

BOOST_AUTO_TEST_CASE(a_name_takes_exactly_the_rfc_9110_token_characters) {
  std::string tchars =
      "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int c = 0; c < 256; ++c) {
    std::string name = "X" + std::string(1, static_cast<char>(c)) + "Y";
    bool token = tchars.find(static_cast<char>(c)) != std::string::npos;
    BOOST_TEST(field_ok(name, "v") == token, "byte 0x" << std::hex << c);
  }
}

BOOST_AUTO_TEST_CASE(control_bytes_in_a_name_are_refused) {
  BOOST_TEST(!field_ok("X\x01Y", "v"));
  BOOST_TEST(!field_ok("X-User\0Admin"s, "v"));
  BOOST_TEST(!field_ok("X\rY", "v"));
  BOOST_TEST(!field_ok("X\nY", "v"));
  BOOST_TEST(!field_ok("X\x7f", "v"));
}

BOOST_AUTO_TEST_CASE(nul_cr_or_lf_in_a_value_is_refused) {
  for (const std::string& value :
       {"alice\0admin"s, "\0"s, "a\rb"s, "a\nb"s, "a\r\nSet-Cookie: x"s, "x\r"s, "\nx"s}) {
    BOOST_TEST_CONTEXT("value of " << value.size() << " bytes") {
      auto r = check_header_field("X-User", value);
      BOOST_TEST_REQUIRE(!r.ok());
      BOOST_TEST(http_status(r.error().code) == 400);
      BOOST_TEST(r.error().short_code == "invalid_header");
    }
  }
}

// --- parse_content_length -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(content_length_is_digits_with_optional_whitespace) {
  std::vector<std::pair<std::string, uint64_t>> good = {
      {"8", 8},
      {" 8 ", 8},
      {"\t8", 8},
      {"8\t", 8},
      {"0", 0},
      {"00", 0},
      {"012", 12},
      {"1234567890", 1234567890},
      {"9999999999999999999", 9999999999999999999ull},  // 19 digits: the most that always fit
  };
  for (const auto& [text, expected] : good) {
    uint64_t out = 12345;
    BOOST_TEST(parse_content_length(text, out), "\"" << text << "\"");
    BOOST_TEST(out == expected, "\"" << text << "\"");
  }
}

BOOST_AUTO_TEST_CASE(content_length_refuses_signs_lists_hex_empty_and_overflow) {
  for (std::string text :
       {"+8", "-1", "8, 8", "8,8", "0x8", "", " ", "\t", "8 8", "8a", "a8", "8.0", "1e3",
        "18446744073709551616",   // 2^64
        "18446744073709551615",   // 2^64-1: 20 digits are refused, even when they fit
        "99999999999999999999",   // would wrap
        "184467440737095516160",  // 2^64 * 10
        "\v8", "8\r"}) {
    uint64_t out = 0;
    BOOST_TEST(!parse_content_length(text, out), "\"" << text << "\"");
  }
  uint64_t out = 0;
  BOOST_TEST(!parse_content_length("8\0"s, out));
}

// --- check_framing --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_request_has_no_body) {
  BodyFraming f = framing_ok(Headers{{"Host", "example.com"}});
  BOOST_TEST((f.kind == Kind::none));
  BOOST_TEST(f.length == 0u);
  BOOST_TEST(!f.expect_continue);
}

BOOST_AUTO_TEST_CASE(http11_needs_a_host_http10_does_not) {
  framing_refused(Headers{}, 400, "missing_host");
  framing_refused(Headers{{"Content-Length", "3"}}, 400, "missing_host");
  BOOST_TEST((framing_ok(Headers{}, false).kind == Kind::none));
  BOOST_TEST(framing_ok(Headers{{"Content-Length", "3"}}, false).length == 3u);
  BOOST_TEST((framing_ok(Headers{{"host", "x"}}).kind == Kind::none));  // names ignore case
  BOOST_TEST((framing_ok(Headers{{"HOST", "x"}}).kind == Kind::none));
}

BOOST_AUTO_TEST_CASE(two_hosts_are_refused_in_either_version) {
  framing_refused(Headers{{"Host", "a"}, {"Host", "b"}}, 400, "invalid_host");
  framing_refused(Headers{{"Host", "a"}, {"host", "a"}}, 400, "invalid_host");
  framing_refused(Headers{{"Host", "a"}, {"Host", "b"}}, 400, "invalid_host", false);
}

BOOST_AUTO_TEST_CASE(content_length_gives_the_body_length) {
  BodyFraming f = framing_ok(Headers{{"Host", "x"}, {"Content-Length", "12"}});
  BOOST_TEST((f.kind == Kind::length));
  BOOST_TEST(f.length == 12u);
  BOOST_TEST((framing_ok(Headers{{"Host", "x"}, {"content-length", " 12 "}}).kind == Kind::length));
}

BOOST_AUTO_TEST_CASE(content_length_zero_is_no_body) {
  BodyFraming f = framing_ok(Headers{{"Host", "x"}, {"Content-Length", "0"}});
  BOOST_TEST((f.kind == Kind::none));
  BOOST_TEST(f.length == 0u);
}

BOOST_AUTO_TEST_CASE(a_malformed_content_length_is_refused) {
  for (const char* value : {"+8", "-1", "8, 8", "0x8", "", "abc", "99999999999999999999"}) {
    BOOST_TEST_CONTEXT("Content-Length: " << value) {
      framing_refused(Headers{{"Host", "x"}, {"Content-Length", value}}, 400,
                      "invalid_content_length");
    }
  }
}

BOOST_AUTO_TEST_CASE(two_lengths_or_a_length_beside_chunked_are_ambiguous) {
  framing_refused(Headers{{"Host", "x"}, {"Content-Length", "8"}, {"Content-Length", "8"}}, 400,
                  "ambiguous_length");
  framing_refused(Headers{{"Host", "x"}, {"Content-Length", "8"}, {"content-length", "9"}}, 400,
                  "ambiguous_length");
  framing_refused(Headers{{"Host", "x"}, {"Content-Length", "8"}, {"Transfer-Encoding", "chunked"}},
                  400, "ambiguous_length");
  framing_refused(Headers{{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "0"}},
                  400, "ambiguous_length");
  framing_refused(Headers{{"Transfer-Encoding", "chunked"}, {"Content-Length", "8"}}, 400,
                  "ambiguous_length", false);
}

BOOST_AUTO_TEST_CASE(chunked_is_recognised_in_any_case_and_with_whitespace) {
  // libevhtp reads all but the first as "no body" and parses the body as the next request.
  for (const char* value : {"chunked", "CHUNKED", "Chunked", " chunked ", "\tchunked", "chunked\t",
                            ", chunked", "chunked,", " , chunked , "}) {
    BOOST_TEST_CONTEXT("Transfer-Encoding: " << value) {
      BodyFraming f = with_te(value);
      BOOST_TEST((f.kind == Kind::chunked));
    }
  }
  BOOST_TEST(
      (framing_ok(Headers{{"Host", "x"}, {"transfer-encoding", "chunked"}}).kind == Kind::chunked));
  BOOST_TEST((framing_ok(Headers{{"Transfer-Encoding", "chunked"}}, false).kind == Kind::chunked));
}

BOOST_AUTO_TEST_CASE(another_coding_before_chunked_is_not_implemented) {
  te_refused("gzip, chunked", 501, "unsupported_transfer_coding");
  te_refused("gzip,chunked", 501, "unsupported_transfer_coding");
  te_refused("x-custom, deflate, chunked", 501, "unsupported_transfer_coding");
  auto r =
      check_framing(Headers{{"Host", "x"}, {"Transfer-Encoding", "gzip, chunked"}}.get(), true);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == Errc::not_implemented));
}

BOOST_AUTO_TEST_CASE(a_list_not_ending_in_one_chunked_is_bad_request) {
  te_refused("chunked, gzip", 400, "invalid_transfer_encoding");
  te_refused("chunked, chunked", 400, "invalid_transfer_encoding");
  te_refused("chunked,CHUNKED", 400, "invalid_transfer_encoding");
  te_refused("gzip", 400, "invalid_transfer_encoding");
  te_refused("identity", 400, "invalid_transfer_encoding");
  te_refused("", 400, "invalid_transfer_encoding");
  te_refused(" , ", 400, "invalid_transfer_encoding");
  te_refused("chunkedx", 400, "invalid_transfer_encoding");
  te_refused("chunked x", 400, "invalid_transfer_encoding");
  te_refused("\"chunked\"", 400, "invalid_transfer_encoding");
}

BOOST_AUTO_TEST_CASE(several_transfer_encoding_headers_are_one_list) {
  framing_refused(
      Headers{{"Host", "x"}, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}}, 501,
      "unsupported_transfer_coding");
  framing_refused(
      Headers{{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "gzip"}}, 400,
      "invalid_transfer_encoding");
  framing_refused(
      Headers{{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"transfer-encoding", "chunked"}},
      400, "invalid_transfer_encoding");
  BOOST_TEST(
      (framing_ok(
           Headers{{"Host", "x"}, {"Transfer-Encoding", ""}, {"Transfer-Encoding", "chunked"}})
           .kind == Kind::chunked));
}

BOOST_AUTO_TEST_CASE(expect_100_continue_in_any_case) {
  for (const char* value : {"100-continue", "100-Continue", "100-CONTINUE", " 100-continue "}) {
    BOOST_TEST_CONTEXT("Expect: " << value) {
      BodyFraming f =
          framing_ok(Headers{{"Host", "x"}, {"Expect", value}, {"Content-Length", "5"}});
      BOOST_TEST(f.expect_continue);
      BOOST_TEST((f.kind == Kind::length));
      BOOST_TEST(f.length == 5u);
    }
  }
  BodyFraming f = framing_ok(Headers{{"Host", "x"}, {"expect", "100-continue"}});
  BOOST_TEST(f.expect_continue);
  BOOST_TEST((f.kind == Kind::none));
  BOOST_TEST(
      framing_ok(
          Headers{{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Expect", "100-continue"}})
          .expect_continue);
}

BOOST_AUTO_TEST_CASE(any_other_expectation_fails) {
  for (const char* value : {"something", "", "100-continue, x", "100", "200-ok", "100-continued"}) {
    BOOST_TEST_CONTEXT("Expect: " << value) {
      framing_refused(Headers{{"Host", "x"}, {"Expect", value}}, 417, "expectation_failed");
    }
  }
  framing_refused(Headers{{"Host", "x"}, {"Expect", "100-continue"}, {"Expect", "x"}}, 417,
                  "expectation_failed");
  auto r = check_framing(Headers{{"Host", "x"}, {"Expect", "something"}}.get(), true);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == Errc::expectation_failed));
}

BOOST_AUTO_TEST_CASE(a_host_value_must_look_like_a_host) {
  for (const char* host : {"example.com", "example.com:8000", "10.0.0.1", "[::1]:80", " x ",
                           "[::ffff:10.0.0.1]", "a:", "a:65535", "xn--d1acj3b.example"})
    BOOST_TEST((framing_ok(Headers{{"Host", host}}).kind == Kind::none), host);
  for (const char* host : {"",
                           " ",
                           "a b",
                           "a\x01"
                           "b",
                           "a/b",
                           "a?b",
                           "a#b",
                           "a@b",
                           "[::1",
                           "[]",
                           "[zz]",
                           "[::1]x",
                           "::1",
                           ":",
                           "a:xx",
                           "a:-1",
                           "a:0x50",
                           "a:80:80",
                           "a:99999",
                           "a:123456"})
    framing_refused(Headers{{"Host", host}}, 400, "invalid_host");
  framing_refused(Headers{{"Host", std::string(300, 'a').c_str()}}, 400, "invalid_host");
}

BOOST_AUTO_TEST_CASE(a_second_authorization_or_content_type_is_refused) {
  framing_refused(
      Headers{{"Host", "x"}, {"Authorization", "Basic a"}, {"authorization", "Basic b"}}, 400,
      "ambiguous_header");
  framing_refused(Headers{{"Host", "x"}, {"Content-Type", "a/b"}, {"Content-Type", "a/b"}}, 400,
                  "ambiguous_header");
  BOOST_TEST(
      (framing_ok(Headers{{"Host", "x"}, {"Authorization", "Basic a"}, {"Content-Type", "a/b"}})
           .kind == Kind::none));
}

// RFC 9112 section 9.3: HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked,
// and never with a transfer coding. Tokens are case-insensitive and come as lists.
BOOST_AUTO_TEST_CASE(keep_alive_follows_the_connection_tokens) {
  BOOST_TEST(framing_ok(Headers{{"Host", "x"}}).keep_alive);
  for (const char* close : {"close", "CLOSE", "Close", "keep-alive, close", "close, te", " close "})
    BOOST_TEST(!framing_ok(Headers{{"Host", "x"}, {"Connection", close}}).keep_alive, close);
  BOOST_TEST(!framing_ok(Headers{{"Host", "x"}, {"Connection", "te"}, {"Connection", "close"}})
                  .keep_alive);
  BOOST_TEST(framing_ok(Headers{{"Host", "x"}, {"Connection", "closed"}}).keep_alive);
  BOOST_TEST(!framing_ok(Headers{}, false).keep_alive);
  BOOST_TEST(framing_ok(Headers{{"Connection", "Keep-Alive"}}, false).keep_alive);
  BOOST_TEST(!framing_ok(Headers{{"Connection", "keep-alive"}, {"Connection", "close"}}, false)
                  .keep_alive);
  BOOST_TEST(
      !framing_ok(Headers{{"Connection", "keep-alive"}, {"Transfer-Encoding", "chunked"}}, false)
           .keep_alive);
}
