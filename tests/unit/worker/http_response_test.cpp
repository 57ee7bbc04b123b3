#define BOOST_TEST_MODULE http_response
#include "worker/http_response.h"

#include <evhtp.h>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using sluice::worker::format_response;
using sluice::worker::reason_phrase;
using sluice::worker::ResponseHead;
using namespace std::string_literals;

namespace {

class Headers {
 public:
  Headers(std::initializer_list<std::pair<std::string, std::string>> fields) {
    for (const auto& [key, value] : fields)
      add(key, value);
  }
  Headers(const Headers&) = delete;
  Headers& operator=(const Headers&) = delete;
  ~Headers() { evhtp_headers_free(h_); }
  // With explicit lengths, so a value may hold a NUL as a client's bytes can.
  void add(const std::string& key, const std::string& value) {
    evhtp_header_t* h = evhtp_header_new(key.c_str(), "", 1, 1);
    free(h->val);
    h->val = static_cast<char*>(malloc(value.size() + 1));
    memcpy(h->val, value.data(), value.size());
    h->val[value.size()] = '\0';
    h->vlen = value.size();
    evhtp_headers_add_header(h_, h);
  }
  evhtp_headers_t* get() const { return h_; }

 private:
  evhtp_headers_t* h_ = evhtp_headers_new();
};

// A response split the way a client reads it: lines up to the first empty one, then the body.
struct Parsed {
  std::string status_line;
  std::vector<std::string> fields;
  std::string body;

  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& f : fields)
      n += f.compare(0, name.size() + 1, std::string(name) + ":") == 0;
    return n;
  }
  std::string value(std::string_view name) const {
    for (const auto& f : fields) {
      if (f.compare(0, name.size() + 2, std::string(name) + ": ") == 0) {
        return f.substr(name.size() + 2);
      }
    }
    return "<absent>";
  }
};

Parsed parse(const std::string& out) {
  Parsed p;
  size_t end = out.find("\r\n\r\n");
  BOOST_TEST_REQUIRE(end != std::string::npos, "no empty line in: " << out);
  std::string head = out.substr(0, end + 2);
  p.body = out.substr(end + 4);
  // A bare CR or LF anywhere in the head would be a line break to some client.
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r') BOOST_TEST_REQUIRE(head[i + 1] == '\n', "bare CR at " << i);
    if (head[i] == '\n') BOOST_TEST_REQUIRE(head[i - 1] == '\r', "bare LF at " << i);
    BOOST_TEST_REQUIRE(head[i] != '\0', "NUL at " << i);
  }
  size_t at = 0;
  while (at < head.size()) {
    size_t eol = head.find("\r\n", at);
    std::string line = head.substr(at, eol - at);
    if (at == 0) {
      p.status_line = line;
    } else {
      p.fields.push_back(line);
    }
    at = eol + 2;
  }
  return p;
}

Parsed respond(const ResponseHead& head, std::string_view body = "hello",
               evhtp_headers_t* headers = nullptr, std::string_view type = "text/plain") {
  std::string out;
  format_response(out, head, headers, type, body);
  return parse(out);
}

ResponseHead status(int code) {
  ResponseHead h;
  h.status = code;
  return h;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_200_is_written_in_full) {
  std::string out = "kept";
  format_response(out, ResponseHead{}, nullptr, "text/plain", "hello");
  BOOST_TEST(out ==
             "kept"
             "HTTP/1.1 200 OK\r\n"
             "Content-Type: text/plain\r\n"
             "Content-Length: 5\r\n"
             "\r\n"
             "hello");
}

BOOST_AUTO_TEST_CASE(the_status_line_answers_in_the_request_version) {
  ResponseHead h;
  BOOST_TEST(respond(h).status_line == "HTTP/1.1 200 OK");
  h.http10 = true;
  BOOST_TEST(respond(h).status_line == "HTTP/1.0 200 OK");
  h.status = 404;
  BOOST_TEST(respond(h).status_line == "HTTP/1.0 404 Not Found");
}

BOOST_AUTO_TEST_CASE(reason_phrases) {
  std::vector<std::pair<int, std::string>> phrases = {
      {200, "OK"},
      {204, "No Content"},
      {400, "Bad Request"},
      {408, "Request Timeout"},
      {413, "Content Too Large"},
      {417, "Expectation Failed"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
  };
  for (const auto& [code, phrase] : phrases) {
    BOOST_TEST(std::string(reason_phrase(code)) == phrase);
    BOOST_TEST(respond(status(code)).status_line ==
               "HTTP/1.1 " + std::to_string(code) + " " + phrase);
  }
  for (int code : {0, 299, 418, 432, 599, 999}) {
    BOOST_TEST(std::string(reason_phrase(code)) == "Unknown", code);
    BOOST_TEST(respond(status(code)).status_line ==
               "HTTP/1.1 " + std::to_string(code) + " Unknown");
  }
}

BOOST_AUTO_TEST_CASE(content_length_is_the_body_size) {
  Parsed p = respond(ResponseHead{}, "hello world");
  BOOST_TEST(p.count("Content-Length") == 1u);
  BOOST_TEST(p.value("Content-Length") == "11");
  BOOST_TEST(p.body == "hello world");

  Parsed empty = respond(ResponseHead{}, "");
  BOOST_TEST(empty.value("Content-Length") == "0");
  BOOST_TEST(empty.body.empty());

  std::string big(100000, 'x');
  Parsed error = respond(status(413), big);
  BOOST_TEST(error.value("Content-Length") == "100000");
  BOOST_TEST(error.body == big);
}

BOOST_AUTO_TEST_CASE(head_gets_the_get_headers_and_no_body) {
  ResponseHead h;
  h.head_only = true;
  std::string out;
  format_response(out, h, nullptr, "application/json", "{\"a\":1}");
  BOOST_TEST(out ==
             "HTTP/1.1 200 OK\r\n"
             "Content-Type: application/json\r\n"
             "Content-Length: 7\r\n"
             "\r\n");
  h.status = 404;
  Parsed p = respond(h, "not here");
  BOOST_TEST(p.value("Content-Length") == "8");
  BOOST_TEST(p.body.empty());
}

BOOST_AUTO_TEST_CASE(no_content_and_not_modified_have_no_length_and_no_body) {
  for (int code : {204, 304}) {
    for (bool head_only : {false, true}) {
      BOOST_TEST_CONTEXT(code << (head_only ? " to HEAD" : "")) {
        ResponseHead h = status(code);
        h.head_only = head_only;
        std::string out;
        format_response(out, h, nullptr, "", "ignored body");
        Parsed p = parse(out);
        BOOST_TEST(p.count("Content-Length") == 0u);
        BOOST_TEST(p.body.empty());
        BOOST_TEST(out.find("ignored") == std::string::npos);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(informational_answers_have_no_length_and_no_body) {
  Parsed p = respond(status(100), "x", nullptr, "");
  BOOST_TEST(p.status_line == "HTTP/1.1 100 Continue");
  BOOST_TEST(p.count("Content-Length") == 0u);
  BOOST_TEST(p.body.empty());
}

BOOST_AUTO_TEST_CASE(no_content_type_when_empty) {
  Parsed p = respond(ResponseHead{}, "x", nullptr, "");
  BOOST_TEST(p.count("Content-Type") == 0u);
  BOOST_TEST(p.fields.size() == 1u);  // Content-Length only
}

BOOST_AUTO_TEST_CASE(connection_header_rules) {
  ResponseHead h;
  h.keep_alive = true;
  BOOST_TEST(respond(h).count("Connection") == 0u);  // HTTP/1.1 persists by default
  h.keep_alive = false;
  {
    Parsed p = respond(h);
    BOOST_TEST(p.count("Connection") == 1u);
    BOOST_TEST(p.value("Connection") == "close");
  }
  h.http10 = true;
  BOOST_TEST(respond(h).count("Connection") == 0u);  // HTTP/1.0 closes by default
  h.keep_alive = true;
  {
    Parsed p = respond(h);
    BOOST_TEST(p.count("Connection") == 1u);
    BOOST_TEST(p.value("Connection") == "keep-alive");
  }
  // The rules hold for answers without a body too.
  ResponseHead none = status(204);
  none.keep_alive = false;
  BOOST_TEST(respond(none).value("Connection") == "close");
}

BOOST_AUTO_TEST_CASE(given_headers_are_written_in_order_before_the_framing_ones) {
  Headers headers{{"Retry-After", "1"}, {"X-Request-Id", "abc"}};
  Parsed p = respond(status(503), "down", headers.get(), "application/json");
  std::vector<std::string> expected = {"Retry-After: 1", "X-Request-Id: abc",
                                       "Content-Type: application/json", "Content-Length: 4"};
  BOOST_TEST(p.fields == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_value_cannot_start_a_header_of_its_own) {
  for (const std::string& evil :
       {"a\r\nSet-Cookie: x"s, "a\nSet-Cookie: x"s, "a\rSet-Cookie: x"s, "a\0Set-Cookie: x"s,
        "a\r\n\r\nSet-Cookie: x"s, "\r\nSet-Cookie: x\r\n"s}) {
    BOOST_TEST_CONTEXT("value of " << evil.size() << " bytes") {
      Headers headers{{"X-Echo", evil}};
      Parsed p = respond(ResponseHead{}, "hello", headers.get());
      BOOST_TEST(p.count("Set-Cookie") == 0u);
      BOOST_TEST(p.fields.size() == 3u);  // X-Echo, Content-Type, Content-Length
      BOOST_TEST(p.fields[0].find("Set-Cookie: x") != std::string::npos, "the value is kept");
      BOOST_TEST(p.body == "hello");
    }
  }
  // The content type is a value too.
  Parsed p = respond(ResponseHead{}, "hello", nullptr, "text/plain\r\nSet-Cookie: x");
  BOOST_TEST(p.count("Set-Cookie") == 0u);
  BOOST_TEST(p.value("Content-Type") == "text/plain  Set-Cookie: x");
  BOOST_TEST(p.body == "hello");
}
