#include "worker/worker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "common/guard.h"
#include "common/log.h"
#include "worker/modules/registry.h"

namespace sluice::worker {
namespace {

constexpr const char* kModule = "worker";
constexpr long long kStatsPublishMs = 1000;
constexpr long long kDrainPollMs = 50;
// How long a drain waits for connections accepted just before it that have not sent their
// request yet (bounded by shutdown_timeout).
constexpr std::chrono::milliseconds kFreshConnectionGrace{2000};
// Held requests still unanswered this long before shutdown_timeout get their timeout answer
// (at most half of shutdown_timeout), so a client is answered rather than cut off.
constexpr std::chrono::milliseconds kHeldAnswerMargin{1000};

}  // namespace

Worker::Worker(const WorkerLaunch& launch) : base_(event_base_new()), launch_(launch) {}

Worker::~Worker() = default;

const common::ListenConfig& Worker::listen() const {
  return launch_.config->listeners.at(launch_.listener_index);
}

common::Result<void> Worker::init() {
  if (!base_) {
    return common::make_error(common::Errc::internal, "event_base", "event_base_new() failed");
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  hostname_ = host;

  common::WorkerSlot& s = slot();
  s.reset_counters();
  s.started.store(static_cast<int64_t>(time(nullptr)), std::memory_order_relaxed);
  s.pid.store(static_cast<int32_t>(getpid()), std::memory_order_relaxed);
  s.publish_rusage();

  modules_ = make_modules(listen().modules);
  // Their sections were read into config() by their schemas; each takes its settings in
  // start().
  for (auto& m : modules_) {
    m->add_routes(router_);
    m->bind_counters(counters_in(s, m->name()));
  }
  http_ = std::make_unique<HttpServer>(base(), listen(), router_, s);
  if (auto started = http_->start(launch_.listen_fd); !started) return started.error();
  if (config().redis) redis_ = std::make_unique<RedisConnection>(base(), *config().redis);
  for (auto& m : modules_) {
    if (auto started = m->start(*this); !started) return started.error();
  }

  add_signal(sigterm_, SIGTERM);
  add_signal(sigquit_, SIGQUIT);
  add_signal(sigusr1_, SIGUSR1);
  stats_timer_.emplace(base(), "stats rusage",
                       common::Callback::bind<&Worker::publish_rusage>(this));
  stats_timer_->start_every(std::chrono::milliseconds(kStatsPublishMs));
  if (redis_) redis_->start();
  return {};
}

void Worker::publish_rusage() {
  slot().publish_rusage();
}

void Worker::add_signal(common::EventPtr& ev, int signo) {
  ev.reset(evsignal_new(
      base(), signo,
      [](evutil_socket_t fd, short, void* arg) {
        common::guard("signal",
                      [&] { static_cast<Worker*>(arg)->on_signal(static_cast<int>(fd)); });
      },
      this));
  evsignal_add(ev.get(), nullptr);
}

int Worker::run() {
  // Signals that arrived between fork() and now were held by the mask; they are delivered
  // to the events above as soon as it is lifted.
  sigprocmask(SIG_SETMASK, &launch_.signal_mask, nullptr);
  SLOG_INFO(kModule, "serving %s:%u (%zu routes)", listen().address.c_str(),
            static_cast<unsigned>(listen().port), router_.routes().size());
  event_base_dispatch(base());
  slot().publish_rusage();
  return 0;
}

void Worker::on_signal(int signo) {
  switch (signo) {
    case SIGTERM:
      begin_drain();
      break;
    case SIGQUIT:
      SLOG_INFO(kModule, "quit: exiting now");
      event_base_loopbreak(base());
      break;
    case SIGUSR1: {
      std::string error;
      if (!common::log::reopen(error)) SLOG_ERROR(kModule, "log reopen failed: %s", error.c_str());
      break;
    }
    default:
      break;
  }
}

void Worker::begin_drain() {
  if (drain_timer_) return;
  SLOG_INFO(kModule, "graceful stop: %llu requests in flight (%zu held)",
            static_cast<unsigned long long>(http_->in_flight()), http_->held());
  auto now = std::chrono::steady_clock::now();
  const std::chrono::milliseconds timeout = config().daemon.shutdown_timeout;
  drain_deadline_ = now + timeout;
  drain_fresh_deadline_ = now + std::min(kFreshConnectionGrace, timeout);
  drain_answer_held_ = drain_deadline_ - std::min(kHeldAnswerMargin, timeout / 2);
  http_->drain();
  for (auto& m : modules_)
    m->drain(drain_answer_held_);
  drain_timer_.emplace(base(), "drain", common::Callback::bind<&Worker::check_drained>(this));
  drain_timer_->start_every(std::chrono::milliseconds(kDrainPollMs));
  check_drained();
}

size_t Worker::module_work() const {
  size_t work = 0;
  for (const auto& m : modules_)
    work += m->work_in_flight();
  return work;
}

void Worker::check_drained() {
  auto now = std::chrono::steady_clock::now();
  if (!held_answered_ && now >= drain_answer_held_) {
    held_answered_ = true;
    http_->expire_holds();
  }
  bool fresh_waiting = http_->fresh_connections() > 0 && now < drain_fresh_deadline_;
  if (http_->in_flight() == 0 && module_work() == 0 && !fresh_waiting) {
    event_base_loopexit(base(), nullptr);
    return;
  }
  if (now >= drain_deadline_) {
    SLOG_WARN(kModule,
              "shutdown_timeout reached with %llu requests and %zu module tasks in flight; "
              "exiting",
              static_cast<unsigned long long>(http_->in_flight()), module_work());
    event_base_loopexit(base(), nullptr);
  }
}

}  // namespace sluice::worker
