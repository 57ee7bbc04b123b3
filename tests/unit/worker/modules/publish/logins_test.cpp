#define BOOST_TEST_MODULE publish_logins
// The worker's login guard: refusals remembered by digest, logins bounded per worker and
// per user, a refused user slowed to one login a second.
#include "worker/modules/publish/logins.h"

#include <boost/test/unit_test.hpp>
#include <string>

using sluice::worker::publish::LoginGuard;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_refusal_is_remembered_for_that_password_only) {
  LoginGuard g;
  auto now = LoginGuard::Clock::now();
  auto wrong = g.digest("wrong");
  BOOST_TEST(!g.refused("u", wrong, now));
  g.remember_refusal("u", wrong, now);
  BOOST_TEST(g.refused("u", wrong, now + 1s));
  BOOST_TEST(!g.refused("u", g.digest("right"), now + 1s));
  BOOST_TEST(!g.refused("v", wrong, now + 1s));
  BOOST_TEST(!g.refused("u", wrong, now + LoginGuard::kRefusalMemory));
}

BOOST_AUTO_TEST_CASE(digests_are_keyed_per_guard) {
  LoginGuard a, b;
  BOOST_TEST((a.digest("pw") == a.digest("pw")));
  BOOST_TEST((a.digest("pw") != a.digest("pv")));
  BOOST_TEST((a.digest("pw") != b.digest("pw")));
}

BOOST_AUTO_TEST_CASE(logins_are_bounded_per_user_and_per_worker) {
  LoginGuard g;
  auto now = LoginGuard::Clock::now();
  int admitted = 0;
  for (int i = 0; i < 100; ++i)
    admitted += g.admit("one", now) ? 1 : 0;
  BOOST_TEST(admitted == static_cast<int>(LoginGuard::kUserLoginsPerSecond));
  // Other users draw on the worker's budget, which one user could not exhaust.
  for (int i = 0; i < 100; ++i)
    admitted += g.admit("user" + std::to_string(i), now) ? 1 : 0;
  BOOST_TEST(admitted == static_cast<int>(LoginGuard::kLoginsPerSecond));
  BOOST_TEST(g.admit("later", now + 1s));
}

BOOST_AUTO_TEST_CASE(a_refused_user_gets_one_login_a_second) {
  LoginGuard g;
  auto now = LoginGuard::Clock::now();
  BOOST_TEST(g.admit("victim", now));
  g.remember_refusal("victim", g.digest("guess"), now);
  int admitted = 0;
  for (int ms = 0; ms < 3000; ms += 10)
    admitted += g.admit("victim", now + std::chrono::milliseconds(ms)) ? 1 : 0;
  BOOST_TEST(admitted <= 3);
  BOOST_TEST(admitted >= 2);
  BOOST_TEST(g.admit("bystander", now + 3s));
}

BOOST_AUTO_TEST_CASE(the_memory_is_bounded) {
  LoginGuard g;
  auto now = LoginGuard::Clock::now();
  auto first = g.digest("p0");
  g.remember_refusal("u", first, now);
  for (size_t i = 1; i <= LoginGuard::kMaxEntries; ++i)
    g.remember_refusal("u", g.digest("p" + std::to_string(i)), now + std::chrono::milliseconds(1));
  // The oldest refusal made room; the newest is kept.
  BOOST_TEST(!g.refused("u", first, now + 2ms));
  BOOST_TEST(g.refused("u", g.digest("p" + std::to_string(LoginGuard::kMaxEntries)), now + 2ms));
}
