#define BOOST_TEST_MODULE timer
#include "common/handles/timer.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/log.h"
#include "tests/harness/harness.h"

namespace common = sluice::common;
namespace log = sluice::common::log;
using common::Callback;
using common::Timer;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

struct Loop {
  common::EventBasePtr base{event_base_new()};
  // Runs until no event is left; fails after 5 s instead of hanging on a timer that never
  // stops.
  void run() {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (event_base_loop(base.get(), EVLOOP_ONCE) == 1) return;  // nothing pending
    }
    BOOST_FAIL("events still pending after 5 s");
  }
};

// Counts its fires and runs `then` (if set) on each.
struct Counter {
  int fires = 0;
  std::function<void()> then;
  void fire() {
    ++fires;
    if (then) then();
  }
  Callback callback() { return Callback::bind<&Counter::fire>(this); }
};

struct Holder {
  int* fires;
  static void fire(Holder* h) { ++*h->fires; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_one_shot_fires_once_after_its_delay) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  auto started = Clock::now();
  Clock::time_point fired;
  c.then = [&] { fired = Clock::now(); };
  t.start(milliseconds(50));
  BOOST_TEST(t.pending());
  loop.run();
  BOOST_TEST(c.fires == 1);
  BOOST_TEST(!t.pending());
  // libevent's clock is CLOCK_MONOTONIC_COARSE (a few ms of resolution): it may fire a little
  // early by steady_clock.
  BOOST_TEST((fired - started >= milliseconds(40)));
}

BOOST_AUTO_TEST_CASE(a_repeating_timer_fires_until_stopped) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  std::vector<bool> pending_inside;
  c.then = [&] {
    if (c.fires == 3) t.stop();
    pending_inside.push_back(t.pending());
  };
  auto started = Clock::now();
  t.start_every(milliseconds(10));
  loop.run();
  BOOST_TEST(c.fires == 3);
  BOOST_TEST((Clock::now() - started >= milliseconds(20)));  // 30, less the coarse clock
  // Already scheduled again while its callback runs; not after stop().
  BOOST_TEST(pending_inside == std::vector<bool>({true, true, false}),
             boost::test_tools::per_element());
  BOOST_TEST(!t.pending());
}

BOOST_AUTO_TEST_CASE(stop_cancels_a_pending_timer) {
  Loop loop;
  Counter late;
  Counter early;
  Timer victim(loop.base.get(), "victim", late.callback());
  Timer stopper(loop.base.get(), "stopper", early.callback());
  early.then = [&] { victim.stop(); };
  victim.start(milliseconds(30));
  stopper.start(milliseconds(1));
  loop.run();
  BOOST_TEST(early.fires == 1);
  BOOST_TEST(late.fires == 0);
  BOOST_TEST(!victim.pending());
}

BOOST_AUTO_TEST_CASE(start_again_moves_the_deadline_and_fires_once) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  t.start(milliseconds(3000));
  t.start(milliseconds(1));
  auto started = Clock::now();
  loop.run();
  BOOST_TEST(c.fires == 1);
  BOOST_TEST((Clock::now() - started < milliseconds(1000)));
}

BOOST_AUTO_TEST_CASE(a_callback_may_rearm_its_own_timer) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  c.then = [&] {
    if (c.fires < 4) t.start(milliseconds(0));
  };
  t.start(milliseconds(0));
  loop.run();
  BOOST_TEST(c.fires == 4);
}

BOOST_AUTO_TEST_CASE(one_shot_after_repeating_fires_once) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  t.start_every(milliseconds(2));
  t.start(milliseconds(2));  // no longer repeating
  loop.run();
  BOOST_TEST(c.fires == 1);
  // And back: a repeating timer after one-shots.
  c.then = [&] {
    if (c.fires == 3) t.stop();
  };
  t.start_every(milliseconds(2));
  loop.run();
  BOOST_TEST(c.fires == 3);
}

BOOST_AUTO_TEST_CASE(the_destructor_cancels) {
  Loop loop;
  Counter c;
  std::optional<Timer> t;
  t.emplace(loop.base.get(), "test", c.callback());
  t->start(milliseconds(1));
  t.reset();
  // Nothing pending: dispatch returns 1 at once rather than waiting for (or running) it.
  BOOST_TEST(event_base_dispatch(loop.base.get()) == 1);
  BOOST_TEST(c.fires == 0);
}

BOOST_AUTO_TEST_CASE(a_callback_may_destroy_its_own_timer) {
  Loop loop;
  Counter c;
  std::optional<Timer> t;
  t.emplace(loop.base.get(), "test", c.callback());
  c.then = [&] { t.reset(); };
  t->start_every(milliseconds(1));
  loop.run();
  BOOST_TEST(c.fires == 1);
  BOOST_TEST(!t.has_value());
}

// activate() runs in the turn it is called from; start(0) waits for the next one.
BOOST_AUTO_TEST_CASE(activate_runs_before_a_zero_delay_start) {
  Loop loop;
  std::vector<std::string> order;
  Counter a;
  Counter zero;
  Counter now;
  Timer ta(loop.base.get(), "a", a.callback());
  Timer tzero(loop.base.get(), "zero", zero.callback());
  Timer tnow(loop.base.get(), "now", now.callback());
  zero.then = [&] { order.push_back("zero"); };
  now.then = [&] { order.push_back("now"); };
  a.then = [&] {
    tzero.start(milliseconds(0));
    tnow.activate();
    BOOST_TEST(tnow.pending());
  };
  ta.start(milliseconds(0));
  loop.run();
  BOOST_TEST(order == std::vector<std::string>({"now", "zero"}), boost::test_tools::per_element());
  BOOST_TEST(!tnow.pending());
}

BOOST_AUTO_TEST_CASE(activate_twice_runs_once) {
  Loop loop;
  Counter c;
  Timer t(loop.base.get(), "test", c.callback());
  t.activate();
  t.activate();
  loop.run();
  BOOST_TEST(c.fires == 1);
}

BOOST_AUTO_TEST_CASE(a_function_taking_the_object_can_be_bound) {
  Loop loop;
  int fires = 0;
  Holder holder{&fires};
  Timer t(loop.base.get(), "test", Callback::bind<&Holder::fire>(&holder));
  t.start(milliseconds(0));
  loop.run();
  BOOST_TEST(fires == 1);
}

// The callback runs through common::guard: the exception is logged with the timer's name and
// the loop goes on to run the next timer (without it, std::terminate).
BOOST_AUTO_TEST_CASE(an_exception_in_the_callback_is_logged_and_the_loop_goes_on) {
  std::string path = "/tmp/sluice-timer-test-" + std::to_string(getpid()) + ".log";
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  Loop loop;
  Counter thrower;
  Counter after;
  thrower.then = [] { throw std::runtime_error("boom"); };
  Timer t1(loop.base.get(), "test timer", thrower.callback());
  Timer t2(loop.base.get(), "next timer", after.callback());
  t1.start_every(milliseconds(1));
  after.then = [&] { t1.stop(); };
  t2.start(milliseconds(20));
  loop.run();
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::string text = sluice::test::read_file(path);
  std::remove(path.c_str());
  BOOST_TEST(thrower.fires >= 2);  // a repeating timer keeps going after a throw
  BOOST_TEST(after.fires == 1);
  BOOST_TEST(
      text.find("ERROR callback: test timer: unexpected exception: boom") != std::string::npos,
      text);
}
