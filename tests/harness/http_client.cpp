// HTTP client for tests: libcurl easy, one handle per thread, always 127.0.0.1.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "tests/harness/harness.h"

namespace sluice::test {
namespace {

struct CurlCleanup {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistCleanup {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlCleanup>;
using SlistPtr = std::unique_ptr<curl_slist, SlistCleanup>;

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Keeps connections alive between calls on the same thread; reset per request.
CURL* thread_handle() {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  thread_local CurlPtr handle(curl_easy_init());
  return handle.get();
}

size_t on_body(char* data, size_t size, size_t nmemb, void* userdata) {
  static_cast<HttpResponse*>(userdata)->body.append(data, size * nmemb);
  return size * nmemb;
}

size_t on_header(char* data, size_t size, size_t nitems, void* userdata) {
  auto* response = static_cast<HttpResponse*>(userdata);
  std::string line(data, size * nitems);
  if (line.compare(0, 5, "HTTP/") == 0) {
    response->headers.clear();  // a new (final or interim) response starts
    return size * nitems;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string::npos) return size * nitems;
  std::string name = lowercase(trim(line.substr(0, colon)));
  std::string value = trim(line.substr(colon + 1));
  auto it = response->headers.find(name);
  if (it == response->headers.end()) {
    response->headers.emplace(name, value);
  } else {
    it->second += ", " + value;
  }
  return size * nitems;
}

bool has_header(const HttpRequest& request, const std::string& lowercase_name) {
  for (const auto& [name, value] : request.headers) {
    if (lowercase(name) == lowercase_name) return true;
  }
  return false;
}

}  // namespace

std::string HttpResponse::header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? "" : it->second;
}

HttpResponse http(const HttpRequest& request) {
  HttpResponse response;
  CURL* curl = thread_handle();
  if (!curl) {
    response.error = "curl_easy_init failed";
    return response;
  }
  curl_easy_reset(curl);

  std::string url = "http://127.0.0.1:" + std::to_string(request.port) + request.path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<long>(request.timeout.count(), 5000)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  if (request.fresh_connection) {
    curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
  }

  const std::string& method = request.method;
  bool send_body =
      !request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (send_body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    if (method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers) {
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    list = curl_slist_append(list, line.c_str());
  }
  if (!has_header(request, "expect")) list = curl_slist_append(list, "Expect:");
  if (send_body && !has_header(request, "content-type")) {
    list = curl_slist_append(list, "Content-Type:");  // drop curl's form-urlencoded default
  }
  SlistPtr headers(list);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    response.status = 0;
    response.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  } else {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
  }
  // The handle keeps pointers to our errbuf and header list: clear them before they die.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  return response;
}

HttpResponse http_get(uint16_t port, const std::string& path,
                      std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.port = port;
  request.path = path;
  request.headers = std::move(headers);
  return http(request);
}

HttpResponse http_post(uint16_t port, const std::string& path, const std::string& body,
                       const std::string& content_type,
                       std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.method = "POST";
  request.port = port;
  request.path = path;
  request.body = body;
  request.headers = std::move(headers);
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  return http(request);
}

std::string basic_auth(const std::string& user, const std::string& password) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = user + ":" + password;
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return "Basic " + out;
}

}  // namespace sluice::test
