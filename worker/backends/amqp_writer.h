#pragma once
// Everything sluice sends on an AMQP connection after the handshake goes through this
// buffer: frames are encoded with rabbitmq-c's public encoders and written by the event
// loop when the socket takes them. rabbitmq-c's own send path waits (poll without a
// deadline) for a writable socket, which would freeze the worker behind a broker that stops
// reading; and it makes three send() calls per published message where one write per loop
// turn (or per 2 KiB queued, see amqp.cpp) serves them all.
#include <amqp.h>
#include <event2/buffer.h>

#include <cstddef>
#include <memory>

#include "common/handles/event.h"

namespace sluice::worker {

class AmqpWriter {
 public:
  AmqpWriter(int fd, size_t frame_max);
  AmqpWriter(const AmqpWriter&) = delete;
  AmqpWriter& operator=(const AmqpWriter&) = delete;
  ~AmqpWriter() = default;

  // False when the method cannot be encoded (a bug or an oversized argument).
  bool add_method(amqp_channel_t channel, amqp_method_number_t id, void* decoded);
  // basic.publish, its content header and body frames.
  bool add_publish(amqp_channel_t channel, amqp_bytes_t exchange, amqp_bytes_t routing_key,
                   bool mandatory, const amqp_basic_properties_t& properties, amqp_bytes_t body);
  void add_heartbeat();

  enum class Flush { done, blocked, failed };
  // Writes as much as the socket takes now.
  Flush flush();
  size_t pending() const { return evbuffer_get_length(out_.get()); }

 private:
  void append(const void* data, size_t len);
  void add_frame(uint8_t type, amqp_channel_t channel, const void* payload, size_t len);
  size_t close_frame(uint8_t* at, uint8_t type, amqp_channel_t channel, size_t len);
  size_t method_frame(uint8_t* at, amqp_channel_t channel, amqp_method_number_t id, void* decoded);

  int fd_;
  size_t frame_max_;
  common::EvbufferPtr out_;
  size_t scratch_size_;
  std::unique_ptr<uint8_t[]> scratch_;  // frames being assembled (see the constructor)
};

}  // namespace sluice::worker
