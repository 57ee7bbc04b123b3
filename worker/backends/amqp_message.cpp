#include "worker/backends/amqp_message.h"

#include <cstdlib>
#include <cstring>

namespace sluice::worker {
namespace {

// Properties are usually a few short strings and small headers; a larger allocation gets
// its own block anyway.
constexpr std::size_t kPoolPageSize = 4096;

}  // namespace

AmqpMessage::AmqpMessage() {
  init_amqp_pool(&pool_, kPoolPageSize);
}

AmqpMessage::~AmqpMessage() {
  empty_amqp_pool(&pool_);
}

void AmqpMessage::set_string(amqp_bytes_t amqp_basic_properties_t::*member, amqp_flags_t flag,
                             std::string_view value) {
  props_.*member = copy(value);
  props_._flags |= flag;
}

amqp_bytes_t AmqpMessage::copy(std::string_view bytes) {
  if (bytes.empty()) return amqp_bytes_t{0, nullptr};  // amqp_pool_alloc(0) is NULL anyway
  amqp_bytes_t out;
  amqp_pool_alloc_bytes(&pool_, bytes.size(), &out);
  if (out.bytes == nullptr) std::abort();  // OOM aborts (STYLE.md)
  std::memcpy(out.bytes, bytes.data(), bytes.size());
  return out;
}

void* AmqpMessage::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = amqp_pool_alloc(&pool_, bytes);
  if (p == nullptr) std::abort();  // OOM aborts (STYLE.md)
  return p;
}

}  // namespace sluice::worker
