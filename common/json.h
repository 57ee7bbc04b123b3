#pragma once
// rapidjson aliases and the few helpers every JSON writer here needs.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::common {

using JsonBuffer = rapidjson::StringBuffer;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void json_key(JsonWriter& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}
inline void json_string(JsonWriter& w, std::string_view value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
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
