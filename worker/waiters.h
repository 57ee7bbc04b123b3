#pragma once
// A module's list of held requests waiting for something: a message on a queue, a publish
// on a push channel. An entry leaves the list when the module takes it, when its deadline
// passes (its timeout answer is given), or when its client goes away (RequestCtx::on_gone),
// so the list never keeps a dead entry and a module never answers into the void. Entries
// keep their requests alive (CtxRef) while listed. Oldest first.
#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <vector>

#include "worker/request.h"

namespace sluice::worker {

class Waiters {
 public:
  Waiters() = default;
  Waiters(const Waiters&) = delete;
  Waiters& operator=(const Waiters&) = delete;
  // Entries still listed are dropped: their requests get the server's own timeout answer.
  ~Waiters();

  // Holds `ctx` (RequestCtx::hold) until it is taken, or until `timeout`: then it leaves the
  // list and `on_timeout` answers it. `eof` is what a FIN from its client means.
  void add(RequestCtx& ctx, std::chrono::milliseconds timeout, RequestCtx::OnTimeout on_timeout,
           RequestCtx::Eof eof = RequestCtx::Eof::gone);
  // The oldest waiter, out of the list; still held, with its deadline and timeout answer.
  std::optional<CtxRef> take();
  // Every waiter, oldest first; the list is left empty.
  std::vector<CtxRef> take_all();

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    CtxRef ref;
    RequestCtx::OnTimeout on_timeout;
  };
  using Iterator = std::list<Entry>::iterator;

  CtxRef release(Iterator it);

  std::list<Entry> entries_;
};

}  // namespace sluice::worker
