#pragma once
// LeakSanitizer for a process that leaves through _exit(), as a forked worker does: _exit()
// skips the check LSan makes at exit. In a build without ASan (SLUICE_SANITIZE=OFF) this is
// nothing.
#include <sys/prctl.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace sluice::common {

// Checks for leaks now (a report ends the process with LSan's exit code), then returns
// `exit_code` for _exit().
inline int leak_checked(int exit_code) {
#if defined(__SANITIZE_ADDRESS__)
  // LSan stops the process with ptrace, which a process that changed its uid may not do
  // until it is dumpable again.
  prctl(PR_SET_DUMPABLE, 1);
  __lsan_do_leak_check();
#endif
  return exit_code;
}

}  // namespace sluice::common
