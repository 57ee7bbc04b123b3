#include "worker/backends/amqp_connect.h"

#include <amqp_tcp_socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <system_error>

#include "common/fd.h"
#include "worker/backends/amqp_bytes.h"

namespace sluice::worker {
namespace {

// Bounds every blocking step of one handshake (connect, login, each RPC).
constexpr long kHandshakeTimeoutMs = 5000;
constexpr int kFrameMax = 131072;

// What a failed RPC reply means for the client.
ConnectResult classify(const amqp_rpc_reply_t& reply, const std::string& host) {
  ConnectResult r;
  r.host = host;
  r.failure = ConnectFailure::unreachable;
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    r.detail = amqp_error_string2(reply.library_error);
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
    r.detail = to_string(close->reply_text);
    if (close->reply_code == AMQP_ACCESS_REFUSED) r.failure = ConnectFailure::refused_login;
    if (close->reply_code == AMQP_NOT_ALLOWED) r.failure = ConnectFailure::refused_vhost;
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    r.detail = to_string(close->reply_text);
  } else {
    r.detail = "unexpected reply during the handshake";
  }
  return r;
}

// Asks the broker for connection.blocked / unblocked notifications.
amqp_rpc_reply_t login(amqp_connection_state_t conn, const AmqpCredentials& c, int heartbeat_s) {
  amqp_table_entry_t capability = {amqp_cstring_bytes("connection.blocked"), {}};
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  amqp_table_t capabilities = {1, &capability};
  amqp_table_entry_t property = {amqp_cstring_bytes("capabilities"), {}};
  property.value.kind = AMQP_FIELD_KIND_TABLE;
  property.value.value.table = capabilities;
  amqp_table_t properties = {1, &property};
  return amqp_login_with_properties(conn, c.vhost.c_str(), 0, kFrameMax, heartbeat_s, &properties,
                                    AMQP_SASL_METHOD_PLAIN, c.user.c_str(), c.password.c_str());
}

// channel.open and confirm.select on both publishing channels.
amqp_rpc_reply_t open_channels(amqp_connection_state_t conn) {
  amqp_rpc_reply_t reply{};
  for (amqp_channel_t channel :
       {AmqpConnectAttempt::kPublishChannel, AmqpConnectAttempt::kTrialChannel}) {
    amqp_channel_open(conn, channel);
    reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply;
    amqp_confirm_select(conn, channel);
    reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply;
  }
  return reply;
}

ConnectResult try_host(const common::RabbitHost& host, const common::RabbitmqConfig& config,
                       const AmqpCredentials& credentials) {
  std::string where = host.host + ":" + std::to_string(host.port);
  common::AmqpConnPtr conn(amqp_new_connection());
  amqp_socket_t* socket = conn ? amqp_tcp_socket_new(conn.get()) : nullptr;
  timeval timeout = common::to_timeval(kHandshakeTimeoutMs);
  int rc = AMQP_STATUS_NO_MEMORY;
  if (socket != nullptr) {
    amqp_set_handshake_timeout(conn.get(), &timeout);
    amqp_set_rpc_timeout(conn.get(), &timeout);
    rc = amqp_socket_open_noblock(socket, host.host.c_str(), host.port, &timeout);
  }
  if (rc != AMQP_STATUS_OK) {
    return ConnectResult{nullptr, ConnectFailure::unreachable, amqp_error_string2(rc), where};
  }
  auto heartbeat_ms = config.heartbeat.count();
  int heartbeat_s =
      heartbeat_ms == 0 ? 0 : static_cast<int>(std::max<long long>(1, heartbeat_ms / 1000));
  amqp_rpc_reply_t reply = login(conn.get(), credentials, heartbeat_s);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) reply = open_channels(conn.get());
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) return classify(reply, where);
  // From here on the loop reads the socket: RPCs no longer wait for anything.
  return ConnectResult{std::move(conn), ConnectFailure::none, "", where};
}

}  // namespace

ConnectResult connect_blocking(const common::RabbitmqConfig& config,
                               const AmqpCredentials& credentials) {
  ConnectResult last{nullptr, ConnectFailure::unreachable, "no rabbitmq.hosts", ""};
  for (const auto& host : config.hosts) {
    last = try_host(host, config, credentials);
    // A broker that refused these credentials would refuse them on every node.
    if (last.failure != ConnectFailure::unreachable) return last;
  }
  return last;
}

struct AmqpConnectAttempt::Shared {
  std::mutex mu;
  bool abandoned = false;
  bool finished = false;
  ConnectResult result;
  common::UniqueFd ready{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  // An abandoned attempt's connection is freed with the last reference, by result.conn.
};

AmqpConnectAttempt::AmqpConnectAttempt(event_base* base, const common::RabbitmqConfig& config,
                                       AmqpCredentials credentials, Done done)
    : shared_(std::make_shared<Shared>()), done_(std::move(done)) {
  // Checked before the thread starts: an attempt whose end the loop would never see would
  // leave its connection waiting for good. Thrown like a failed thread start (see amqp.cpp).
  if (!shared_->ready.valid()) throw std::system_error(errno, std::generic_category(), "eventfd()");
  ready_event_.emplace(base, shared_->ready.get(), EV_READ, "amqp connect result",
                       common::Callback::bind<&AmqpConnectAttempt::ready>(this));
  if (!ready_event_->start()) {
    throw std::system_error(errno, std::generic_category(), "event_add() of the eventfd");
  }
  std::thread([shared = shared_, config, credentials = std::move(credentials)] {
    ConnectResult result = connect_blocking(config, credentials);
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->result = std::move(result);
    shared->finished = true;
    if (shared->abandoned) return;  // ~Shared frees the connection
    uint64_t one = 1;
    ssize_t n = write(shared->ready.get(), &one, sizeof one);
    (void)n;
  }).detach();
}

AmqpConnectAttempt::~AmqpConnectAttempt() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->abandoned = true;
}

void AmqpConnectAttempt::ready() {
  ConnectResult result;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    result = std::move(shared_->result);  // the connection is handed over
  }
  // `done` may destroy this attempt: nothing of it is touched afterwards.
  Done done = std::move(done_);
  done(std::move(result));
}

}  // namespace sluice::worker
