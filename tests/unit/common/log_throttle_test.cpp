#define BOOST_TEST_MODULE log_throttle
#include "common/log_throttle.h"

#include <boost/test/unit_test.hpp>

using sluice::common::LogThrottle;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = LogThrottle::Clock;

BOOST_AUTO_TEST_CASE(one_line_per_interval_and_the_rest_counted) {
  LogThrottle t(seconds(30));
  Clock::time_point t0{};  // any origin: the first line always passes
  BOOST_TEST(t.admit(t0));
  BOOST_TEST(!t.admit(t0 + seconds(1)));
  BOOST_TEST(!t.admit(t0 + seconds(29)));
  BOOST_TEST(t.suppressed() == 2u);
  BOOST_TEST(t.admit(t0 + seconds(30)));
  BOOST_TEST(t.take_suppressed() == 2u);
  BOOST_TEST(t.suppressed() == 0u);
  // The window opened at the line admitted at 30 s.
  BOOST_TEST(!t.admit(t0 + seconds(59)));
  BOOST_TEST(t.admit(t0 + seconds(60)));
}

BOOST_AUTO_TEST_CASE(the_note_says_how_many_were_suppressed_once) {
  LogThrottle t(seconds(10));
  Clock::time_point t0 = Clock::now();
  BOOST_TEST(t.admit(t0));
  BOOST_TEST(t.take_note() == "");
  BOOST_TEST(!t.admit(t0 + seconds(1)));
  BOOST_TEST(t.admit(t0 + seconds(11)));
  BOOST_TEST(t.take_note() == " (1 similar line suppressed)");
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(!t.admit(t0 + seconds(12)));
  BOOST_TEST(t.admit(t0 + seconds(30)));
  BOOST_TEST(t.take_note() == " (3 similar lines suppressed)");
  BOOST_TEST(t.take_note() == "");
}

BOOST_AUTO_TEST_CASE(reset_lets_the_next_line_through_and_keeps_the_count) {
  LogThrottle t(seconds(30));
  Clock::time_point t0{};
  BOOST_TEST(t.admit(t0));
  BOOST_TEST(!t.admit(t0 + seconds(1)));
  t.reset();  // a change of state: always logged
  BOOST_TEST(t.admit(t0 + seconds(2)));
  BOOST_TEST(t.take_suppressed() == 1u);
  BOOST_TEST(!t.admit(t0 + seconds(3)));  // a new window opened at 2 s
  BOOST_TEST(t.admit(t0 + seconds(32)));
}

BOOST_AUTO_TEST_CASE(a_window_of_many_lines) {
  LogThrottle t(seconds(1), 100);
  Clock::time_point t0{};
  for (int i = 0; i < 100; ++i)
    BOOST_TEST(t.admit(t0 + milliseconds(i)));
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(!t.admit(t0 + milliseconds(500)));
  BOOST_TEST(t.suppressed() == 5u);
  BOOST_TEST((t.window_end() == t0 + seconds(1)));
  BOOST_TEST(!t.admit(t0 + milliseconds(999)));
  BOOST_TEST(t.admit(t0 + seconds(1)));  // the next window
  BOOST_TEST((t.window_end() == t0 + seconds(2)));
  BOOST_TEST(t.take_suppressed() == 6u);
}
