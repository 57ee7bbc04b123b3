#pragma once
// One logger for every process: "[pid] time LEVEL module: message" to the configured file or
// stderr. Credentials are redacted, and control bytes and ill-formed UTF-8 written as \xNN, in
// the formatter itself, so no caller can leak a secret or let a client forge a line.
#include <sys/types.h>

#include <string>
#include <string_view>

namespace sluice::common::log {

enum class Level { debug = 0, info, warn, error };

// Parses "debug|info|warn|error"; returns false on anything else.
bool parse_level(std::string_view text, Level& out);
const char* level_name(Level level);

// Opens `path` for appending (empty path: stderr) and sets the threshold. On failure the
// previous destination stays in use and the errno text is returned in `error`.
bool open(const std::string& path, Level threshold, std::string& error);
// SIGUSR1: open the file again under the same path, swap it in, close the old fd; keep the
// old fd if the open fails (nginx's ngx_reopen_files).
bool reopen(std::string& error);
// Lets a root supervisor hand a log file to the unprivileged workers (nginx does the same).
void chown_file(uid_t uid, gid_t gid);
const std::string& path();
int fd();

void write(Level level, const char* module, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Like write(), then ": <strerror(err)>" as nginx does for failed system calls.
void write_errno(Level level, int err, const char* module, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Removes credentials: the value of an Authorization header and the password of a URI
// such as amqp://user:secret@host/ or redis://:secret@host.
std::string redact(std::string_view text);

// Appends `text` with every control byte (< 0x20, 0x7f, C1, bidirectional overrides) and
// every byte of ill-formed UTF-8 written as \xNN: what write() does to every message and
// module name.
void append_escaped(std::string& out, std::string_view text);

// The exact line write() emits, without the trailing newline (exposed for tests): the module
// and the redacted message escaped, so the line is UTF-8 text without a control byte.
std::string format_line(Level level, const char* module, std::string_view message);

}  // namespace sluice::common::log

#define SLOG_DEBUG(mod, ...) \
  ::sluice::common::log::write(::sluice::common::log::Level::debug, mod, __VA_ARGS__)
#define SLOG_INFO(mod, ...) \
  ::sluice::common::log::write(::sluice::common::log::Level::info, mod, __VA_ARGS__)
#define SLOG_WARN(mod, ...) \
  ::sluice::common::log::write(::sluice::common::log::Level::warn, mod, __VA_ARGS__)
#define SLOG_ERROR(mod, ...) \
  ::sluice::common::log::write(::sluice::common::log::Level::error, mod, __VA_ARGS__)
#define SLOG_SYSERR(mod, err, ...) \
  ::sluice::common::log::write_errno(::sluice::common::log::Level::error, err, mod, __VA_ARGS__)
