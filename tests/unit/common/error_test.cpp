#define BOOST_TEST_MODULE error
#include "common/error.h"

#include <rapidjson/document.h>

#include <boost/test/unit_test.hpp>

using namespace sluice::common;

BOOST_AUTO_TEST_CASE(every_errc_maps_to_its_status) {
  std::vector<std::pair<Errc, int>> table = {
      {Errc::bad_request, 400},        {Errc::unauthorized, 401},
      {Errc::forbidden, 403},          {Errc::not_found, 404},
      {Errc::method_not_allowed, 405}, {Errc::length_required, 411},
      {Errc::too_large, 413},          {Errc::header_too_large, 431},
      {Errc::unsupported_media, 415},  {Errc::backend_unavailable, 503},
      {Errc::http_version, 505},       {Errc::internal, 500},
      {Errc::request_timeout, 408},    {Errc::conflict, 409},
      {Errc::expectation_failed, 417}, {Errc::too_many_requests, 429},
      {Errc::not_implemented, 501},
  };
  for (const auto& [code, status] : table)
    BOOST_TEST(http_status(code) == status);
}

BOOST_AUTO_TEST_CASE(body_is_json_with_error_and_message_escaped) {
  std::string body =
      error_body(make_error(Errc::bad_request, "bad_field", "field \"priority\" must be 0..255\n"));
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_TEST(doc["error"].GetString() == std::string("bad_field"));
  BOOST_TEST(doc["message"].GetString() == std::string("field \"priority\" must be 0..255\n"));
  BOOST_TEST(doc.MemberCount() == 2u);
}

BOOST_AUTO_TEST_CASE(result_holds_a_value_or_an_error) {
  Result<int> ok = 5;
  BOOST_TEST(ok.ok());
  BOOST_TEST(*ok == 5);
  Result<int> bad = make_error(Errc::not_found, "x", "y");
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.error().short_code == "x");
  Result<void> fine;
  BOOST_TEST(fine.ok());
}

// Messages may quote client bytes (a path segment, a header value): the body stays UTF-8.
BOOST_AUTO_TEST_CASE(body_is_valid_utf8_whatever_the_message_holds) {
  std::string body = error_body(make_error(Errc::bad_request, "bad\xff",
                                           "vhost \"\xed\xa0\x80\xc0\xaf\n\x1b[31m\" caf\xc3\xa9"));
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.c_str(), body.size());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), body);
  BOOST_TEST(doc["error"].GetString() == std::string("bad\xef\xbf\xbd"));
  BOOST_TEST(doc["message"].GetString() ==
             std::string("vhost \"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                         "\n\x1b[31m\" caf\xc3\xa9"));
}
