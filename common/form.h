#pragma once
// Request fields the way statelessd's clients send them: an urlencoded or multipart/form-data
// body (PHP's curl sends multipart for an array), or the query string; and HTTP Basic
// credentials. Values are raw bytes: nothing is stripped, trimmed or re-encoded.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sluice::common {

// Field name -> value bytes. A repeated field keeps its last value (Tornado's get_argument).
// Transparent comparison: fields are looked up by literal names without building strings.
using FormFields = std::map<std::string, std::string, std::less<>>;

// %XX decoding. '+' stays '+' unless plus_as_space (form encoding). A '%' not followed by two
// hex digits is an error.
Result<std::string> percent_decode(std::string_view in, bool plus_as_space);

// a=1&b=2 ('+' is a space, as in every browser and PHP form encoder). Empty pairs are skipped;
// a name without '=' has an empty value.
Result<void> parse_urlencoded(std::string_view text, FormFields& out);

// multipart/form-data: the boundary comes from `content_type`. Every part with a
// Content-Disposition name becomes a field (a file part's content is its value).
Result<void> parse_multipart(std::string_view body, std::string_view content_type, FormFields& out);

// Chooses by Content-Type (case-insensitive media type, parameters ignored except the
// multipart boundary): urlencoded and multipart are parsed; an absent Content-Type with a
// non-empty body is read as urlencoded (curl -d without a type); any other type is an
// unsupported_media error.
Result<void> parse_form_body(std::string_view content_type, std::string_view body, FormFields& out);

struct BasicCredentials {
  std::string user;
  std::string password;
};

// "Basic <base64(user:password)>": split at the first ':' only, so passwords may hold ':'.
// nullopt when the header is absent, not Basic, not valid base64, or has no ':'.
std::optional<BasicCredentials> parse_basic_auth(const char* authorization);

}  // namespace sluice::common
