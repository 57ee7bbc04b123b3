#define BOOST_TEST_MODULE output
// What a client sends reaches sluice's output only as text: /stats and error bodies stay
// valid UTF-8 whatever bytes the path and the user name hold, and the error log gets no control
// byte, so a newline in a vhost cannot start a line of the client's choosing.
#include <rapidjson/document.h>
#include <rapidjson/encodings.h>
#include <rapidjson/stringbuffer.h>

#include <boost/test/unit_test.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/fixtures.h"

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const std::string kFffd = "\xef\xbf\xbd";  // U+FFFD

struct Gateway : OneListener {
  Gateway() : OneListener("[publish, stats]", "", shared_rabbit_yaml(), "  log_level: debug\n") {}
  HttpResponse post(const std::string& path, const std::string& user,
                    const std::string& password = "guest") {
    return publish_as(port, path, user, password);
  }
};

// rapidjson's strict decoder, independent of sluice's: no overlong forms, surrogates or code
// points above U+10FFFF.
bool valid_utf8(const std::string& text) {
  rapidjson::StringStream in(text.c_str());
  rapidjson::StringBuffer sink;
  while (in.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(in, sink)) return false;
  }
  return true;
}

rapidjson::Document parse_validated(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
  BOOST_TEST(!doc.HasParseError(), "not valid UTF-8 JSON: " << text);
  return doc;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  if (start < text.size()) lines.push_back(text.substr(start));  // no newline: itself a fault
  return lines;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(output, Gateway)

// The vhost is LF, ESC; one user name is 0xff 0xfe. Both end up in the "vhost:user" keys of
// /stats' connections, as U+FFFD where they are not UTF-8 and escaped where they are control
// characters. A vhost that is not UTF-8 never reaches the broker (which would close the
// connection on it): it is a 400 whose body is still valid UTF-8.
BOOST_AUTO_TEST_CASE(stats_stay_valid_utf8_after_non_utf8_names) {
  HttpResponse refused_user = post("/%0a%1b/amq.topic/x", "\xff\xfe", "pw");
  HttpResponse refused_vhost = post("/%0a%1b/amq.topic/x", "guest");
  HttpResponse bad_vhost = post("/%ff%0a%1b/amq.topic/x", "guest");
  BOOST_TEST(refused_user.status == 401, refused_user.body);
  BOOST_TEST(refused_vhost.status == 403, refused_vhost.body);
  BOOST_TEST(bad_vhost.status == 400, bad_vhost.body);
  parse_validated(refused_user.body);
  parse_validated(refused_vhost.body);
  parse_validated(bad_vhost.body);
  HttpResponse stats = http_get(port, "/stats");
  BOOST_REQUIRE(stats.status == 200);
  BOOST_TEST(valid_utf8(stats.body));
  rapidjson::Document doc = parse_validated(stats.body);
  BOOST_REQUIRE(doc.IsObject() && doc.HasMember("connections"));
  const rapidjson::Value& connections = doc["connections"];
  BOOST_TEST(connections.HasMember(("\n\x1b:" + kFffd + kFffd).c_str()), stats.body);
  BOOST_TEST(connections.HasMember("\n\x1b:guest"), stats.body);

  HttpResponse fleet = http_get(port, "/stats/fleet");
  BOOST_REQUIRE(fleet.status == 200);
  parse_validated(fleet.body);
}

// amqp.cpp logs "<vhost>:<user> refused by <host>: <reason>". With the bytes raw, the vhost
// below would end that line and write one of its own that looks like sluice's.
BOOST_AUTO_TEST_CASE(names_cannot_forge_log_lines_or_send_terminal_escapes) {
  const std::string forged = "[1] 2030-01-01 00:00:00.000 ERROR forged: owned";
  HttpResponse r = post(
      "/%0a%5b1%5d%202030-01-01%2000:00:00.000%20ERROR%20forged:%20owned%1b%5b2J"
      "/amq.topic/x",
      "guest");
  BOOST_TEST(r.status == 403, r.status << " " << r.body);
  r = post("/%2F/amq.topic/x", "u\xff\r\n" + forged + "\x1b]0;title\x07");
  BOOST_TEST(r.status == 401, r.status << " " << r.body);
  // Raw bytes in the request target, unescaped; whatever sluice makes of them.
  raw_exchange(port,
               "POST /v\xff\x1b[2J\x7f/amq.topic/x HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                   basic_auth("guest", "guest") +
                   "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
               5s);

  std::string log = sluiced.log();
  // Both refusals were logged, escaped, so the check below is not vacuous.
  BOOST_TEST(log.find("\\x0a[1] 2030-01-01 00:00:00.000 ERROR forged: owned\\x1b[2J:guest") !=
                 std::string::npos,
             log);
  BOOST_TEST(log.find(":u\\xff\\x0d\\x0a[1] 2030") != std::string::npos, log);
  BOOST_TEST(valid_utf8(log));
  const std::regex shape(
      R"(\[\d+\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARN|ERROR) .*)");
  const std::vector<std::string> lines = lines_of(log);
  BOOST_TEST(lines.size() > 2u);
  for (const std::string& line : lines) {
    bool control = false;
    for (unsigned char c : line)
      control = control || c < 0x20 || c == 0x7f;
    BOOST_TEST(!control, "control byte in: " << line);
    BOOST_TEST(line.rfind("[1] 2030", 0) == std::string::npos, "forged line: " << line);
    BOOST_TEST(std::regex_match(line, shape), "not a sluice line: " << line);
  }
  BOOST_TEST(log.back() == '\n');
}

BOOST_AUTO_TEST_SUITE_END()
