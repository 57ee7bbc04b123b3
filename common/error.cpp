#include "common/error.h"

#include "common/json.h"

namespace sluice::common {

int http_status(Errc code) {
  switch (code) {
    case Errc::bad_request:
      return 400;
    case Errc::unauthorized:
      return 401;
    case Errc::forbidden:
      return 403;
    case Errc::not_found:
      return 404;
    case Errc::method_not_allowed:
      return 405;
    case Errc::request_timeout:
      return 408;
    case Errc::conflict:
      return 409;
    case Errc::length_required:
      return 411;
    case Errc::too_large:
      return 413;
    case Errc::header_too_large:
      return 431;
    case Errc::unsupported_media:
      return 415;
    case Errc::expectation_failed:
      return 417;
    case Errc::too_many_requests:
      return 429;
    case Errc::not_implemented:
      return 501;
    case Errc::backend_unavailable:
      return 503;
    case Errc::http_version:
      return 505;
    case Errc::internal:
      return 500;
  }
  return 500;
}

std::string error_body(const Error& error) {
  // Messages can quote what the client sent; json_string keeps the body valid UTF-8.
  JsonBuffer out;
  JsonWriter w(out);
  w.StartObject();
  w.Key("error");
  json_string(w, error.short_code);
  w.Key("message");
  json_string(w, error.message);
  w.EndObject();
  return json_text(out);
}

}  // namespace sluice::common
