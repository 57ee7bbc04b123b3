#include "worker/http_framing.h"

#include <strings.h>

#include <array>
#include <cstring>

#include <string>

namespace sluice::worker {
namespace {

using common::Errc;
using common::make_error;

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar, as a table: every header name of every request is checked.
constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c)
    table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    table[c] = table[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

bool is_tchar(unsigned char c) {
  return kTchar[c];
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

common::Error bad(const char* code, const char* message) {
  return make_error(Errc::bad_request, code, message);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 3986 reg-name or IPv4address characters (unreserved, sub-delims, percent-encoding).
bool reg_name(std::string_view name) {
  for (unsigned char c : name) {
    bool ok =
        is_digit(static_cast<char>(c)) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
        std::string_view("-._~!$&'()*+,;=%").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// A bracketed IP literal's inside: hex digits, ':' and '.' (an embedded IPv4 address).
bool ip_literal(std::string_view inside) {
  if (inside.empty()) return false;
  for (char c : inside) {
    bool hex = is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
    if (!hex && c != ':' && c != '.') return false;
  }
  return inside.find(':') != std::string_view::npos;
}

// RFC 9112 section 3.2: uri-host [ ":" port ], port a number up to 65535.
bool plausible_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  std::string_view port;
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || !ip_literal(host.substr(1, close - 1))) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    size_t colon = host.find(':');
    if (colon == 0 || !reg_name(host.substr(0, colon))) return false;
    if (colon != std::string_view::npos) port = host.substr(colon + 1);
  }
  if (port.size() > 5) return false;
  unsigned long number = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    number = number * 10 + static_cast<unsigned long>(c - '0');
  }
  return number <= 65535;
}

// The tokens of a Connection header, case-insensitive.
void connection_options(std::string_view list, bool& close, bool& keep_alive) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view option = trim_ows(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    close = close || iequals(option, "close");
    keep_alive = keep_alive || iequals(option, "keep-alive");
  }
}

// Every element of the comma-separated Transfer-Encoding values, in order: the final one must
// be chunked (else the body has no knowable end: RFC 9112 section 6.3 says 400), and it is the
// only coding sluice decodes (anything else is 501, section 6.1).
common::Result<void> check_codings(evhtp_headers_t* headers) {
  std::string_view last;
  size_t chunked = 0;
  bool other = false;
  evhtp_header_t* h;
  TAILQ_FOREACH(h, headers, next) {
    if (strcasecmp(h->key, "Transfer-Encoding") != 0 || h->val == nullptr) continue;
    std::string_view list(h->val, h->vlen);
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view coding = trim_ows(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (coding.empty()) continue;  // "a, , b": empty list elements are allowed
      if (iequals(coding, "chunked")) {
        ++chunked;
      } else {
        other = true;
      }
      last = coding;
    }
  }
  if (!iequals(last, "chunked") || chunked > 1) {
    return bad("invalid_transfer_encoding",
               "Transfer-Encoding must end with chunked, applied once");
  }
  if (other) {
    return make_error(Errc::not_implemented, "unsupported_transfer_coding",
                      "only the chunked transfer coding is supported");
  }
  return {};
}

}  // namespace

common::Result<void> check_header_field(std::string_view name, std::string_view value) {
  if (name.empty()) return bad("invalid_header", "a header field has an empty name");
  for (unsigned char c : name) {
    if (!is_tchar(c)) {
      return bad("invalid_header",
                 "a header name holds a character a name may not (a space before the colon?)");
    }
  }
  const char* v = value.data();
  size_t n = value.size();
  if (std::memchr(v, '\0', n) || std::memchr(v, '\r', n) || std::memchr(v, '\n', n)) {
    return bad("invalid_header", "a header value holds a NUL, CR or LF byte");
  }
  return {};
}

bool parse_content_length(std::string_view text, uint64_t& out) {
  text = trim_ows(text);
  if (text.empty() || text.size() > 19) return false;  // 19 digits always fit in 64 bits
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  out = value;
  return true;
}

common::Result<BodyFraming> check_framing(evhtp_headers_t* headers, bool http11) {
  size_t hosts = 0;
  size_t lengths = 0;
  size_t authorizations = 0;
  size_t content_types = 0;
  bool coded = false;
  bool close = false;
  bool keep_alive = false;
  BodyFraming framing;
  evhtp_header_t* h;
  TAILQ_FOREACH(h, headers, next) {
    std::string_view value = h->val != nullptr ? std::string_view(h->val, h->vlen) : "";
    if (strcasecmp(h->key, "Host") == 0) {
      ++hosts;
      if (!plausible_host(trim_ows(value)))
        return bad("invalid_host", "the Host header is not a host");
    } else if (strcasecmp(h->key, "Authorization") == 0) {
      ++authorizations;
    } else if (strcasecmp(h->key, "Content-Type") == 0) {
      ++content_types;
    } else if (strcasecmp(h->key, "Connection") == 0) {
      connection_options(value, close, keep_alive);
    } else if (strcasecmp(h->key, "Content-Length") == 0) {
      ++lengths;
      if (!parse_content_length(value, framing.length)) {
        return bad("invalid_content_length", "Content-Length must be a decimal number of bytes");
      }
    } else if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
      coded = true;
    } else if (strcasecmp(h->key, "Expect") == 0) {
      if (!iequals(trim_ows(value), "100-continue")) {
        return make_error(Errc::expectation_failed, "expectation_failed",
                          "the only expectation served is 100-continue");
      }
      framing.expect_continue = true;
    }
  }
  if (hosts > 1) return bad("invalid_host", "the request has more than one Host header");
  if (authorizations > 1 || content_types > 1) {
    return bad("ambiguous_header", "the request has more than one Authorization or Content-Type");
  }
  if (hosts == 0 && http11) return bad("missing_host", "an HTTP/1.1 request needs a Host header");
  // Two lengths, or a length beside chunked encoding, are how requests are smuggled past a
  // proxy that reads them differently.
  if (lengths > 1 || (lengths == 1 && coded)) {
    return bad("ambiguous_length", "the request has more than one body length");
  }
  if (coded) {
    if (auto ok = check_codings(headers); !ok) return ok.error();
    framing.kind = BodyFraming::Kind::chunked;
  } else if (lengths == 1 && framing.length > 0) {
    framing.kind = BodyFraming::Kind::length;
  }
  // HTTP/1.0 has no chunked coding: such a message's framing is suspect (RFC 9112 6.1).
  framing.keep_alive = !close && (http11 || (keep_alive && !coded));
  return framing;
}

}  // namespace sluice::worker
