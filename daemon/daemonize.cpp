#include "daemon/daemonize.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "daemon/signals.h"

namespace sluice::daemon {

bool daemonize(int& ready_fd, bool keep_stderr) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "sluiced: pipe2() failed: %s\n", std::strerror(errno));
    return false;
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "sluiced: fork() failed: %s\n", std::strerror(errno));
    return false;
  }
  if (pid > 0) {
    unblock_supervisor_signals();  // only waits: Ctrl-C must still end it
    close(pipefd[1]);
    unsigned char status = 1;
    ssize_t n;
    do {
      n = read(pipefd[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    _exit(n == 1 ? status : 1);
  }
  close(pipefd[0]);
  ready_fd = pipefd[1];
  if (setsid() < 0) {
    std::fprintf(stderr, "sluiced: setsid() failed: %s\n", std::strerror(errno));
    return false;
  }
  umask(022);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (!keep_stderr) dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
  }
  return true;
}

void notify_ready(int& ready_fd, int status) {
  if (ready_fd < 0) return;
  unsigned char byte = static_cast<unsigned char>(status);
  ssize_t n = write(ready_fd, &byte, 1);
  (void)n;
  close(ready_fd);
  ready_fd = -1;
}

}  // namespace sluice::daemon
