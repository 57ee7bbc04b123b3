#include "worker/lingering_close.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>

#include <cerrno>

namespace sluice::worker {

void LingeringClose::close(evhtp_connection_t* conn) {
  auto c = std::make_unique<Closing>();
  c->owner = this;
  c->conn = conn;
  c->deadline = std::chrono::steady_clock::now() + kLinger;
  c->timer.reset(evtimer_new(base_, on_poll, c.get()));
  timeval poll = common::to_timeval(kPollMs);
  evtimer_add(c->timer.get(), &poll);
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

void LingeringClose::on_poll(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Closing*>(arg);
  LingeringClose* self = c->owner;
  if (!done(*c)) {
    timeval poll = common::to_timeval(kPollMs);
    evtimer_add(c->timer.get(), &poll);
    return;
  }
  // Keep the entry (and this non-persistent, no longer pending event) alive until the
  // callback returns; freeing the connection runs on_connection_fini -> forget().
  auto it = self->closing_.find(c->conn);
  std::unique_ptr<Closing> keep = std::move(it->second);
  self->closing_.erase(it);
  evhtp_connection_free(keep->conn);
}

}  // namespace sluice::worker
