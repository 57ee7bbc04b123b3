#include "common/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "common/json.h"

namespace sluice::common::log {
namespace {

struct State {
  int fd = STDERR_FILENO;
  std::string path;  // empty: stderr
  Level threshold = Level::info;
};

State& state() {
  static State s;
  return s;
}

int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

bool ieq_prefix(std::string_view text, size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = text[at + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != word[i]) return false;
  }
  return true;
}

// "Authorization: Basic abc" or "authorization=..." up to the end of the value.
size_t redact_authorization(std::string_view text, size_t at, std::string& out) {
  constexpr std::string_view kWord = "authorization";
  size_t i = at + kWord.size();
  while (i < text.size() && (text[i] == ' ' || text[i] == '"' || text[i] == '\''))
    ++i;
  if (i >= text.size() || (text[i] != ':' && text[i] != '=')) return 0;
  ++i;
  while (i < text.size() && (text[i] == ' ' || text[i] == '"' || text[i] == '\''))
    ++i;
  size_t end = i;
  while (end < text.size() && text[end] != '\r' && text[end] != '\n' && text[end] != '"' &&
         text[end] != '\'' && text[end] != ',' && text[end] != '}') {
    ++end;
  }
  out.append(text.substr(at, i - at));
  out.append("[redacted]");
  return end - at;
}

// "scheme://user:secret@" keeps the user and hides the secret.
size_t redact_uri_password(std::string_view text, size_t at, std::string& out) {
  size_t i = at + 3;  // past "://"
  size_t colon = std::string_view::npos;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '@') break;
    // A control byte does not end the search: the line shows it escaped, so stopping there
    // would print the password it interrupts.
    if (c == '/' || c == ' ' || c == '"' || c == '\'') return 0;
    if (c == ':' && colon == std::string_view::npos) colon = i;
  }
  if (i >= text.size() || colon == std::string_view::npos) return 0;
  out.append(text.substr(at, colon + 1 - at));
  out.append("***");
  return i - at;  // the '@' is copied by the caller's loop
}

// A C1 control (U+0080..U+009F, C2 80..C2 9F): well-formed UTF-8, but some terminals act on
// U+009B as they do on ESC [.
bool c1_control(std::string_view text, size_t at) {
  return static_cast<unsigned char>(text[at]) == 0xc2 &&
         static_cast<unsigned char>(text[at + 1]) < 0xa0;
}

// A bidirectional formatting character (U+202A..U+202E, U+2066..U+2069: E2 80 AA..AE,
// E2 81 A6..A9): a right-to-left override makes the rest of a log line display reversed,
// so a client's path could show an operator text that is not there.
bool bidi_control(std::string_view text, size_t at) {
  if (text.size() < at + 3 || static_cast<unsigned char>(text[at]) != 0xe2) return false;
  auto b1 = static_cast<unsigned char>(text[at + 1]);
  auto b2 = static_cast<unsigned char>(text[at + 2]);
  return (b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9);
}

}  // namespace

// Copies `text`, writing every control byte (< 0x20, 0x7f, C1, bidi) and every byte of an
// ill-formed UTF-8 sequence as \xNN, as nginx escapes its access log: a client's newline
// cannot start a line of its own, ESC cannot drive the terminal of whoever reads the log, and
// the file stays UTF-8 text.
void append_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = 1;
    bool keep = c >= 0x20 && c < 0x7f;
    if (c >= 0x80) {
      Utf8Step step = utf8_step(text, i);
      length = step.length;
      keep = step.valid && !c1_control(text, i) && !bidi_control(text, i);
    }
    if (keep) {
      out.append(text, i, length);
    } else {
      for (size_t k = i; k < i + length; ++k) {
        auto b = static_cast<unsigned char>(text[k]);
        out.append({'\\', 'x', kHex[b >> 4], kHex[b & 0xf]});
      }
    }
    i += length;
  }
}

bool parse_level(std::string_view text, Level& out) {
  static constexpr std::pair<std::string_view, Level> kLevels[] = {{"debug", Level::debug},
                                                                   {"info", Level::info},
                                                                   {"warn", Level::warn},
                                                                   {"error", Level::error}};
  for (const auto& [name, level] : kLevels) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "DEBUG";
    case Level::info:
      return "INFO";
    case Level::warn:
      return "WARN";
    case Level::error:
      return "ERROR";
  }
  return "?";
}

bool open(const std::string& path, Level threshold, std::string& error) {
  State& s = state();
  s.threshold = threshold;
  if (path.empty()) {
    if (s.fd != STDERR_FILENO) ::close(s.fd);
    s.fd = STDERR_FILENO;
    s.path.clear();
    return true;
  }
  int fd = open_append(path);
  if (fd < 0) {
    error = std::string("open(\"") + path + "\") failed: " + std::strerror(errno);
    return false;
  }
  if (s.fd != STDERR_FILENO) ::close(s.fd);
  s.fd = fd;
  s.path = path;
  return true;
}

bool reopen(std::string& error) {
  State& s = state();
  if (s.path.empty()) return true;
  int fd = open_append(s.path);
  if (fd < 0) {
    error = std::string("open(\"") + s.path + "\") failed: " + std::strerror(errno);
    return false;
  }
  int old = s.fd;
  s.fd = fd;
  if (old != STDERR_FILENO) ::close(old);
  return true;
}

void chown_file(uid_t uid, gid_t gid) {
  State& s = state();
  if (!s.path.empty() && fchown(s.fd, uid, gid) != 0) {
    write_errno(Level::warn, errno, "log", "fchown(\"%s\", %d, %d) failed", s.path.c_str(),
                static_cast<int>(uid), static_cast<int>(gid));
  }
}

const std::string& path() {
  return state().path;
}
int fd() {
  return state().fd;
}

std::string redact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t skipped = 0;
    if ((text[i] == 'a' || text[i] == 'A') && ieq_prefix(text, i, "authorization")) {
      skipped = redact_authorization(text, i, out);
    } else if (text[i] == ':' && text.substr(i, 3) == "://") {
      skipped = redact_uri_password(text, i, out);
    }
    if (skipped > 0) {
      i += skipped;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string format_line(Level level, const char* module, std::string_view message) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm parts{};
  localtime_r(&tv.tv_sec, &parts);
  char prefix[96];
  int n = std::snprintf(prefix, sizeof prefix, "[%d] %04d-%02d-%02d %02d:%02d:%02d.%03d %s ",
                        static_cast<int>(getpid()), parts.tm_year + 1900, parts.tm_mon + 1,
                        parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                        static_cast<int>(tv.tv_usec / 1000), level_name(level));
  std::string line(prefix, std::clamp(n, 0, static_cast<int>(sizeof prefix) - 1));
  append_escaped(line, module != nullptr ? module : "");
  line += ": ";
  // Redaction first, on the raw text, where an Authorization value still ends at the CR or LF
  // that ends its header line; escaping then adds nothing that redact() would look for.
  append_escaped(line, redact(message));
  return line;
}

namespace {

void emit(Level level, const char* module, const char* fmt, va_list ap, int err) {
  char message[2048];
  int n = std::vsnprintf(message, sizeof message, fmt, ap);
  if (n < 0) return;
  std::string text(message, std::min(static_cast<size_t>(n), sizeof message - 1));
  if (err != 0) {
    text += ": ";
    text += std::strerror(err);
  }
  std::string line = format_line(level, module, text);
  line.push_back('\n');
  // One write() per line: O_APPEND keeps lines from several processes whole.
  ssize_t rc = ::write(state().fd, line.data(), line.size());
  (void)rc;
}

}  // namespace

void write(Level level, const char* module, const char* fmt, ...) {
  if (level < state().threshold) return;
  va_list ap;
  va_start(ap, fmt);
  emit(level, module, fmt, ap, 0);
  va_end(ap);
}

void write_errno(Level level, int err, const char* module, const char* fmt, ...) {
  if (level < state().threshold) return;
  va_list ap;
  va_start(ap, fmt);
  emit(level, module, fmt, ap, err);
  va_end(ap);
}

}  // namespace sluice::common::log
