#include "worker/waiters.h"

#include <utility>

namespace sluice::worker {

Waiters::~Waiters() {
  for (Entry& e : entries_) {
    e.ref->on_gone(nullptr);
    e.ref->on_timeout(nullptr);
  }
}

void Waiters::add(RequestCtx& ctx, std::chrono::milliseconds timeout,
                  RequestCtx::OnTimeout on_timeout, RequestCtx::Eof eof) {
  if (ctx.client_gone() || ctx.replied()) return;  // nobody would ever take it off
  entries_.push_back(Entry{CtxRef(ctx), std::move(on_timeout)});
  Iterator it = std::prev(entries_.end());
  // Both handlers leave the list first: the server keeps its own reference to the ctx
  // while it runs them, so erasing the entry frees nothing under them.
  ctx.hold(timeout, [this, it](RequestCtx& held) {
    RequestCtx::OnTimeout answer = std::move(it->on_timeout);
    held.on_gone(nullptr);
    entries_.erase(it);
    if (answer) answer(held);
  });
  ctx.on_gone([this, it] { entries_.erase(it); }, eof);
}

// Out of the list, the request keeps its deadline but answers with the module's own timeout
// handler, no longer with one that refers to the entry.
CtxRef Waiters::release(Iterator it) {
  CtxRef ref = std::move(it->ref);
  ref->on_gone(nullptr);
  ref->on_timeout(std::move(it->on_timeout));
  entries_.erase(it);
  return ref;
}

// A waiter whose client has gone is still listed until its notice runs, later in this loop
// turn: it is dropped here instead of being handed out, so no answer goes into the void.
std::optional<CtxRef> Waiters::take() {
  while (!entries_.empty()) {
    CtxRef ref = release(entries_.begin());
    if (!ref->client_gone()) return ref;
  }
  return std::nullopt;
}

std::vector<CtxRef> Waiters::take_all() {
  std::vector<CtxRef> all;
  all.reserve(entries_.size());
  while (!entries_.empty()) {
    CtxRef ref = release(entries_.begin());
    if (!ref->client_gone()) all.push_back(std::move(ref));
  }
  return all;
}

}  // namespace sluice::worker
