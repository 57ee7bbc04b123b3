#pragma once
// Errors as values at module boundaries. C++17 has no std::expected, so Result<T> holds
// either a T or an Error; Errc lists what a client can see (error.h maps it to HTTP).
#include <string>
#include <utility>
#include <variant>

namespace sluice::common {

enum class Errc {
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  method_not_allowed,
  request_timeout,
  conflict,
  length_required,
  too_large,
  header_too_large,
  unsupported_media,
  expectation_failed,
  too_many_requests,
  not_implemented,
  backend_unavailable,
  http_version,
  internal,
};

struct Error {
  Errc code = Errc::internal;
  std::string short_code;  // machine-readable, e.g. "exchange_not_found"
  std::string message;     // one human sentence; never holds credentials
  // A compatibility answer a seed program fixes (statelessd's empty 401): the status and
  // headers only, no JSON body. Still an Error, so it takes the one error path.
  bool bare = false;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error make_error(Errc code, std::string short_code, std::string message) {
  return Error{code, std::move(short_code), std::move(message)};
}

}  // namespace sluice::common
