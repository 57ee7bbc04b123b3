#define BOOST_TEST_MODULE form
#include "common/form.h"

#include <boost/test/unit_test.hpp>

using namespace sluice::common;
using namespace std::string_literals;

namespace {

// Exactly what curl 7.88.1 sent for
//   curl -u guest:guest -F body=hello -F 'bin=<bin.dat' -F 'file=@bin.dat' URL
// with bin.dat = "a\0b\r\nc\r\n", captured from the socket.
const std::string kCurlType =
    "multipart/form-data; boundary=------------------------72a87da81ccc229e";
const std::string kCurlBody =
    "--------------------------72a87da81ccc229e\r\n"
    "Content-Disposition: form-data; name=\"body\"\r\n"
    "\r\n"
    "hello\r\n"
    "--------------------------72a87da81ccc229e\r\n"
    "Content-Disposition: form-data; name=\"bin\"\r\n"
    "\r\n"
    "a\0b\r\nc\r\n\r\n"
    "--------------------------72a87da81ccc229e\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"bin.dat\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "a\0b\r\nc\r\n\r\n"
    "--------------------------72a87da81ccc229e--\r\n"s;
const std::string kBinary = "a\0b\r\nc\r\n"s;

// A body in curl's layout with the given parts (already holding their headers).
std::string multipart(const std::string& boundary, const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts)
    out += "--" + boundary + "\r\n" + part + "\r\n";
  return out + "--" + boundary + "--\r\n";
}

std::string field(const std::string& name, const std::string& value) {
  return "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value;
}

void require_error(const Result<void>& r, Errc code, const std::string& short_code) {
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(static_cast<int>(r.error().code) == static_cast<int>(code));
  BOOST_TEST(r.error().short_code == short_code);
  BOOST_TEST(!r.error().message.empty());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(percent)

BOOST_AUTO_TEST_CASE(decodes_escapes_in_either_case) {
  BOOST_TEST(*percent_decode("%2F", false) == "/");
  BOOST_TEST(*percent_decode("%2f", false) == "/");
  BOOST_TEST(*percent_decode("a%20b%2Bc", false) == "a b+c");
  BOOST_TEST(*percent_decode("%00%0D%0A%ff", false) == "\0\r\n\xff"s);
  BOOST_TEST(*percent_decode("", false) == "");
}

BOOST_AUTO_TEST_CASE(plus_is_a_space_only_in_form_encoding) {
  BOOST_TEST(*percent_decode("a+b", false) == "a+b");
  BOOST_TEST(*percent_decode("a+b", true) == "a b");
  BOOST_TEST(*percent_decode("%2B", true) == "+");
}

BOOST_AUTO_TEST_CASE(percent_without_two_hex_digits_is_an_error) {
  for (std::string bad : {"%", "%2", "a%", "%zz", "%2g", "%g2", "x%-1", "100%"}) {
    auto r = percent_decode(bad, true);
    BOOST_REQUIRE_MESSAGE(!r.ok(), bad);
    BOOST_TEST(static_cast<int>(r.error().code) == static_cast<int>(Errc::bad_request));
    BOOST_TEST(r.error().short_code == "malformed_form");
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(urlencoded)

BOOST_AUTO_TEST_CASE(basic_pairs_plus_and_escaped_plus) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("body=hello+world&routing=a%2Bb&vhost=%2f", f).ok());
  BOOST_TEST(f.size() == 3u);
  BOOST_TEST(f["body"] == "hello world");
  BOOST_TEST(f["routing"] == "a+b");
  BOOST_TEST(f["vhost"] == "/");
}

BOOST_AUTO_TEST_CASE(names_are_decoded_too) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("content%5Ftype=x&a+b=1", f).ok());
  BOOST_TEST(f["content_type"] == "x");
  BOOST_TEST(f["a b"] == "1");
}

BOOST_AUTO_TEST_CASE(repeated_field_keeps_the_last_value) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("a=1&b=2&a=3", f).ok());
  BOOST_TEST(f.size() == 2u);
  BOOST_TEST(f["a"] == "3");
}

BOOST_AUTO_TEST_CASE(later_calls_overwrite_earlier_fields) {
  // The query string first, then the body, as Tornado appended them.
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("a=query&q=1", f).ok());
  BOOST_REQUIRE(parse_urlencoded("a=body", f).ok());
  BOOST_TEST(f["a"] == "body");
  BOOST_TEST(f["q"] == "1");
}

BOOST_AUTO_TEST_CASE(empty_pairs_are_skipped) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("&&a=1&&b=2&", f).ok());
  BOOST_TEST(f.size() == 2u);
  f.clear();
  BOOST_REQUIRE(parse_urlencoded("", f).ok());
  BOOST_REQUIRE(parse_urlencoded("&", f).ok());
  BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_CASE(name_without_equals_has_an_empty_value) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("flag&x=&y=1", f).ok());
  BOOST_TEST(f.size() == 3u);
  BOOST_TEST(f.count("flag") == 1u);
  BOOST_TEST(f["flag"] == "");
  BOOST_TEST(f["x"] == "");
  BOOST_TEST(f["y"] == "1");
}

BOOST_AUTO_TEST_CASE(value_keeps_every_byte_and_further_equals_signs) {
  FormFields f;
  BOOST_REQUIRE(parse_urlencoded("body=%20a%00b%0D%0A%20&h=x=y", f).ok());
  BOOST_TEST(f["body"] == " a\0b\r\n "s);
  BOOST_TEST(f["h"] == "x=y");
}

BOOST_AUTO_TEST_CASE(bad_escape_fails_leaves_fields_alone_and_hides_the_value) {
  FormFields f{{"keep", "me"}};
  auto r = parse_urlencoded("a=1&password=hunter2%zz", f);
  require_error(r, Errc::bad_request, "malformed_form");
  BOOST_TEST(r.error().message.find("hunter2") == std::string::npos);
  BOOST_TEST(f.size() == 1u);
  BOOST_TEST(f["keep"] == "me");
  require_error(parse_urlencoded("a%2=1", f), Errc::bad_request, "malformed_form");
  // Into an empty map too (parsed in place): nothing of a failed text stays behind.
  FormFields empty;
  require_error(parse_urlencoded("a=1&b=2&c=%zz", empty), Errc::bad_request, "malformed_form");
  BOOST_TEST(empty.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(multipart_form)

BOOST_AUTO_TEST_CASE(curl_body_with_binary_and_file_parts) {
  FormFields f;
  BOOST_REQUIRE(parse_multipart(kCurlBody, kCurlType, f).ok());
  BOOST_TEST(f.size() == 3u);
  BOOST_TEST(f["body"] == "hello");
  BOOST_TEST(f["bin"].size() == kBinary.size());
  BOOST_TEST(f["bin"] == kBinary);  // NUL, inner CRLF and the trailing CRLF all kept
  BOOST_TEST(f["file"] == kBinary);
}

BOOST_AUTO_TEST_CASE(quoted_and_unquoted_boundary) {
  const std::string body = multipart("abc123", {field("a", "1"), field("b", "2")});
  for (std::string type :
       {"multipart/form-data; boundary=abc123", "multipart/form-data; boundary=\"abc123\"",
        "multipart/form-data;boundary=abc123;charset=UTF-8",
        "multipart/form-data; charset=\"x;y\"; BOUNDARY = abc123 "}) {
    FormFields f;
    BOOST_REQUIRE_MESSAGE(parse_multipart(body, type, f).ok(), type);
    BOOST_TEST(f["a"] == "1");
    BOOST_TEST(f["b"] == "2");
  }
}

BOOST_AUTO_TEST_CASE(quoted_boundary_with_a_space) {
  const std::string body = multipart("a b:c", {field("x", "1")});
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=\"a b:c\"", f).ok());
  BOOST_TEST(f["x"] == "1");
}

BOOST_AUTO_TEST_CASE(preamble_and_epilogue_are_ignored) {
  const std::string body = "--bX is not a delimiter\r\nThis is a preamble.\r\n" +
                           multipart("b", {field("x", "1")}) + "epilogue\r\n--b\r\nignored";
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f.size() == 1u);
  BOOST_TEST(f["x"] == "1");
}

BOOST_AUTO_TEST_CASE(headers_are_case_insensitive_and_name_may_be_unquoted) {
  const std::string body = multipart(
      "b",
      {"content-disposition: FORM-DATA; NAME=plain\r\n\r\nv1",
       "CONTENT-DISPOSITION:form-data;filename=\"a;name=b.txt\";name=\"f\"\r\n\r\nv2",
       "Content-Type: text/plain\r\nContent-Disposition: form-data; name=\"q\\\"x\"\r\n\r\nv3"});
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f.size() == 3u);
  BOOST_TEST(f["plain"] == "v1");
  BOOST_TEST(f["f"] == "v2");
  BOOST_TEST(f["q\"x"] == "v3");
}

BOOST_AUTO_TEST_CASE(empty_value_and_value_that_looks_like_headers) {
  const std::string body =
      multipart("b", {field("empty", ""), field("tricky", "X: y\r\n\r\n--bb\r\n--b-\r\n-- b")});
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f.count("empty") == 1u);
  BOOST_TEST(f["empty"] == "");
  BOOST_TEST(f["tricky"] == "X: y\r\n\r\n--bb\r\n--b-\r\n-- b");  // lines that only start with it
}

BOOST_AUTO_TEST_CASE(repeated_part_keeps_the_last_value) {
  const std::string body = multipart("b", {field("a", "1"), field("a", "2")});
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f["a"] == "2");
}

BOOST_AUTO_TEST_CASE(parts_without_a_name_are_skipped) {
  const std::string body =
      multipart("b", {"Content-Disposition: form-data\r\n\r\nnameless",
                      "Content-Disposition: form-data; filename=\"x.txt\"\r\n\r\nfile only",
                      "Content-Type: text/plain\r\n\r\nno disposition", "\r\nno headers at all",
                      "Content-Disposition: attachment; name=\"att\"\r\n\r\nnot form-data",
                      field("kept", "yes")});
  FormFields f;
  BOOST_REQUIRE(parse_multipart(body, "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f.size() == 1u);
  BOOST_TEST(f["kept"] == "yes");
}

BOOST_AUTO_TEST_CASE(only_a_close_delimiter_or_an_empty_body_gives_no_fields) {
  FormFields f;
  BOOST_REQUIRE(parse_multipart("--b--\r\n", "multipart/form-data; boundary=b", f).ok());
  BOOST_REQUIRE(parse_multipart("", "multipart/form-data; boundary=b", f).ok());
  BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_CASE(transport_padding_after_a_boundary_is_allowed) {
  FormFields f;
  BOOST_REQUIRE(parse_multipart("--b \t\r\n" + field("x", "1") + "\r\n--b--",
                                "multipart/form-data; boundary=b", f)
                    .ok());
  BOOST_TEST(f["x"] == "1");
}

BOOST_AUTO_TEST_CASE(missing_closing_delimiter_is_an_error) {
  std::string cut = kCurlBody.substr(0, kCurlBody.rfind("--------------------------72a8"));
  FormFields f{{"keep", "me"}};
  require_error(parse_multipart(cut, kCurlType, f), Errc::bad_request, "malformed_multipart");
  BOOST_TEST(f.size() == 1u);  // nothing half-parsed leaks out
  require_error(parse_multipart("--b\r\n" + field("x", "1"), "multipart/form-data; boundary=b", f),
                Errc::bad_request, "malformed_multipart");
}

BOOST_AUTO_TEST_CASE(missing_or_bad_boundary_is_an_error) {
  const std::string body = multipart("b", {field("x", "1")});
  FormFields f;
  for (std::string type :
       {"multipart/form-data", "multipart/form-data;", "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"", "multipart/form-data; boundary=\"b",
        "multipart/form-data; charset=\"unclosed; boundary=b", "multipart/form-data; xboundary=b"})
    require_error(parse_multipart(body, type, f), Errc::bad_request, "malformed_multipart");
  // A boundary the body never uses.
  require_error(parse_multipart(body, "multipart/form-data; boundary=other", f), Errc::bad_request,
                "malformed_multipart");
  BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_CASE(structural_errors) {
  const std::string type = "multipart/form-data; boundary=b";
  FormFields f;
  // Headers never end with a blank line.
  require_error(parse_multipart("--b\r\nContent-Disposition: form-data; name=x\r\n--b--", type, f),
                Errc::bad_request, "malformed_multipart");
  // A body that is cut right after a boundary.
  require_error(parse_multipart("--b\r\n" + field("x", "1") + "\r\n--b", type, f),
                Errc::bad_request, "malformed_multipart");
  require_error(parse_multipart("--b\r\n" + field("x", "1") + "\r\n--b  ", type, f),
                Errc::bad_request, "malformed_multipart");
  // Bare LF line endings are not multipart.
  require_error(
      parse_multipart("--b\nContent-Disposition: form-data; name=x\n\n1\n--b--\n", type, f),
      Errc::bad_request, "malformed_multipart");
  // An unclosed quote in a part header.
  require_error(
      parse_multipart(multipart("b", {"Content-Disposition: form-data; name=\"x\r\n\r\nsecret"}),
                      type, f),
      Errc::bad_request, "malformed_multipart");
  BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(form_body)

BOOST_AUTO_TEST_CASE(dispatches_on_the_media_type_case_insensitively) {
  FormFields f;
  BOOST_REQUIRE(
      parse_form_body("Application/X-WWW-Form-Urlencoded; charset=UTF-8", "a=1+2", f).ok());
  BOOST_TEST(f["a"] == "1 2");
  f.clear();
  BOOST_REQUIRE(parse_form_body(" application/x-www-form-urlencoded ", "b=2", f).ok());
  BOOST_TEST(f["b"] == "2");
  f.clear();
  BOOST_REQUIRE(parse_form_body(kCurlType, kCurlBody, f).ok());
  BOOST_TEST(f["bin"] == kBinary);
  f.clear();
  BOOST_REQUIRE(
      parse_form_body("MULTIPART/Form-Data; boundary=b", multipart("b", {field("x", "a+b")}), f)
          .ok());
  BOOST_TEST(f["x"] == "a+b");  // multipart values are never form-decoded
}

BOOST_AUTO_TEST_CASE(absent_content_type) {
  FormFields f;
  BOOST_REQUIRE(parse_form_body("", "", f).ok());
  BOOST_TEST(f.empty());
  BOOST_REQUIRE(parse_form_body("", "body=hi&content_type=text%2Fplain", f).ok());
  BOOST_TEST(f["body"] == "hi");
  BOOST_TEST(f["content_type"] == "text/plain");
}

BOOST_AUTO_TEST_CASE(other_types_are_unsupported) {
  FormFields f;
  for (std::string type : {"text/plain", "application/json", "multipart/mixed; boundary=b",
                           "application/x-www-form-urlencodedX"}) {
    require_error(parse_form_body(type, "a=1", f), Errc::unsupported_media,
                  "unsupported_media_type");
    require_error(parse_form_body(type, "", f), Errc::unsupported_media, "unsupported_media_type");
  }
  BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_CASE(errors_pass_through) {
  FormFields f;
  require_error(parse_form_body("application/x-www-form-urlencoded", "a=%", f), Errc::bad_request,
                "malformed_form");
  require_error(parse_form_body("multipart/form-data", "x", f), Errc::bad_request,
                "malformed_multipart");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(basic_auth)

BOOST_AUTO_TEST_CASE(guest_guest) {
  auto c = parse_basic_auth("Basic Z3Vlc3Q6Z3Vlc3Q=");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->user == "guest");
  BOOST_TEST(c->password == "guest");
}

BOOST_AUTO_TEST_CASE(password_may_hold_colons) {
  auto c = parse_basic_auth("Basic dXNlcjpwYTpzcw==");  // user:pa:ss
  BOOST_REQUIRE(c);
  BOOST_TEST(c->user == "user");
  BOOST_TEST(c->password == "pa:ss");
}

BOOST_AUTO_TEST_CASE(scheme_is_case_insensitive_and_spaces_may_repeat) {
  for (const char* h : {"basic Z3Vlc3Q6Z3Vlc3Q=", "BASIC Z3Vlc3Q6Z3Vlc3Q=",
                        "Basic    Z3Vlc3Q6Z3Vlc3Q=", "Basic Z3Vlc3Q6Z3Vlc3Q= "}) {
    auto c = parse_basic_auth(h);
    BOOST_REQUIRE_MESSAGE(c, h);
    BOOST_TEST(c->user == "guest");
    BOOST_TEST(c->password == "guest");
  }
}

BOOST_AUTO_TEST_CASE(empty_user_or_password_is_allowed) {
  auto c = parse_basic_auth("Basic dXNlcjo=");  // user:
  BOOST_REQUIRE(c);
  BOOST_TEST(c->user == "user");
  BOOST_TEST(c->password == "");
  c = parse_basic_auth("Basic OnB3");  // :pw
  BOOST_REQUIRE(c);
  BOOST_TEST(c->user == "");
  BOOST_TEST(c->password == "pw");
}

BOOST_AUTO_TEST_CASE(decoded_bytes_are_kept_as_is) {
  auto c = parse_basic_auth("Basic dTpwAHc=");  // u:p\0w
  BOOST_REQUIRE(c);
  BOOST_TEST(c->password == "p\0w"s);
}

BOOST_AUTO_TEST_CASE(rejected_headers) {
  BOOST_TEST(!parse_basic_auth(nullptr));
  for (const char* h : {
           "", "Basic", "Basic ", "BasicZ3Vlc3Q6Z3Vlc3Q=", "Basic\tZ3Vlc3Q6Z3Vlc3Q=", "Bearer x",
           "Bearer Z3Vlc3Q6Z3Vlc3Q=",
           "Basic Z3Vlc3Q=",           // "guest": no ':'
           "Basic !!!!",               // not base64
           "Basic Z3Vlc3Q6Z3Vlc3Q",    // padding missing
           "Basic Z3Vlc3Q6Z3Vlc3Q==",  // too much padding
           "Basic Z3Vl c3Q6Z3Vlc3Q=",  // space inside
           "Basic Zg=a",               // '=' in the middle
           "Basic Z===", "Basic ====", "Basic Z3Vlc3Q6Z3Vlc3Q=\r\n",
           "Basic Z3Vlc3Q6Z3Vlc3Q-",  // URL-safe alphabet
       })
    BOOST_TEST(!parse_basic_auth(h), h);
}

BOOST_AUTO_TEST_SUITE_END()
