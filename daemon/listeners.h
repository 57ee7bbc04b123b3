#pragma once
// The listening sockets, bound by the supervisor before anything else (ports < 1024 work)
// and kept across reloads: a port present in the old and the new config keeps its socket,
// so no connection is refused while workers are replaced.
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "common/fd.h"
#include "common/result.h"

namespace sluice::daemon {

using ListenerKey = std::pair<std::string, uint16_t>;  // address, port

std::string describe(const ListenerKey& key);

class Listeners {
 public:
  // Binds and listens (SO_REUSEADDR, close-on-exec, backlog 1024) unless already open.
  common::Result<int> open(const ListenerKey& key);
  int fd(const ListenerKey& key) const;  // -1 when not open
  bool contains(const ListenerKey& key) const { return fds_.count(key) != 0; }
  void close(const ListenerKey& key) { fds_.erase(key); }
  // In a fresh worker: close every socket but `keep`, without touching the map's owners'
  // bookkeeping in the parent (the child never returns to it).
  void close_all_except(int keep) const;
  const std::map<ListenerKey, common::UniqueFd>& all() const { return fds_; }

 private:
  std::map<ListenerKey, common::UniqueFd> fds_;
};

}  // namespace sluice::daemon
