#include "common/json.h"

namespace sluice::common {

// Unicode's Table 3-7: the lead byte sets how many continuation bytes follow and the range of
// the first one, which is what rules out overlong forms (E0, F0), surrogates (ED) and code
// points above U+10FFFF (F4). C0, C1 and F5..FF never start a sequence.
Utf8Step utf8_step(std::string_view text, size_t at) {
  auto byte = [&text](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(at);
  if (lead < 0x80) return {1, true};
  size_t tail = 0;
  unsigned char lo = 0x80, hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    tail = 1;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    tail = 2;
    if (lead == 0xe0) lo = 0xa0;
    if (lead == 0xed) hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    tail = 3;
    if (lead == 0xf0) lo = 0x90;
    if (lead == 0xf4) hi = 0x8f;
  } else {
    return {1, false};
  }
  for (size_t k = 1; k <= tail; ++k) {
    if (at + k >= text.size() || byte(at + k) < lo || byte(at + k) > hi) return {k, false};
    lo = 0x80;
    hi = 0xbf;
  }
  return {tail + 1, true};
}

bool utf8_valid(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Step step = utf8_step(text, i);
    if (!step.valid) return false;
    i += step.length;
  }
  return true;
}

std::string utf8_repaired(std::string_view text) {
  constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    Utf8Step step = utf8_step(text, i);
    if (step.valid) {
      out.append(text, i, step.length);
    } else {
      out.append(kReplacement);
    }
    i += step.length;
  }
  return out;
}

}  // namespace sluice::common
