#pragma once
// One message ready for basic.publish: the body, the mandatory flag and the AMQP basic
// properties, owning every byte the properties point to (strings and the headers table live
// in the message's own pool). It can wait in a queue until the channel takes it. What fills
// it is the caller's business (the publish module builds one from statelessd's form fields);
// the AMQP backend only sends it.
#include <amqp.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::worker {

class AmqpMessage {
 public:
  AmqpMessage();
  ~AmqpMessage();
  AmqpMessage(const AmqpMessage&) = delete;
  AmqpMessage& operator=(const AmqpMessage&) = delete;

  const std::string& body() const { return body_; }
  void set_body(std::string body) { body_ = std::move(body); }
  // Published with basic.publish's mandatory flag: an unroutable message comes back.
  bool mandatory() const { return mandatory_; }
  void set_mandatory(bool on) { mandatory_ = on; }
  // Valid as long as this object lives; ready for amqp_basic_publish.
  const amqp_basic_properties_t& properties() const { return props_; }
  amqp_basic_properties_t& properties() { return props_; }

  // Sets a string property to a copy of `value` kept in the message.
  void set_string(amqp_bytes_t amqp_basic_properties_t::*member, amqp_flags_t flag,
                  std::string_view value);
  // Memory that lives as long as the message, for the headers table. Out of memory aborts.
  amqp_bytes_t copy(std::string_view bytes);
  void* allocate(std::size_t bytes);

 private:
  std::string body_;
  bool mandatory_ = false;
  amqp_basic_properties_t props_{};
  amqp_pool_t pool_{};
};

}  // namespace sluice::worker
