#pragma once
// What one worker allows itself in broker logins. Every distinct (vhost, user, password) is
// a connection of its own, so a client trying passwords would otherwise make the worker open
// a new AMQP connection (and a handshake thread) per request, hundreds a second.
//   - A refused (user, password) is remembered for kRefusalMemory and answered 401 from
//     memory, across vhosts (the broker checks the password before the vhost). Only an
//     HMAC-SHA256 of the password under a key made at startup is kept, never the password.
//   - New logins are bounded: kLoginsPerSecond per worker, kUserLoginsPerSecond per user,
//     and one per second for a user whose login was refused lately. Beyond that the answer
//     is 429 too_many_logins with Retry-After: the client, not the broker, is at fault, and
//     a retry a second later can work.
// A good login gets through a brute force: requests for credentials with a connection kept
// open need no login at all (the guard is not asked); a fresh login for another user draws
// on the worker's budget, which one attacked user cannot exhaust.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace sluice::worker::publish {

class LoginGuard {
 public:
  using Clock = std::chrono::steady_clock;
  using Digest = std::array<uint8_t, 32>;

  static constexpr std::chrono::seconds kRefusalMemory{10};
  static constexpr double kLoginsPerSecond = 20;
  static constexpr double kUserLoginsPerSecond = 5;
  static constexpr double kRefusedUserLoginsPerSecond = 1;
  static constexpr size_t kMaxEntries = 4096;  // refusals kept, and users tracked

  LoginGuard();

  Digest digest(std::string_view password) const;
  // The broker refused this user and password within kRefusalMemory.
  bool refused(const std::string& user, const Digest& password, Clock::time_point now);
  void remember_refusal(const std::string& user, const Digest& password, Clock::time_point now);
  // Takes a login from the budgets; false: too many logins now.
  bool admit(const std::string& user, Clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
    // Adds what `rate` earned since `at`, up to `burst`.
    void refill(double rate, double burst, Clock::time_point now);
  };
  struct User {
    Bucket bucket;
    Clock::time_point refused_until;
  };

  static std::string refusal_key(const std::string& user, const Digest& password);
  void make_room_for_refusal(Clock::time_point now);
  void make_room_for_user(Clock::time_point now);

  std::array<uint8_t, 32> key_{};
  Bucket worker_{kLoginsPerSecond, Clock::now()};
  std::map<std::string, Clock::time_point, std::less<>> refusals_;  // until when
  std::map<std::string, User, std::less<>> users_;
};

}  // namespace sluice::worker::publish
