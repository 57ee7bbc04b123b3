#define BOOST_TEST_MODULE json
#include "common/json.h"

#include <rapidjson/document.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using namespace sluice::common;

namespace {

// rapidjson's own strict check, independent of the code under test.
bool parses_as_utf8(const std::string& doc_text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(doc_text.c_str(), doc_text.size());
  return !doc.HasParseError();
}

// {"<key>": "<value>"} written through the helpers.
std::string document(std::string_view key, std::string_view value) {
  JsonBuffer out;
  JsonWriter w(out);
  w.StartObject();
  json_key(w, key);
  json_string(w, value);
  w.EndObject();
  return json_text(out);
}

const std::string kFffd = "\xef\xbf\xbd";

// Each ill-formed input and what it becomes: one U+FFFD per maximal subpart (Unicode 3.9,
// "U+FFFD Substitution of Maximal Subparts").
const std::vector<std::pair<std::string, std::string>> kIllFormed = {
    {"\x80", kFffd},  // lone continuation byte
    {"a\xbf"
     "b",
     "a" + kFffd + "b"},                      // lone continuation between ASCII
    {"\xff\xfe", kFffd + kFffd},              // never valid anywhere
    {"\xc3", kFffd},                          // truncated 2-byte sequence at the end
    {"\xe2\x82", kFffd},                      // truncated 3-byte sequence
    {"\xe2\x82x", kFffd + "x"},               // truncated, then ASCII
    {"\xf0\x9f\x98", kFffd},                  // truncated 4-byte sequence
    {"\xc0\xaf", kFffd + kFffd},              // overlong '/'
    {"\xc1\xbf", kFffd + kFffd},              // overlong U+007F
    {"\xe0\x80\xaf", kFffd + kFffd + kFffd},  // overlong '/' in 3 bytes
    {"\xf0\x80\x80\xaf", std::string() + kFffd + kFffd + kFffd + kFffd},  // in 4 bytes
    {"\xed\xa0\x80", kFffd + kFffd + kFffd},                              // U+D800, a surrogate
    {"\xed\xbf\xbf", kFffd + kFffd + kFffd},                              // U+DFFF
    {"\xf4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},                  // U+110000
    {"\xf5\x80\x80\x80", kFffd + kFffd + kFffd + kFffd},                  // F5: beyond U+13FFFF
    {"\xc3\xa9\xff", "\xc3\xa9" + kFffd},                                 // valid, then invalid
};

}  // namespace

BOOST_AUTO_TEST_CASE(valid_text_is_recognised) {
  BOOST_TEST(utf8_valid(""));
  BOOST_TEST(utf8_valid("plain ascii\n\x1b\x7f"));
  BOOST_TEST(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  BOOST_TEST(utf8_valid("\xed\x9f\xbf"));                               // U+D7FF
  BOOST_TEST(utf8_valid("\xee\x80\x80"));                               // U+E000
  BOOST_TEST(utf8_valid("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
  BOOST_TEST(utf8_valid(std::string("nul\0inside", 10)));
  for (const auto& [bad, _] : kIllFormed)
    BOOST_TEST(!utf8_valid(bad));
}

BOOST_AUTO_TEST_CASE(each_maximal_ill_formed_subpart_becomes_one_replacement) {
  for (const auto& [bad, repaired] : kIllFormed) {
    BOOST_TEST(utf8_repaired(bad) == repaired);
    BOOST_TEST(utf8_valid(utf8_repaired(bad)));
  }
}

BOOST_AUTO_TEST_CASE(helpers_write_documents_rapidjson_accepts_as_utf8) {
  for (const auto& [bad, repaired] : kIllFormed) {
    std::string text = document("user:" + bad, "/" + bad + "/x");
    BOOST_TEST(parses_as_utf8(text), text);
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    BOOST_REQUIRE(doc.IsObject() && doc.MemberCount() == 1u);
    BOOST_TEST(doc.MemberBegin()->name.GetString() == "user:" + repaired);
    BOOST_TEST(doc.MemberBegin()->value.GetString() == "/" + repaired + "/x");
  }
}

BOOST_AUTO_TEST_CASE(valid_multibyte_text_is_kept_byte_for_byte) {
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  BOOST_TEST(utf8_repaired(text) == text);
  BOOST_TEST(document(text, text) == "{\"" + text + "\":\"" + text + "\"}");
}

BOOST_AUTO_TEST_CASE(control_characters_are_escaped_by_the_writer) {
  std::string text = document(std::string("a\nb\x1b", 4), std::string("\0\r\x7f", 3));
  BOOST_TEST(text == "{\"a\\nb\\u001B\":\"\\u0000\\r\x7f\"}");
  BOOST_TEST(parses_as_utf8(text));
}

// A raw Writer copies bytes as they are: the reason the helpers exist.
BOOST_AUTO_TEST_CASE(a_raw_writer_would_not_be_valid) {
  JsonBuffer out;
  JsonWriter w(out);
  w.String("\xff\xfe", 2);
  BOOST_TEST(!parses_as_utf8("[" + json_text(out) + "]"));
}
