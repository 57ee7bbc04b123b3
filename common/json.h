#pragma once
// rapidjson aliases and the few helpers every JSON writer here needs. json_key and json_string
// are the one place that keeps a document valid UTF-8: rapidjson's Writer copies the bytes of a
// string as they are, and path segments, user names and header values are whatever the client
// sent. Anything not compiled into the binary goes out through them, never a raw w.String/w.Key.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::common {

using JsonBuffer = rapidjson::StringBuffer;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// What starts at one position of a byte string: a well-formed UTF-8 sequence of `length` bytes
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or, when !valid, the
// maximal ill-formed subpart (1 to 3 bytes) that Unicode and WHATWG decoders replace with one
// U+FFFD. The logger uses the same decoder to escape what is not text.
struct Utf8Step {
  size_t length;
  bool valid;
};
Utf8Step utf8_step(std::string_view text, size_t at);

bool utf8_valid(std::string_view text);
// `text` with each ill-formed sequence replaced by U+FFFD; valid text is kept byte for byte.
std::string utf8_repaired(std::string_view text);

// Control characters need nothing here: rapidjson's Writer escapes them (\n, \u001B, \u0000).
inline void json_key(JsonWriter& w, std::string_view key) {
  if (utf8_valid(key)) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    return;
  }
  std::string repaired = utf8_repaired(key);
  w.Key(repaired.data(), static_cast<rapidjson::SizeType>(repaired.size()), true);
}
inline void json_string(JsonWriter& w, std::string_view value) {
  if (utf8_valid(value)) {
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    return;
  }
  std::string repaired = utf8_repaired(value);
  w.String(repaired.data(), static_cast<rapidjson::SizeType>(repaired.size()), true);
}
// "key": number, for the counters every stats document is made of.
inline void json_uint(JsonWriter& w, const char* key, uint64_t value) {
  w.Key(key);
  w.Uint64(value);
}

// {"a": va, "b": vb}: statelessd's pairs (input/output, opened/closed, minor/major).
inline void json_pair(JsonWriter& w, const char* a, uint64_t va, const char* b, uint64_t vb) {
  w.StartObject();
  json_uint(w, a, va);
  json_uint(w, b, vb);
  w.EndObject();
}

inline std::string json_text(const JsonBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace sluice::common
