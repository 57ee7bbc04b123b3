#define BOOST_TEST_MODULE config_reader
#include "common/config_reader.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using sluice::common::Bounds;
using sluice::common::ConfigReader;
using sluice::common::index_key;
using sluice::common::join_key;
using sluice::common::kPortBounds;
using sluice::common::Millis;
using sluice::common::range_reason;
namespace kind = sluice::common::kind;
using namespace std::chrono_literals;

namespace {

// Every problem the reader collected, as the operator sees them, one a line.
std::string problems(ConfigReader& reader) {
  std::string out;
  for (const auto& p : reader.take_problems())
    out += p.to_string() + "\n";
  return out;
}

// Reads the value of `v` in the one-line document "v: <value>" as `Kind`: the problem text
// (empty on success), the value in `out`.
template <class Kind, class Out>
std::string read_value(const std::string& value, Out& out) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("v: " + value);
  reader.read<Kind>(doc["v"], "v", out);
  return problems(reader);
}

template <class Kind, class Out>
std::string read_bounded(const std::string& value, Out& out, const Bounds<Kind>& bounds) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("v: " + value);
  reader.read<Kind>(doc["v"], "v", out, bounds);
  return problems(reader);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kinds)

BOOST_AUTO_TEST_CASE(integers) {
  int64_t n = 7;
  BOOST_TEST(read_value<kind::Int>("42", n) == "");
  BOOST_TEST(n == 42);
  BOOST_TEST(read_value<kind::Int>("-3", n) == "");
  BOOST_TEST(n == -3);
  for (const char* bad : {"x", "1.5", "[1]", "{a: 1}", "''", "99999999999999999999"}) {
    n = 7;
    BOOST_TEST(read_value<kind::Int>(bad, n) == "t.yaml:1:4: v: must be an integer\n", bad);
    BOOST_TEST(n == 7, bad);  // untouched on failure
  }
}

BOOST_AUTO_TEST_CASE(strings) {
  std::string s = "old";
  BOOST_TEST(read_value<kind::String>("hello", s) == "");
  BOOST_TEST(s == "hello");
  BOOST_TEST(read_value<kind::String>("''", s) == "");
  BOOST_TEST(s == "");
  BOOST_TEST(read_value<kind::String>("'123'", s) == "");
  BOOST_TEST(s == "123");
  s = "old";
  BOOST_TEST(read_value<kind::String>("[a]", s) == "t.yaml:1:4: v: must be a string\n");
  BOOST_TEST(s == "old");
  BOOST_TEST(read_value<kind::NonEmptyString>("x", s) == "");
  BOOST_TEST(s == "x");
  BOOST_TEST(read_value<kind::NonEmptyString>("''", s) ==
             "t.yaml:1:4: v: must be a non-empty string\n");
  BOOST_TEST(read_value<kind::NonEmptyString>("{}", s) ==
             "t.yaml:1:4: v: must be a non-empty string\n");
  BOOST_TEST(s == "x");
}

BOOST_AUTO_TEST_CASE(booleans) {
  for (const char* yes : {"true", "True", "yes", "on"}) {
    bool b = false;
    BOOST_TEST(read_value<kind::Bool>(yes, b) == "", yes);
    BOOST_TEST(b, yes);
  }
  for (const char* no : {"false", "no", "off"}) {
    bool b = true;
    BOOST_TEST(read_value<kind::Bool>(no, b) == "", no);
    BOOST_TEST(!b, no);
  }
  for (const char* bad : {"1", "maybe", "''", "[true]"}) {
    bool b = true;
    BOOST_TEST(read_value<kind::Bool>(bad, b) == "t.yaml:1:4: v: must be true or false\n", bad);
    BOOST_TEST(b, bad);
  }
}

BOOST_AUTO_TEST_CASE(durations_and_sizes) {
  Millis d{1};
  BOOST_TEST(read_value<kind::Duration>("250ms", d) == "");
  BOOST_TEST(d.count() == 250);
  BOOST_TEST(read_value<kind::Duration>("3", d) == "");
  BOOST_TEST(d.count() == 3000);
  BOOST_TEST(read_value<kind::Duration>("soon", d) ==
             "t.yaml:1:4: v: must be a duration such as 500ms, 10s, 2m\n");
  BOOST_TEST(read_value<kind::Duration>("[1s]", d) ==
             "t.yaml:1:4: v: must be a duration such as 500ms, 10s, 2m\n");
  BOOST_TEST(d.count() == 3000);
  uint64_t size = 1;
  BOOST_TEST(read_value<kind::Size>("64k", size) == "");
  BOOST_TEST(size == 65536u);
  BOOST_TEST(read_value<kind::Size>("lots", size) ==
             "t.yaml:1:4: v: must be a size such as 512k, 10m\n");
  BOOST_TEST(size == 65536u);
}

BOOST_AUTO_TEST_CASE(host_and_port) {
  kind::HostPort::Value hp;
  BOOST_TEST(read_value<kind::HostPort>("rabbit", hp) == "");
  BOOST_TEST(hp.host == "rabbit");
  BOOST_TEST(!hp.port.has_value());
  BOOST_TEST(read_value<kind::HostPort>("'10.0.0.1:5673'", hp) == "");
  BOOST_TEST(hp.host == "10.0.0.1");
  BOOST_TEST(hp.port.value_or(0) == 5673);
  BOOST_TEST(read_value<kind::HostPort>("'[::1]:1'", hp) == "");
  BOOST_TEST(hp.host == "::1");
  BOOST_TEST(hp.port.value_or(0) == 1);
  BOOST_TEST(read_value<kind::HostPort>("'[fe80::2]'", hp) == "");
  BOOST_TEST(hp.host == "fe80::2");
  BOOST_TEST(!hp.port.has_value());
  BOOST_TEST(read_value<kind::HostPort>("'::3'", hp) == "");  // a bare IPv6 literal
  BOOST_TEST(hp.host == "::3");
  BOOST_TEST(!hp.port.has_value());
  for (const char* bad : {"'[::1'", "'[::1]x'", "'[::1]:'", "'a:'", "':5672'", "''", "'[]'"}) {
    BOOST_TEST(
        read_value<kind::HostPort>(bad, hp) == "t.yaml:1:4: v: must be \"host\" or \"host:port\"\n",
        bad);
  }
  for (const char* bad : {"'a:0'", "'a:65536'", "'a:x'", "'a:-1'", "'a:000001'", "'[::1]:99999'"}) {
    BOOST_TEST(
        read_value<kind::HostPort>(bad, hp) == "t.yaml:1:4: v: port must be between 1 and 65535\n",
        bad);
  }
  BOOST_TEST(read_value<kind::HostPort>("{a: 1}", hp) == "t.yaml:1:4: v: must be a string\n");
  BOOST_TEST(hp.host == "::3");  // untouched by every failure
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounds)

BOOST_AUTO_TEST_CASE(one_wording_for_every_range) {
  BOOST_TEST(range_reason(kPortBounds) == "must be between 1 and 65535");
  BOOST_TEST(range_reason(Bounds<kind::Duration>{100ms, 600s}) == "must be between 100ms and 600s");
  BOOST_TEST(range_reason(Bounds<kind::Duration>{0ms, 1h}) == "must be between 0s and 3600s");
  BOOST_TEST(range_reason(Bounds<kind::Size>{1, uint64_t{1} << 30}) == "must be between 1 and 1g");
  BOOST_TEST(range_reason(Bounds<kind::Size>{512, 64 << 10}) == "must be between 512 and 64k");
  BOOST_TEST(range_reason(Bounds<kind::Size>{1536, 3 << 20}) == "must be between 1536 and 3m");
}

BOOST_AUTO_TEST_CASE(values_outside_are_refused_and_leave_the_output_alone) {
  uint16_t port = 9;
  BOOST_TEST(read_bounded<kind::Int>("1", port, kPortBounds) == "");
  BOOST_TEST(port == 1);
  BOOST_TEST(read_bounded<kind::Int>("65535", port, kPortBounds) == "");
  BOOST_TEST(port == 65535);
  for (const char* bad : {"0", "65536", "-1", "4294967297"}) {
    port = 9;
    BOOST_TEST(read_bounded<kind::Int>(bad, port, kPortBounds) ==
                   "t.yaml:1:4: v: must be between 1 and 65535\n",
               bad);
    BOOST_TEST(port == 9, bad);
  }
  // The kind's own problem comes first: a bad integer is not also out of range.
  BOOST_TEST(read_bounded<kind::Int>("x", port, kPortBounds) ==
             "t.yaml:1:4: v: must be an integer\n");
  Millis d{5};
  const Bounds<kind::Duration> confirm{100ms, 600s};
  BOOST_TEST(read_bounded<kind::Duration>("99ms", d, confirm) ==
             "t.yaml:1:4: v: must be between 100ms and 600s\n");
  BOOST_TEST(read_bounded<kind::Duration>("601s", d, confirm) ==
             "t.yaml:1:4: v: must be between 100ms and 600s\n");
  BOOST_TEST(d.count() == 5);
  BOOST_TEST(read_bounded<kind::Duration>("10m", d, confirm) == "");
  BOOST_TEST(d.count() == 600000);
  uint64_t size = 3;
  BOOST_TEST(read_bounded<kind::Size>("0", size, Bounds<kind::Size>{1, 1 << 10}) ==
             "t.yaml:1:4: v: must be between 1 and 1k\n");
  BOOST_TEST(size == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(maps_and_lists)

BOOST_AUTO_TEST_CASE(walk_reports_unknown_and_duplicate_keys_at_the_key) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load(
      "mod:\n"
      "  size: 3\n"
      "  colour: red\n"
      "  size: 4\n"
      "  name: x\n"
      "  size: 5\n");
  std::vector<std::string> seen;
  int64_t size = 0;
  const bool is_map =
      reader.walk(doc["mod"], "mod", false,
                  {{"size",
                    [&](const YAML::Node& v, const std::string& k) {
                      seen.push_back(k);
                      reader.read<kind::Int>(v, k, size);
                    }},
                   {"name", [&](const YAML::Node&, const std::string& k) { seen.push_back(k); }}});
  BOOST_TEST(is_map);
  // The first of repeated keys wins; the others are problems, never silently applied.
  BOOST_TEST(size == 3);
  BOOST_TEST((seen == std::vector<std::string>{"mod.size", "mod.name"}));
  BOOST_TEST(problems(reader) ==
             "t.yaml:3:3: mod.colour: unknown key\n"
             "t.yaml:4:3: mod.size: duplicate key\n"
             "t.yaml:6:3: mod.size: duplicate key\n");
}

BOOST_AUTO_TEST_CASE(walk_at_the_root_and_with_odd_keys) {
  ConfigReader reader("t.yaml");
  BOOST_TEST(reader.walk(YAML::Load("a: 1\n[x]: 2\n"), "", false, {{"a", [](auto&, auto&) {}}}));
  BOOST_TEST(problems(reader) == "t.yaml:2:1: [x]: unknown key\n");
  BOOST_TEST(!reader.walk(YAML::Load("- 1\n"), "", false, {}));
  BOOST_TEST(problems(reader) == "t.yaml:1:1: (root): must be a map\n");
}

BOOST_AUTO_TEST_CASE(walk_of_null_absent_and_non_maps) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("empty:\nlist: [1]\ntext: hi\n");
  bool called = false;
  const std::vector<ConfigReader::Field> fields{{"x", [&](auto&, auto&) { called = true; }}};
  BOOST_TEST(reader.walk(doc["empty"], "empty", true, fields));
  BOOST_TEST(reader.walk(doc["absent"], "absent", true, fields));
  BOOST_TEST(reader.walk(YAML::Node(), "built", true, fields));
  BOOST_TEST(problems(reader) == "");
  BOOST_TEST(!reader.walk(doc["empty"], "empty", false, fields));
  BOOST_TEST(!reader.walk(doc["list"], "list", true, fields));
  BOOST_TEST(!reader.walk(doc["text"], "text", true, fields));
  BOOST_TEST(!reader.walk(doc["absent"], "absent", false, fields));
  BOOST_TEST(!called);
  BOOST_TEST(problems(reader) ==
             "t.yaml: absent: must be a map\n"
             "t.yaml:2:1: empty: must be a map\n"  // an empty value: yaml-cpp marks what follows
             "t.yaml:2:7: list: must be a map\n"
             "t.yaml:3:7: text: must be a map\n");
}

BOOST_AUTO_TEST_CASE(list_gives_each_item_its_key_and_position) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("ports: [1, x, 70000]\nnone: []\none: 5\n");
  std::vector<std::string> keys;
  std::vector<uint16_t> ports;
  BOOST_TEST(reader.list(doc["ports"], "l.ports", false,
                         [&](const YAML::Node& item, const std::string& k) {
                           keys.push_back(k);
                           uint16_t port = 0;
                           if (reader.read<kind::Int>(item, k, port, kPortBounds)) {
                             ports.push_back(port);
                           }
                         }));
  BOOST_TEST((keys == std::vector<std::string>{"l.ports[0]", "l.ports[1]", "l.ports[2]"}));
  BOOST_TEST((ports == std::vector<uint16_t>{1}));
  BOOST_TEST(reader.list(doc["none"], "none", true, [](auto&, auto&) {}));
  BOOST_TEST(!reader.list(doc["none"], "none", false, [](auto&, auto&) {}));
  BOOST_TEST(!reader.list(doc["one"], "one", true, [](auto&, auto&) {}));
  BOOST_TEST(!reader.list(doc["absent"], "absent", true, [](auto&, auto&) {}));
  BOOST_TEST(problems(reader) ==
             "t.yaml: absent: must be a list\n"
             "t.yaml:1:12: l.ports[1]: must be an integer\n"
             "t.yaml:1:15: l.ports[2]: must be between 1 and 65535\n"
             "t.yaml:2:7: none: must not be empty\n"
             "t.yaml:3:6: one: must be a list\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(problems_and_positions)

BOOST_AUTO_TEST_CASE(add_places_a_problem_at_the_node) {
  ConfigReader reader("f.yaml");
  BOOST_TEST(reader.file() == "f.yaml");
  const YAML::Node doc = YAML::Load("a:\n  b:   [1, 2]\n");
  reader.add(doc["a"]["b"][1], "a.b[1]", "is odd");
  reader.add(doc["a"]["missing"], "a.missing", "is required");
  reader.add(YAML::Mark::null_mark(), "x", "has no place");
  BOOST_TEST(reader.problem_count() == 3u);
  const auto list = reader.take_problems();
  BOOST_TEST(reader.problem_count() == 0u);
  BOOST_TEST_REQUIRE(list.size() == 3u);
  BOOST_TEST(list[2].line == 2);
  BOOST_TEST(list[2].column == 12);
  BOOST_TEST(list[2].key == "a.b[1]");
  BOOST_TEST(list[2].to_string() == "f.yaml:2:12: a.b[1]: is odd");
  BOOST_TEST(list[0].to_string() == "f.yaml: a.missing: is required");
  BOOST_TEST(list[1].to_string() == "f.yaml: x: has no place");
}

BOOST_AUTO_TEST_CASE(problems_come_out_in_file_order) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("a: 1\nb: 2\nc: [3, 4]\n");
  reader.add(doc["c"][1], "c[1]", "last");
  reader.add(doc["a"], "a", "first");
  reader.add(doc["c"][0], "c[0]", "third");
  reader.add(doc["b"], "b", "second");
  reader.add(doc["b"], "b", "second, again");  // same place: kept in the order found
  BOOST_TEST(problems(reader) ==
             "t.yaml:1:4: a: first\n"
             "t.yaml:2:4: b: second\n"
             "t.yaml:2:4: b: second, again\n"
             "t.yaml:3:5: c[0]: third\n"
             "t.yaml:3:8: c[1]: last\n");
}

BOOST_AUTO_TEST_CASE(reading_a_missing_key_says_it_is_required) {
  ConfigReader reader("t.yaml");
  const YAML::Node doc = YAML::Load("mod: { a: 1 }\n");
  int64_t n = 5;
  BOOST_TEST(!reader.read<kind::Int>(doc["mod"]["b"], "mod.b", n));
  BOOST_TEST(!reader.read<kind::Int>(YAML::Load("")["b"], "b", n, Bounds<kind::Int>{1, 9}));
  BOOST_TEST(n == 5);
  BOOST_TEST(problems(reader) == "t.yaml: mod.b: is required\nt.yaml: b: is required\n");
}

BOOST_AUTO_TEST_CASE(key_paths) {
  BOOST_TEST(join_key("", "listen") == "listen");
  BOOST_TEST(join_key("publish", "mandatory") == "publish.mandatory");
  BOOST_TEST(index_key("listen", 2) == "listen[2]");
  BOOST_TEST(join_key(index_key("listen", 0), "ports") == "listen[0].ports");
}

BOOST_AUTO_TEST_SUITE_END()
