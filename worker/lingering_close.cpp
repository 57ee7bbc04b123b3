#include "worker/lingering_close.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>

#include <cerrno>

namespace sluice::worker {

void LingeringClose::close(evhtp_connection_t* conn) {
  auto c = std::make_unique<Closing>(this, conn);
  c->timer.start_every(kPoll);
  closing_[conn] = std::move(c);
}

bool LingeringClose::done(Closing& c) {
  evhtp_connection_t* conn = c.conn;
  if (conn->bev == nullptr || (conn->flags & EVHTP_CONN_FLAG_FREE_CONN) != 0) return true;
  if (std::chrono::steady_clock::now() >= c.deadline) return true;
  if (evbuffer_get_length(bufferevent_get_output(conn->bev)) != 0) return false;
  int fd = bufferevent_getfd(conn->bev);
  if (!c.write_shut) {
    shutdown(fd, SHUT_WR);
    c.write_shut = true;
  }
  char sink[16384];
  for (;;) {
    ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return true;  // the client closed its side: nothing left to reset
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

void LingeringClose::poll(Closing* c) {
  LingeringClose* self = c->owner;
  if (!done(*c)) return;
  // Take the entry out first: freeing the connection runs on_connection_fini -> forget(). It
  // (and its timer, whose callback this is: see timer.h) goes when this returns.
  auto it = self->closing_.find(c->conn);
  std::unique_ptr<Closing> keep = std::move(it->second);
  self->closing_.erase(it);
  evhtp_connection_free(keep->conn);
}

}  // namespace sluice::worker
