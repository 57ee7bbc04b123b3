#include "worker/http_response.h"

namespace sluice::worker {
namespace {

bool has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ");
  size_t at = out.size();
  out.append(value);
  for (size_t i = at; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0') out[i] = ' ';
  }
  out.append("\r\n");
}

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void format_response(std::string& out, const ResponseHead& head, evhtp_headers_t* headers,
                     std::string_view content_type, std::string_view body) {
  out.append(head.http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(std::to_string(head.status)).append(" ").append(reason_phrase(head.status));
  out.append("\r\n");
  if (headers != nullptr) {
    evhtp_header_t* h;
    TAILQ_FOREACH(h, headers, next) {
      append_header(out, std::string_view(h->key, h->klen),
                    h->val != nullptr ? std::string_view(h->val, h->vlen) : "");
    }
  }
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  if (has_body(head.status)) append_header(out, "Content-Length", std::to_string(body.size()));
  if (!head.keep_alive && !head.http10) out.append("Connection: close\r\n");
  if (head.keep_alive && head.http10) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
  if (has_body(head.status) && !head.head_only) out.append(body);
}

}  // namespace sluice::worker
