#define BOOST_TEST_MODULE backoff
#include "common/backoff.h"

#include <boost/test/unit_test.hpp>

using sluice::common::Backoff;
using std::chrono::milliseconds;

BOOST_AUTO_TEST_CASE(doubles_from_the_initial_delay_up_to_the_cap) {
  Backoff b(milliseconds(100), milliseconds(10000));
  std::vector<long long> got;
  for (int i = 0; i < 10; ++i)
    got.push_back(b.next().count());
  std::vector<long long> expected = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
  BOOST_TEST(got == expected, boost::test_tools::per_element());
  BOOST_TEST(b.attempts() == 10u);
}

BOOST_AUTO_TEST_CASE(reset_starts_over) {
  Backoff b(milliseconds(100), milliseconds(10000));
  for (int i = 0; i < 5; ++i)
    (void)b.next();
  b.reset();
  BOOST_TEST(b.next().count() == 100);
}

BOOST_AUTO_TEST_CASE(many_attempts_never_overflow) {
  Backoff b(milliseconds(100), milliseconds(10000));
  BOOST_TEST(b.base_delay(1000).count() == 10000);
  for (int i = 0; i < 200; ++i)
    BOOST_TEST(b.next().count() <= 10000);
}

BOOST_AUTO_TEST_CASE(jitter_stays_within_its_band_and_the_cap) {
  Backoff b(milliseconds(1000), milliseconds(1500), 0.2);
  bool varied = false;
  long long first = b.next().count();
  BOOST_TEST(first >= 800);
  BOOST_TEST(first <= 1200);
  for (int i = 0; i < 50; ++i) {
    b.reset();
    long long d = b.next().count();
    BOOST_TEST(d >= 800);
    BOOST_TEST(d <= 1200);
    varied = varied || d != first;
  }
  BOOST_TEST(varied);
  for (int i = 0; i < 10; ++i)
    BOOST_TEST(b.next().count() <= 1500);
}
