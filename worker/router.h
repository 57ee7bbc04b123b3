#pragma once
// The ordered route table of one listener. Patterns are '/'-separated segments: a literal,
// '*' (one non-empty segment, captured) or a final '**' (the rest, captured, may be empty).
// Order: exact routes first, then patterns with a literal segment, then patterns made only
// of wildcards (publish's catch-all), each group in registration order. A path that matches
// a route but not its methods is a 405 unless a later route takes the method.
#include <evhtp.h>

#include <functional>
#include <string>

#include <string_view>
#include <vector>
#include "common/result.h"

namespace sluice::worker {

class RequestCtx;
using Handler = std::function<void(RequestCtx&)>;
// What a route can refuse from the request line and headers alone (credentials, method),
// run before any body byte is read: a client is never made to send, nor the worker to hold,
// a body whose answer is already known. Headers it adds go out with the error.
using Precheck = std::function<common::Result<void>(RequestCtx&)>;

// Bit per htp_method; kAnyMethod accepts everything.
using MethodSet = uint32_t;
constexpr MethodSet method_bit(htp_method m) {
  return 1u << static_cast<unsigned>(m);
}
constexpr MethodSet kAnyMethod = ~0u;

struct Route {
  std::string pattern;
  MethodSet methods = kAnyMethod;
  Handler handler;
  Precheck precheck;   // may be empty
  std::string module;  // for the route table test and for logs
  int tier = 0;        // 0 exact, 1 pattern with a literal, 2 wildcards only
  std::vector<std::string> segments;
};

struct RouteMatch {
  const Route* route = nullptr;  // null: no route for this path
  std::vector<std::string> params;
  MethodSet allowed = 0;  // methods of the routes whose pattern matched (for 405 Allow)
};

class Router {
 public:
  void add(std::string pattern, MethodSet methods, Handler handler, std::string module,
           Precheck precheck = nullptr);
  RouteMatch match(std::string_view path, htp_method method) const;
  // In match order, for tests and the startup log.
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// "GET, POST" for an Allow header.
std::string allow_header(MethodSet methods);

}  // namespace sluice::worker
