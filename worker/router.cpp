#include "worker/router.h"

#include <algorithm>

namespace sluice::worker {
namespace {

// HEAD is GET without the body (RFC 9110 section 9.3.2): a route that takes GET takes HEAD,
// and the response writer leaves the body out.
bool accepts(MethodSet methods, htp_method method) {
  if (method == htp_method_HEAD && (methods & method_bit(htp_method_GET)) != 0) return true;
  return (methods & method_bit(method)) != 0;
}

// Views into `path`, which outlives them: matching a request allocates only its params.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    size_t slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  return out;
}

int tier_of(const std::vector<std::string>& segments) {
  bool any_wild = false, any_literal = false;
  for (const auto& s : segments) {
    if (s == "*" || s == "**") {
      any_wild = true;
    } else {
      any_literal = true;
    }
  }
  if (!any_wild) return 0;
  return any_literal ? 1 : 2;
}

bool match_segments(const std::vector<std::string>& pattern,
                    const std::vector<std::string_view>& path,
                    std::vector<std::string_view>& params) {
  params.clear();
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p == "**") {
      // The rest of the path, slashes included: segments are consecutive views of it.
      if (i >= path.size()) {
        params.emplace_back();
      } else {
        const char* end = path.back().data() + path.back().size();
        params.emplace_back(path[i].data(), static_cast<size_t>(end - path[i].data()));
      }
      return true;
    }
    if (i >= path.size()) return false;
    if (p == "*") {
      if (path[i].empty()) return false;
      params.push_back(path[i]);
    } else if (p != path[i]) {
      return false;
    }
  }
  return pattern.size() == path.size();
}

}  // namespace

void Router::add(std::string pattern, MethodSet methods, Handler handler, std::string module,
                 Precheck precheck) {
  Route route;
  for (std::string_view segment : split_path(pattern))
    route.segments.emplace_back(segment);
  route.tier = tier_of(route.segments);
  route.pattern = std::move(pattern);
  route.methods = methods;
  route.handler = std::move(handler);
  route.precheck = std::move(precheck);
  route.module = std::move(module);
  // Keep the table sorted by tier, registration order within a tier.
  auto at = std::upper_bound(routes_.begin(), routes_.end(), route.tier,
                             [](int tier, const Route& r) { return tier < r.tier; });
  routes_.insert(at, std::move(route));
}

RouteMatch Router::match(std::string_view path, htp_method method) const {
  RouteMatch result;
  std::vector<std::string_view> segments = split_path(path);
  std::vector<std::string_view> params;
  for (const Route& route : routes_) {
    if (!match_segments(route.segments, segments, params)) continue;
    result.allowed |= route.methods;
    if (!accepts(route.methods, method)) continue;
    result.route = &route;
    result.params.assign(params.begin(), params.end());
    return result;
  }
  return result;
}

std::string allow_header(MethodSet methods) {
  if (methods & method_bit(htp_method_GET)) methods |= method_bit(htp_method_HEAD);
  std::string out;
  for (unsigned m = 0; m < static_cast<unsigned>(htp_method_UNKNOWN); ++m) {
    if ((methods & (1u << m)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += htparser_get_methodstr_m(static_cast<htp_method>(m));
  }
  return out;
}

}  // namespace sluice::worker
