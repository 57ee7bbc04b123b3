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
    if (c == '/' || c == ' ' || c == '\n' || c == '"' || c == '\'') return 0;
    if (c == ':' && colon == std::string_view::npos) colon = i;
  }
  if (i >= text.size() || colon == std::string_view::npos) return 0;
  out.append(text.substr(at, colon + 1 - at));
  out.append("***");
  return i - at;  // the '@' is copied by the caller's loop
}

}  // namespace

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
  int n = std::snprintf(prefix, sizeof prefix, "[%d] %04d-%02d-%02d %02d:%02d:%02d.%03d %s %s: ",
                        static_cast<int>(getpid()), parts.tm_year + 1900, parts.tm_mon + 1,
                        parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                        static_cast<int>(tv.tv_usec / 1000), level_name(level), module);
  std::string line(prefix, n > 0 ? static_cast<size_t>(n) : 0);
  line += redact(message);
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
