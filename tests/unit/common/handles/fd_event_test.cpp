#define BOOST_TEST_MODULE fd_event
#include "common/handles/fd_event.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/fd.h"
#include "common/handles/timer.h"
#include "common/log.h"
#include "tests/harness/harness.h"

namespace common = sluice::common;
namespace log = sluice::common::log;
using common::Callback;
using common::FdEvent;
using Clock = std::chrono::steady_clock;

namespace {

struct Pair {
  common::UniqueFd a;
  common::UniqueFd b;
  Pair() {
    int fds[2];
    BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

struct Reader {
  int fd = -1;
  int calls = 0;
  std::string got;
  bool throw_once = false;
  std::optional<FdEvent>* self = nullptr;  // destroyed from its own callback at EOF when set
  void readable() {
    ++calls;
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n == 0 && self != nullptr) self->reset();
    if (throw_once) {
      throw_once = false;
      throw std::runtime_error("bad read");
    }
  }
};

void run(event_base* base) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    if (event_base_loop(base, EVLOOP_ONCE) == 1) return;
  }
  BOOST_FAIL("events still pending after 5 s");
}

// Runs the loop for `ms` while something else keeps it busy.
void run_for(event_base* base, int ms) {
  common::Timer stop(
      base, "stop",
      Callback([](void* b) { event_base_loopbreak(static_cast<event_base*>(b)); }, base));
  stop.start(std::chrono::milliseconds(ms));
  event_base_dispatch(base);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_persistent_read_event_runs_on_each_arrival_until_stopped) {
  common::EventBasePtr base(event_base_new());
  Pair p;
  Reader r;
  r.fd = p.a.get();
  FdEvent ev(base.get(), p.a.get(), EV_READ | EV_PERSIST, "test read",
             Callback::bind<&Reader::readable>(&r));
  BOOST_TEST(!ev.pending());
  BOOST_REQUIRE(ev.start());
  BOOST_TEST(ev.pending());
  BOOST_REQUIRE(::write(p.b.get(), "one", 3) == 3);
  run_for(base.get(), 20);
  BOOST_REQUIRE(::write(p.b.get(), "two", 3) == 3);
  run_for(base.get(), 20);
  BOOST_TEST(r.got == "onetwo");
  BOOST_TEST(r.calls == 2);
  BOOST_TEST(ev.pending());  // persistent: still watched after each call
  ev.stop();
  BOOST_TEST(!ev.pending());
  BOOST_REQUIRE(::write(p.b.get(), "three", 5) == 5);
  run(base.get());  // nothing is watched: returns at once
  BOOST_TEST(r.got == "onetwo");
}

BOOST_AUTO_TEST_CASE(a_one_shot_write_event_runs_once) {
  common::EventBasePtr base(event_base_new());
  Pair p;
  int calls = 0;
  FdEvent ev(base.get(), p.a.get(), EV_WRITE, "test write",
             Callback([](void* n) { ++*static_cast<int*>(n); }, &calls));
  BOOST_REQUIRE(ev.start());
  run(base.get());
  BOOST_TEST(calls == 1);
  BOOST_TEST(!ev.pending());
}

BOOST_AUTO_TEST_CASE(a_callback_may_destroy_its_own_event) {
  common::EventBasePtr base(event_base_new());
  Pair p;
  Reader r;
  r.fd = p.a.get();
  std::optional<FdEvent> ev;
  r.self = &ev;
  ev.emplace(base.get(), p.a.get(), EV_READ | EV_PERSIST, "test read",
             Callback::bind<&Reader::readable>(&r));
  BOOST_REQUIRE(ev->start());
  p.b.reset();  // EOF
  run(base.get());
  BOOST_TEST(!ev.has_value());
  BOOST_TEST(r.calls == 1);
}

// epoll refuses regular files (EPERM): start() says so instead of failing silently.
BOOST_AUTO_TEST_CASE(start_fails_on_a_descriptor_the_backend_refuses) {
  common::EventBasePtr base(event_base_new());
  if (std::string(event_base_get_method(base.get())) != "epoll") return;
  common::UniqueFd file(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  BOOST_REQUIRE(file.valid());
  int calls = 0;
  FdEvent ev(base.get(), file.get(), EV_READ, "test file",
             Callback([](void* n) { ++*static_cast<int*>(n); }, &calls));
  BOOST_TEST(!ev.start());
}

BOOST_AUTO_TEST_CASE(an_exception_in_the_callback_is_logged_and_the_loop_goes_on) {
  std::string path = "/tmp/sluice-fd-event-test-" + std::to_string(getpid()) + ".log";
  std::string error;
  BOOST_REQUIRE(log::open(path, log::Level::info, error));
  common::EventBasePtr base(event_base_new());
  Pair p;
  Reader r;
  r.fd = p.a.get();
  r.throw_once = true;
  FdEvent ev(base.get(), p.a.get(), EV_READ | EV_PERSIST, "test read",
             Callback::bind<&Reader::readable>(&r));
  BOOST_REQUIRE(ev.start());
  BOOST_REQUIRE(::write(p.b.get(), "x", 1) == 1);
  run_for(base.get(), 20);
  BOOST_REQUIRE(::write(p.b.get(), "y", 1) == 1);
  run_for(base.get(), 20);
  BOOST_REQUIRE(log::open("", log::Level::info, error));
  std::string text = sluice::test::read_file(path);
  std::remove(path.c_str());
  BOOST_TEST(r.got == "xy");
  BOOST_TEST(
      text.find("ERROR callback: test read: unexpected exception: bad read") != std::string::npos,
      text);
}
