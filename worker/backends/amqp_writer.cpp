#include "worker/backends/amqp_writer.h"

#include <amqp_framing.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::worker {
namespace {

constexpr size_t kFrameOverhead = 8;  // type, channel, size, frame-end

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

}  // namespace

// scratch_ holds a publish's method and header frames (each at most frame_max) and, when it
// fits, its body frame, so a small message is added to the buffer in one piece.
AmqpWriter::AmqpWriter(int fd, size_t frame_max)
    : fd_(fd),
      frame_max_(frame_max),
      out_(evbuffer_new()),
      scratch_size_(2 * frame_max + 2 * kFrameOverhead),
      scratch_(new uint8_t[scratch_size_]) {
  if (!out_) common::out_of_memory("evbuffer_new()");
}

// evbuffer_add fails only when out of memory; a frame cut short would corrupt the stream.
void AmqpWriter::append(const void* data, size_t len) {
  if (evbuffer_add(out_.get(), data, len) != 0) common::out_of_memory("evbuffer_add()");
}

// Completes the frame whose payload (len bytes) was written at at + 7; returns its size.
size_t AmqpWriter::close_frame(uint8_t* at, uint8_t type, amqp_channel_t channel, size_t len) {
  at[0] = type;
  put16(at + 1, channel);
  put32(at + 3, static_cast<uint32_t>(len));
  at[7 + len] = AMQP_FRAME_END;
  return len + kFrameOverhead;
}

// A frame whose payload is elsewhere: three pieces (large bodies, heartbeats).
void AmqpWriter::add_frame(uint8_t type, amqp_channel_t channel, const void* payload, size_t len) {
  uint8_t head[7];
  head[0] = type;
  put16(head + 1, channel);
  put32(head + 3, static_cast<uint32_t>(len));
  append(head, sizeof head);
  if (len > 0) append(payload, len);
  uint8_t end = AMQP_FRAME_END;
  append(&end, 1);
}

// A method frame at `at`; 0 when the method cannot be encoded in frame_max.
size_t AmqpWriter::method_frame(uint8_t* at, amqp_channel_t channel, amqp_method_number_t id,
                                void* decoded) {
  put32(at + 7, id);
  amqp_bytes_t encoded{frame_max_ - kFrameOverhead - 4, at + 11};
  int n = amqp_encode_method(id, decoded, encoded);
  if (n < 0) return 0;
  return close_frame(at, AMQP_FRAME_METHOD, channel, static_cast<size_t>(n) + 4);
}

bool AmqpWriter::add_method(amqp_channel_t channel, amqp_method_number_t id, void* decoded) {
  size_t size = method_frame(scratch_.get(), channel, id, decoded);
  if (size == 0) return false;
  append(scratch_.get(), size);
  return true;
}

bool AmqpWriter::add_publish(amqp_channel_t channel, amqp_bytes_t exchange,
                             amqp_bytes_t routing_key, bool mandatory,
                             const amqp_basic_properties_t& properties, amqp_bytes_t body) {
  amqp_basic_publish_t publish{};
  publish.exchange = exchange;
  publish.routing_key = routing_key;
  publish.mandatory = mandatory ? 1 : 0;
  uint8_t* buf = scratch_.get();
  size_t used = method_frame(buf, channel, AMQP_BASIC_PUBLISH_METHOD, &publish);
  if (used == 0) return false;
  uint8_t* header = buf + used;
  put16(header + 7, AMQP_BASIC_CLASS);
  put16(header + 9, 0);  // weight
  put64(header + 11, body.len);
  amqp_bytes_t encoded{frame_max_ - kFrameOverhead - 12, header + 19};
  int n = amqp_encode_properties(AMQP_BASIC_CLASS,
                                 const_cast<amqp_basic_properties_t*>(&properties), encoded);
  if (n < 0) return false;
  used += close_frame(header, AMQP_FRAME_HEADER, channel, static_cast<size_t>(n) + 12);
  size_t chunk = frame_max_ - kFrameOverhead;
  if (body.len > 0 && body.len <= chunk && used + body.len + kFrameOverhead <= scratch_size_) {
    memcpy(buf + used + 7, body.bytes, body.len);
    used += close_frame(buf + used, AMQP_FRAME_BODY, channel, body.len);
    append(buf, used);
    return true;
  }
  append(buf, used);
  auto* bytes = static_cast<const uint8_t*>(body.bytes);
  for (size_t at = 0; at < body.len; at += chunk) {
    add_frame(AMQP_FRAME_BODY, channel, bytes + at, std::min(chunk, body.len - at));
  }
  return true;
}

void AmqpWriter::add_heartbeat() {
  add_frame(AMQP_FRAME_HEARTBEAT, 0, nullptr, 0);
}

AmqpWriter::Flush AmqpWriter::flush() {
  while (evbuffer_get_length(out_.get()) > 0) {
    int n = evbuffer_write(out_.get(), fd_);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return Flush::blocked;
    }
    return Flush::failed;
  }
  return Flush::done;
}

}  // namespace sluice::worker
