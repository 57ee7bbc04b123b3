#pragma once
// A blocking rabbitmq-c client for tests: declare and bind queues, count and read back what
// sluice published (body bytes and every property). Throws std::runtime_error on any broker
// error, so a broken setup fails the test case with the broker's reason.
#include <amqp.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace sluice::test {

struct ReceivedMessage {
  std::string exchange;
  std::string routing_key;
  std::string body;
  // Set properties only, by their statelessd field names: app_id, content_encoding,
  // content_type, correlation_id, delivery_mode, expiration, message_id, priority, reply_to,
  // timestamp, type, user_id; numbers in decimal.
  std::map<std::string, std::string> properties;
  // The headers table as compact JSON ({"k":1,"s":"x"}), or "" when absent.
  std::string headers_json;
};

class AmqpClient {
 public:
  AmqpClient(uint16_t port, const std::string& vhost = "/", const std::string& user = "guest",
             const std::string& password = "guest");
  ~AmqpClient();
  AmqpClient(const AmqpClient&) = delete;
  AmqpClient& operator=(const AmqpClient&) = delete;

  void declare_queue(const std::string& queue, bool durable = false);
  // A queue that holds at most `max_length` messages and nacks publishes beyond that.
  void declare_bounded_queue(const std::string& queue, int64_t max_length);
  void declare_exchange(const std::string& exchange, const std::string& type = "topic");
  void bind(const std::string& queue, const std::string& exchange, const std::string& key);
  void purge(const std::string& queue);
  void delete_exchange(const std::string& exchange);
  uint32_t count(const std::string& queue);
  // basic.get with auto-ack; nullopt when the queue is empty.
  std::optional<ReceivedMessage> get(const std::string& queue);

 private:
  void check(const char* what);

  amqp_connection_state_t conn_;
};

}  // namespace sluice::test
