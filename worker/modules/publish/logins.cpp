#include "worker/modules/publish/logins.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

namespace sluice::worker::publish {

LoginGuard::LoginGuard() {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1) std::abort();  // no entropy
}

LoginGuard::Digest LoginGuard::digest(std::string_view password) const {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(password.data()), password.size(), out.data(), &len);
  return out;
}

std::string LoginGuard::refusal_key(const std::string& user, const Digest& password) {
  std::string key = user;
  key.push_back('\0');  // a user name is never split from the digest differently
  key.append(reinterpret_cast<const char*>(password.data()), password.size());
  return key;
}

bool LoginGuard::refused(const std::string& user, const Digest& password, Clock::time_point now) {
  if (refusals_.empty()) return false;
  auto it = refusals_.find(refusal_key(user, password));
  if (it == refusals_.end()) return false;
  if (now < it->second) return true;
  refusals_.erase(it);
  return false;
}

void LoginGuard::remember_refusal(const std::string& user, const Digest& password,
                                  Clock::time_point now) {
  make_room_for_refusal(now);
  refusals_[refusal_key(user, password)] = now + kRefusalMemory;
  auto it = users_.find(user);
  if (it == users_.end()) {
    make_room_for_user(now);
    it = users_.emplace(user, User{{kUserLoginsPerSecond, now}, {}}).first;
  }
  it->second.refused_until = now + kRefusalMemory;
}

// Expired refusals go first; when every one is still fresh, the one closest to expiring.
// Refusals are added at most at the login rate, so the scan stays rare and small.
void LoginGuard::make_room_for_refusal(Clock::time_point now) {
  if (refusals_.size() < kMaxEntries) return;
  for (auto it = refusals_.begin(); it != refusals_.end();)
    it = it->second <= now ? refusals_.erase(it) : std::next(it);
  if (refusals_.size() < kMaxEntries) return;
  refusals_.erase(
      std::min_element(refusals_.begin(), refusals_.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; }));
}

// Users with a full budget and no recent refusal are as good as new, so they are forgotten
// first; when there are none, the first one (a user tracked a little less strictly).
void LoginGuard::make_room_for_user(Clock::time_point now) {
  if (users_.size() < kMaxEntries) return;
  for (auto it = users_.begin(); it != users_.end();) {
    const User& u = it->second;
    bool rested = now - u.bucket.at >= std::chrono::seconds(1) && u.refused_until <= now;
    it = rested ? users_.erase(it) : std::next(it);
  }
  if (users_.size() >= kMaxEntries) users_.erase(users_.begin());
}

void LoginGuard::Bucket::refill(double rate, double burst, Clock::time_point now) {
  std::chrono::duration<double> elapsed = now - at;
  tokens = std::min(burst, tokens + elapsed.count() * rate);
  at = now;
}

// The worker's budget is looked at first, so a flood of requests for new users costs a map
// entry only at the login rate.
bool LoginGuard::admit(const std::string& user, Clock::time_point now) {
  worker_.refill(kLoginsPerSecond, kLoginsPerSecond, now);
  if (worker_.tokens < 1) return false;
  auto it = users_.find(user);
  if (it == users_.end()) {
    make_room_for_user(now);
    it = users_.emplace(user, User{{kUserLoginsPerSecond, now}, {}}).first;
  }
  User& u = it->second;
  // A user refused lately gets a slow budget that holds one login at most.
  bool suspect = now < u.refused_until;
  double rate = suspect ? kRefusedUserLoginsPerSecond : kUserLoginsPerSecond;
  u.bucket.refill(rate, rate, now);
  if (u.bucket.tokens < 1) return false;
  u.bucket.tokens -= 1;
  worker_.tokens -= 1;
  return true;
}

}  // namespace sluice::worker::publish
