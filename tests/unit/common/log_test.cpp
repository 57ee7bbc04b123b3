#define BOOST_TEST_MODULE log
#include "common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace log = sluice::common::log;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const char* name) {
  return "/tmp/sluice-log-test-" + std::to_string(getpid()) + "-" + name;
}

// The message part of format_line's output.
std::string message_of(std::string_view text, const char* module = "test") {
  std::string line = log::format_line(log::Level::info, module, text);
  std::string after = std::string(module) + ": ";
  size_t at = line.find(after);
  return at == std::string::npos ? line : line.substr(at + after.size());
}

bool has_control_byte(const std::string& line) {
  for (unsigned char c : line)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(line_has_pid_time_level_module_message) {
  std::string line = log::format_line(log::Level::warn, "supervisor", "worker 12 exited");
  std::regex shape(
      R"(\[\d+\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WARN supervisor: worker 12 exited)");
  BOOST_TEST(std::regex_match(line, shape), line);
  BOOST_TEST(line.find("[" + std::to_string(getpid()) + "]") == 0u);
}

BOOST_AUTO_TEST_CASE(authorization_values_are_redacted) {
  BOOST_TEST(log::redact("Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nHost: x") ==
             "Authorization: [redacted]\r\nHost: x");
  BOOST_TEST(log::redact("headers {\"authorization\": \"Bearer abc.def\", \"x\": 1}") ==
             "headers {\"authorization\": \"[redacted]\", \"x\": 1}");
  BOOST_TEST(log::redact("AUTHORIZATION=Basic abc") == "AUTHORIZATION=[redacted]");
  // The word alone, with no value, is left as it is.
  BOOST_TEST(log::redact("missing authorization header") == "missing authorization header");
}

BOOST_AUTO_TEST_CASE(uri_passwords_are_redacted) {
  BOOST_TEST(log::redact("connecting to amqp://guest:s3cr:et@127.0.0.1:5672/%2F") ==
             "connecting to amqp://guest:***@127.0.0.1:5672/%2F");
  BOOST_TEST(log::redact("redis://:pw@localhost:6379/0") == "redis://:***@localhost:6379/0");
  BOOST_TEST(log::redact("amqps://user@host/") == "amqps://user@host/");
  BOOST_TEST(log::redact("http://127.0.0.1:8000/stats") == "http://127.0.0.1:8000/stats");
}

BOOST_AUTO_TEST_CASE(control_bytes_are_escaped_so_no_line_can_be_forged) {
  BOOST_TEST(message_of("vhost /x\n[1] 2024-01-01 00:00:00.000 ERROR supervisor: fake") ==
             "vhost /x\\x0a[1] 2024-01-01 00:00:00.000 ERROR supervisor: fake");
  BOOST_TEST(message_of("a\r\nb") == "a\\x0d\\x0ab");
  BOOST_TEST(message_of("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07");
  BOOST_TEST(message_of("tab\there\x7f") == "tab\\x09here\\x7f");
  BOOST_TEST(message_of(std::string("nul\0byte", 8)) == "nul\\x00byte");
  // The module name is escaped too.
  std::string line = log::format_line(log::Level::warn, "mo\ndule", "x");
  BOOST_TEST(!has_control_byte(line), line);
  BOOST_TEST(line.find("WARN mo\\x0adule: x") != std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(ill_formed_utf8_is_escaped_and_valid_text_kept) {
  BOOST_TEST(message_of("user \xff\xfe") == "user \\xff\\xfe");
  BOOST_TEST(message_of("\xc0\xaf \xed\xa0\x80 \xe2\x82") ==
             "\\xc0\\xaf \\xed\\xa0\\x80 \\xe2\\x82");
  BOOST_TEST(message_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // U+009B is well-formed, but a terminal may read it as ESC [.
  BOOST_TEST(message_of("\xc2\x9b"
                        "31m \xc2\xa0") ==
             "\\xc2\\x9b"
             "31m \xc2\xa0");
}

// U+202E (right-to-left override) would show the rest of the line reversed.
BOOST_AUTO_TEST_CASE(bidirectional_overrides_are_escaped) {
  BOOST_TEST(message_of("/v/\xe2\x80\xaegnp.exe") == "/v/\\xe2\\x80\\xaegnp.exe");
  BOOST_TEST(message_of("\xe2\x81\xa6x\xe2\x81\xa9") == "\\xe2\\x81\\xa6x\\xe2\\x81\\xa9");
  BOOST_TEST(message_of("\xe2\x80\x94 dash") == "\xe2\x80\x94 dash");  // U+2014 stays
}

BOOST_AUTO_TEST_CASE(redaction_still_works_on_escaped_lines) {
  std::string m = message_of("headers Authorization: Basic c2VjcmV0\r\nHost: x\x1b");
  BOOST_TEST(m == "headers Authorization: [redacted]\\x0d\\x0aHost: x\\x1b");
  m = message_of("connecting to amqp://bob:hun\nter2@127.0.0.1/");
  BOOST_TEST(m == "connecting to amqp://bob:***@127.0.0.1/");
  m = message_of("amqp://\xff\n:s3cret@host/");
  BOOST_TEST(m == "amqp://\\xff\\x0a:***@host/");
  BOOST_TEST(m.find("s3cret") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(write_redacts_and_respects_the_threshold) {
  std::string path = temp_path("write.log");
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  SLOG_DEBUG("test", "hidden %d", 1);
  SLOG_INFO("test", "publish as amqp://bob:hunter2@127.0.0.1/ ok");
  log::write_errno(log::Level::error, ENOENT, "test", "open(\"%s\") failed", "/x");
  std::string text = slurp(path);
  BOOST_TEST(text.find("hidden") == std::string::npos);
  BOOST_TEST(text.find("hunter2") == std::string::npos);
  BOOST_TEST(text.find("amqp://bob:***@") != std::string::npos);
  BOOST_TEST(text.find("ERROR test: open(\"/x\") failed: No such file or directory") !=
             std::string::npos);
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(write_emits_one_line_per_call_whatever_the_arguments) {
  std::string path = temp_path("lines.log");
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  SLOG_WARN("test", "%s refused", "/a\n[1] forged\r\x1b[2K");
  log::write_errno(log::Level::error, EACCES, "test", "open(\"%s\") failed", "x\ny");
  std::string text = slurp(path);
  BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 2);
  BOOST_TEST(text.find("/a\\x0a[1] forged\\x0d\\x1b[2K refused") != std::string::npos, text);
  BOOST_TEST(text.find("open(\"x\\x0ay\") failed: Permission denied") != std::string::npos, text);
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(reopen_moves_to_a_new_file_after_rename) {
  std::string path = temp_path("reopen.log");
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  SLOG_INFO("test", "before");
  std::string rotated = path + ".1";
  BOOST_REQUIRE(std::rename(path.c_str(), rotated.c_str()) == 0);
  SLOG_INFO("test", "still old");
  BOOST_REQUIRE(log::reopen(error));
  SLOG_INFO("test", "after");
  BOOST_TEST(slurp(rotated).find("still old") != std::string::npos);
  BOOST_TEST(slurp(path).find("after") != std::string::npos);
  BOOST_TEST(slurp(path).find("before") == std::string::npos);
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::remove(path.c_str());
  std::remove(rotated.c_str());
}

BOOST_AUTO_TEST_CASE(failed_reopen_keeps_the_old_file) {
  std::string dir = temp_path("dir");
  BOOST_REQUIRE(mkdir(dir.c_str(), 0755) == 0);
  std::string path = dir + "/x.log";
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  std::string moved = dir + ".moved";
  BOOST_REQUIRE(std::rename(dir.c_str(), moved.c_str()) == 0);  // the path is gone
  BOOST_TEST(!log::reopen(error));
  BOOST_TEST(error.find("No such file or directory") != std::string::npos);
  SLOG_INFO("test", "kept");
  BOOST_TEST(slurp(moved + "/x.log").find("kept") != std::string::npos);
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::remove((moved + "/x.log").c_str());
  rmdir(moved.c_str());
}
