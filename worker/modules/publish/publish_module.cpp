#include "worker/modules/publish/publish_module.h"

#include <event2/buffer.h>

#include <string>

#include "common/form.h"
#include "common/json.h"
#include "worker/modules/publish/message_fields.h"
#include "worker/modules/publish/publish_config.h"
#include "worker/request.h"
#include "worker/router.h"
#include "worker/worker.h"

namespace sluice::worker::publish {
namespace {

constexpr const char* kRealm = "Basic realm=\"statelessd\"";
constexpr long long kSweepMs = 5000;
// Distinct (vhost, user, password) connections one worker keeps; a client cycling through
// passwords must not make it open logins without bound.
constexpr size_t kMaxConnections = 1024;
// A connection unused this long is closed: the next request logs in again, so a password
// changed or revoked on the broker stops working within this time.
constexpr std::chrono::minutes kIdleClose{5};
// Beyond confirm_timeout, by which the connection answers every publish itself.
constexpr std::chrono::seconds kHoldMargin{1};
// RabbitMQ's default max_message_size: a larger body closes the publishing channel.
constexpr size_t kMaxMessageBytes = 128u << 20;

common::Error outcome_error(PublishOutcome outcome) {
  using common::Errc;
  using common::make_error;
  switch (outcome) {
    case PublishOutcome::rejected:
      return make_error(Errc::backend_unavailable, "message_rejected",
                        "the broker rejected the message; retry later");
    case PublishOutcome::timed_out:
      return make_error(Errc::backend_unavailable, "confirm_timeout",
                        "the broker did not confirm the message in time; retry later");
    case PublishOutcome::blocked:
      return make_error(Errc::backend_unavailable, "broker_blocked",
                        "the broker is refusing publishes (resource alarm); retry later");
    case PublishOutcome::backlogged:
      return make_error(Errc::backend_unavailable, "broker_backlogged",
                        "the broker is not reading what was already sent; retry later");
    case PublishOutcome::refused_login:
      return make_error(Errc::unauthorized, "login_refused",
                        "the broker refused this user name or password");
    case PublishOutcome::refused_vhost:
      return make_error(Errc::forbidden, "vhost_access_refused",
                        "this user may not use this virtual host");
    case PublishOutcome::exchange_not_found:
      return make_error(Errc::not_found, "exchange_not_found",
                        "no such exchange in this virtual host");
    case PublishOutcome::exchange_forbidden:
      return make_error(Errc::forbidden, "exchange_access_refused",
                        "this user may not publish to this exchange");
    case PublishOutcome::unroutable:
      return make_error(Errc::not_found, "unroutable",
                        "no queue is bound for this routing key: the broker returned the "
                        "message (mandatory)");
    case PublishOutcome::too_many_logins:
      return make_error(Errc::too_many_requests, "too_many_logins",
                        "too many new broker logins through this worker; retry later");
    default:
      return make_error(Errc::backend_unavailable, "broker_unavailable",
                        "the message broker is not reachable; retry later");
  }
}

void answer(RequestCtx& ctx, PublishOutcome outcome) {
  if (outcome == PublishOutcome::confirmed) {
    ctx.reply(204, "", "");
    return;
  }
  if (outcome == PublishOutcome::refused_login) ctx.add_header("WWW-Authenticate", kRealm);
  send_error(ctx, outcome_error(outcome));
}

void answer_error(RequestCtx& ctx, const common::Error& error) {
  if (error.code == common::Errc::unauthorized) ctx.add_header("WWW-Authenticate", kRealm);
  send_error(ctx, error);
}

// The query string first, then the body: a field in both keeps the body's value, as
// Tornado's get_argument did.
common::Result<void> read_fields(RequestCtx& ctx, common::FormFields& fields) {
  evhtp_request_t* req = ctx.raw();
  if (req->uri != nullptr && req->uri->query_raw != nullptr) {
    auto query = reinterpret_cast<const char*>(req->uri->query_raw);
    if (auto parsed = common::parse_urlencoded(query, fields); !parsed) return parsed;
  }
  size_t length = evbuffer_get_length(req->buffer_in);
  if (length == 0) return {};
  auto* bytes = reinterpret_cast<const char*>(evbuffer_pullup(req->buffer_in, -1));
  const char* type = ctx.header("Content-Type");
  return common::parse_form_body(type != nullptr ? type : "", std::string_view(bytes, length),
                                 fields);
}

common::Result<std::string> path_segment(const std::string& raw, const char* what) {
  auto decoded = common::percent_decode(raw, false);
  if (!decoded) {
    return common::make_error(
        common::Errc::bad_request, "invalid_path",
        std::string("the ") + what + " in the path is not valid percent-encoding");
  }
  if (decoded->size() > 255) {
    return common::make_error(common::Errc::bad_request, "invalid_path",
                              std::string("the ") + what + " is longer than 255 bytes");
  }
  // rabbitmq-c takes names as C strings: "q%00x" would publish to the queue "q".
  if (decoded->find('\0') != std::string::npos) {
    return common::make_error(common::Errc::bad_request, "invalid_path",
                              std::string("the ") + what + " holds a NUL byte");
  }
  return decoded;
}

// RabbitMQ refuses a vhost name that is not UTF-8 by closing the connection (FRAME_ERROR at
// connection.open): a client's typo would read as a broker outage, retried with backoff.
common::Result<std::string> vhost_segment(const std::string& raw) {
  auto vhost = path_segment(raw, "vhost");
  if (vhost && !common::utf8_valid(*vhost)) {
    return common::make_error(common::Errc::bad_request, "invalid_path",
                              "the vhost in the path is not valid UTF-8");
  }
  return vhost;
}

// What the broker would answer by closing the publishing channel, under every other
// client's unconfirmed messages, is refused here for this request alone.
common::Result<void> check_for_channel(const AmqpMessage& m, const std::string& login) {
  const amqp_basic_properties_t& p = m.properties();
  if ((p._flags & AMQP_BASIC_USER_ID_FLAG) &&
      std::string_view(static_cast<const char*>(p.user_id.bytes), p.user_id.len) != login) {
    return common::make_error(common::Errc::bad_request, "invalid_field",
                              "field \"user_id\" must be the user name of the credentials");
  }
  if (m.body().size() > kMaxMessageBytes) {
    return common::make_error(common::Errc::too_large, "message_too_large",
                              "the message body exceeds the broker's 128 MiB limit");
  }
  return {};
}

}  // namespace

// One client sends the same Authorization header on every request, and the head's check and
// the publish both need it decoded: the last header decoded is kept, with what it gave.
const common::BasicCredentials* PublishModule::credentials_of(RequestCtx& ctx) {
  const char* header = ctx.header("Authorization");
  if (header == nullptr) return nullptr;
  if (!last_authorization_ || *last_authorization_ != header) {
    last_authorization_ = header;
    last_credentials_ = common::parse_basic_auth(header);
    // rabbitmq-c logs in with C strings: "guest\0anything" would be guest, a user of its
    // own to the login guard and the connection table.
    const auto& c = last_credentials_;
    if (c &&
        (c->user.find('\0') != std::string::npos || c->password.find('\0') != std::string::npos)) {
      last_credentials_.reset();
    }
  }
  return last_credentials_ ? &*last_credentials_ : nullptr;
}

// What the head alone decides, before a body byte is read (the router runs it then):
// missing or malformed credentials first, as statelessd checks them before the method.
common::Result<void> PublishModule::check_head(RequestCtx& ctx) {
  if (credentials_of(ctx) == nullptr) {
    // statelessd's answer, kept: clients look for the challenge, not a body.
    ctx.add_header("WWW-Authenticate", kRealm);
    common::Error error = common::make_error(common::Errc::unauthorized, "credentials_required",
                                             "HTTP Basic credentials are required");
    error.bare = true;
    return error;
  }
  if (ctx.method() != htp_method_POST) {
    ctx.add_header("Allow", "POST");
    return common::make_error(common::Errc::method_not_allowed, "method_not_allowed",
                              "publish with POST");
  }
  return {};
}

common::ModuleSchema PublishModule::schema() {
  return {kModuleName, parse_publish_settings, nullptr};
}

void PublishModule::add_routes(Router& router) {
  // Every method: statelessd checks credentials before it refuses a method.
  router.add(
      "/*/*/*", kAnyMethod, [this](RequestCtx& ctx) { serve(ctx); }, "publish",
      [this](RequestCtx& ctx) { return check_head(ctx); });
}

common::Result<void> PublishModule::start(Worker& worker) {
  base_ = worker.base();
  rabbitmq_ = worker.config().rabbitmq.value_or(common::RabbitmqConfig());
  const auto settings = worker.config().settings<PublishSettings>(kModuleName);
  if (!settings) {
    // parse_config() always stores them; a Config built any other way is a bug.
    return common::make_error(common::Errc::internal, "publish_settings",
                              "the configuration has no publish settings");
  }
  defaults_ = settings->message;
  sweep_.emplace(base_, "publish sweep", common::Callback::bind<&PublishModule::sweep>(this));
  sweep_->start_every(std::chrono::milliseconds(kSweepMs));
  return {};
}

void PublishModule::serve(RequestCtx& ctx) {
  const common::BasicCredentials* found = credentials_of(ctx);
  if (found == nullptr) return;                          // refused by check_head before this
  const common::BasicCredentials& credentials = *found;  // valid until the next request's
  const auto& params = ctx.params();
  auto vhost = vhost_segment(params[0]);
  auto exchange = path_segment(params[1], "exchange");
  auto routing_key = path_segment(params[2], "routing key");
  for (const auto* part : {&vhost, &exchange, &routing_key}) {
    if (!*part) return send_error(ctx, part->error());
  }
  common::FormFields fields;
  if (auto read = read_fields(ctx, fields); !read) return send_error(ctx, read.error());
  auto message = build_message(fields, defaults_);
  if (!message) return send_error(ctx, message.error());
  if (auto fits = check_for_channel(**message, credentials.user); !fits) {
    return send_error(ctx, fits.error());
  }
  if (*exchange == kDefaultExchangeAlias) exchange->clear();

  auto conn = connection_for({*vhost, credentials.user, credentials.password});
  if (!conn) return answer_error(ctx, conn.error());
  // The connection answers every publish by confirm_timeout; the hold's own deadline is
  // a backstop, should a callback ever be lost. A client that half-closes still reads.
  ctx.hold(rabbitmq_.confirm_timeout + kHoldMargin,
           [](RequestCtx& held) { answer(held, PublishOutcome::timed_out); });
  ctx.on_gone([this] { counters_.add(kClientGone); }, RequestCtx::Eof::half_close);
  CtxRef ref(ctx);
  (*conn)->publish(*exchange, *routing_key, std::move(*message),
                   [this, ref](PublishOutcome outcome) {
                     count(outcome);
                     answer(*ref, outcome);
                   });
}

// The broker's outcome, counted whether or not the client is still there to hear it.
void PublishModule::count(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::confirmed:
      return counters_.add(kConfirms);
    case PublishOutcome::rejected:
      counters_.add(kNacks);
      return counters_.add(kUnavailable);
    case PublishOutcome::timed_out:
    case PublishOutcome::unavailable:
    case PublishOutcome::blocked:
    case PublishOutcome::backlogged:
      return counters_.add(kUnavailable);
    case PublishOutcome::unroutable:
      return counters_.add(kUnroutable);
    default:
      return;
  }
}

// A connection that is open, opening, or answering from its own memory needs no login, so
// the login guard (and its password hash) is only consulted before a new broker login.
common::Result<AmqpConnection*> PublishModule::connection_for(const KeyView& key) {
  auto it = connections_.find(key);
  if (it != connections_.end() && !it->second->needs_login()) return it->second.get();
  const std::string user(std::get<1>(key));
  LoginGuard::Digest password = logins_.digest(std::get<2>(key));
  auto now = std::chrono::steady_clock::now();
  if (logins_.refused(user, password, now)) return outcome_error(PublishOutcome::refused_login);
  if (it == connections_.end() && connections_.size() >= kMaxConnections) {
    forget_connections(true);
    if (connections_.size() >= kMaxConnections) {
      return common::make_error(common::Errc::backend_unavailable, "too_many_connections",
                                "too many distinct credentials in use; retry later");
    }
  }
  if (!logins_.admit(user, now)) return outcome_error(PublishOutcome::too_many_logins);
  if (it == connections_.end()) return add_connection(key, password);
  return it->second.get();
}

// The connection reports a refused password to the guard, which keeps only its digest.
AmqpConnection* PublishModule::add_connection(const KeyView& key,
                                              const LoginGuard::Digest& password) {
  const auto& [vhost, user, plain] = key;
  AmqpCredentials c{std::string(vhost), std::string(user), std::string(plain)};
  auto conn = std::make_unique<AmqpConnection>(base_, rabbitmq_, c);
  conn->on_login_refused([this, user = c.user, password] {
    logins_.remember_refusal(user, password, std::chrono::steady_clock::now());
  });
  AmqpConnection* raw = conn.get();
  connections_.emplace(Key{c.vhost, c.user, c.password}, std::move(conn));
  return raw;
}

void PublishModule::sweep() {
  forget_connections(false);
}

// Refused credentials are not kept past their refusal, idle connections not past
// kIdleClose: a client trying passwords must not grow the table, and a revoked password
// must not live on in a kept connection. Under pressure (`all_refused`), refusals are
// forgotten before they expire.
void PublishModule::forget_connections(bool all_refused) {
  auto now = std::chrono::steady_clock::now();
  for (auto it = connections_.begin(); it != connections_.end();) {
    const AmqpConnection& c = *it->second;
    bool refused = c.refused() && (all_refused || c.refusal_expired());
    bool unused = now - c.last_used() >= kIdleClose;
    if (c.idle() && (refused || unused)) {
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

// Connections with messages waiting or unconfirmed: a drain waits for their confirms even
// when the clients that sent them are gone.
size_t PublishModule::work_in_flight() const {
  size_t busy = 0;
  for (const auto& [key, conn] : connections_)
    busy += conn->idle() ? 0 : 1;
  return busy;
}

// statelessd's "connections": "vhost:user" entries with statelessd's keys, summed over the
// passwords seen for that pair. What became of the messages is in the fleet-wide counters.
void PublishModule::report(common::JsonWriter& w) const {
  struct Pair {
    AmqpCounters sum;
    bool connected = false;
    uint64_t unconfirmed = 0;
  };
  std::map<std::string, Pair> pairs;
  for (const auto& [key, conn] : connections_) {
    // Keyed as shown: names that differ only in bytes that are not UTF-8 are one entry, not
    // the same JSON key twice.
    Pair& p = pairs[common::utf8_repaired(std::get<0>(key) + ":" + std::get<1>(key))];
    p.sum += conn->counters();
    p.connected = p.connected || conn->connected();
    p.unconfirmed += conn->unconfirmed();
  }
  w.Key("connections");
  w.StartObject();
  for (const auto& [name, p] : pairs) {
    const AmqpCounters& c = p.sum;
    common::json_key(w, name);
    w.StartObject();
    w.Key("connected");
    w.Bool(p.connected);
    w.Key("connections");
    common::json_pair(w, "opened", c.connections_opened, "closed", c.connections_closed);
    w.Key("channels");
    common::json_pair(w, "opened", c.channels_opened, "closed", c.channels_closed);
    common::json_uint(w, "publishes", c.publishes);
    common::json_uint(w, "queue_size", p.unconfirmed);
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace sluice::worker::publish
