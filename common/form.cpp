#include "common/form.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <utility>

namespace sluice::common {

namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kOws = " \t";

Error form_error(std::string message) {
  return make_error(Errc::bad_request, "malformed_form", std::move(message));
}

Error multipart_error(std::string message) {
  return make_error(Errc::bad_request, "malformed_multipart", std::move(message));
}

// ASCII only: header names, media types and schemes are ASCII, and the C locale functions
// would make the result depend on setlocale().
char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  std::size_t begin = s.find_first_not_of(kOws);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kOws) - begin + 1);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses the quoted-string that starts at in[i] == '"', undoing backslash escapes (RFC 9110
// quoted-pair). Leaves i just past the closing quote; false when the quote is never closed.
bool read_quoted(std::string_view in, std::size_t& i, std::string& value) {
  for (++i; i < in.size(); ++i) {
    if (in[i] == '"') {
      ++i;
      return true;
    }
    if (in[i] == '\\' && i + 1 < in.size()) ++i;
    value.push_back(in[i]);
  }
  return false;
}

// Looks up one parameter in the "; a=b; c="d"" list after a media or disposition type.
// Quoted values may hold ';' (filename="a;b.txt"), so a plain split on ';' would cut them.
// A parameter without '=' has an empty value; the first occurrence of a name wins.
Result<std::optional<std::string>> find_param(std::string_view params, std::string_view want) {
  std::size_t i = 0;
  while (i < params.size()) {
    if (params[i] == ';' || params[i] == ' ' || params[i] == '\t') {
      ++i;
      continue;
    }
    std::size_t name_end = std::min(params.find_first_of("=;", i), params.size());
    std::string_view name = trim_ows(params.substr(i, name_end - i));
    i = name_end;
    std::string value;
    if (i < params.size() && params[i] == '=') {
      i = std::min(params.find_first_not_of(kOws, i + 1), params.size());
      if (i < params.size() && params[i] == '"') {
        if (!read_quoted(params, i, value))
          return multipart_error("A quoted parameter in a multipart header is not closed.");
        i = std::min(params.find(';', i), params.size());  // junk after the quote is ignored
      } else {
        std::size_t end = std::min(params.find(';', i), params.size());
        value = std::string(trim_ows(params.substr(i, end - i)));
        i = end;
      }
    }
    if (iequals(name, want)) return std::optional<std::string>(std::move(value));
  }
  return std::optional<std::string>();
}

// The parameters of a header value such as "form-data; name=x": everything after the first
// ';', or nothing.
std::string_view params_of(std::string_view header_value) {
  std::size_t semi = header_value.find(';');
  return semi == std::string_view::npos ? std::string_view() : header_value.substr(semi + 1);
}

std::string_view media_type_of(std::string_view header_value) {
  return trim_ows(header_value.substr(0, header_value.find(';')));
}

Result<std::string> multipart_boundary(std::string_view content_type) {
  auto boundary = find_param(params_of(content_type), "boundary");
  if (!boundary) return boundary.error();
  if (!*boundary || (*boundary)->empty())
    return multipart_error("The multipart Content-Type has no boundary parameter.");
  // A boundary with a line break could never sit alone on a delimiter line.
  if ((*boundary)->find_first_of(kCrlf) != std::string::npos)
    return multipart_error("The multipart boundary contains a line break.");
  return std::move(**boundary);
}

// After "--boundary" a delimiter line goes on with "--" (the close delimiter) or with optional
// spaces and tabs and a CRLF (RFC 2046 section 5.1.1). Anything else, like "--boundaryX", is
// content that happens to start with the boundary.
bool delimiter_ends_at(std::string_view body, std::size_t pos) {
  if (body.substr(pos, 2) == "--") return true;
  pos = std::min(body.find_first_not_of(kOws, pos), body.size());
  return body.substr(pos, kCrlf.size()) == kCrlf;
}

// The one scanner: finds the next delimiter line "\r\n--boundary" at or after `from` and
// returns the position of its "--". Only the first delimiter may open the body without a
// CRLF in front; anything before it is the preamble.
std::size_t find_delimiter(std::string_view body, std::size_t from, std::string_view crlf_dash) {
  const std::string_view dash = crlf_dash.substr(kCrlf.size());
  if (from == 0 && body.substr(0, dash.size()) == dash && delimiter_ends_at(body, dash.size()))
    return 0;
  for (std::size_t hit = body.find(crlf_dash, from); hit != std::string_view::npos;
       hit = body.find(crlf_dash, hit + 1)) {
    if (delimiter_ends_at(body, hit + crlf_dash.size())) return hit + kCrlf.size();
  }
  return std::string_view::npos;
}

// The field name of a part, from its Content-Disposition header; nullopt when the part has
// none or is not form-data. Header names and the disposition type are case-insensitive.
Result<std::optional<std::string>> part_name(std::string_view headers) {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t eol = std::min(headers.find(kCrlf, pos), headers.size());
    std::string_view line = headers.substr(pos, eol - pos);
    pos = eol + kCrlf.size();
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (!iequals(trim_ows(line.substr(0, colon)), "content-disposition")) continue;
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!iequals(media_type_of(value), "form-data")) break;
    return find_param(params_of(value), "name");
  }
  return std::optional<std::string>();
}

// One body part, without the CRLF that belongs to the next delimiter. The value is every byte
// after the blank line that ends the headers, so a trailing CRLF in the content is kept.
Result<void> add_part(std::string_view part, FormFields& out) {
  if (part.empty()) return {};  // no headers, no content: nothing to name
  std::string_view headers;
  std::string_view content;
  if (part.substr(0, kCrlf.size()) == kCrlf) {
    content = part.substr(kCrlf.size());  // no headers at all, so no name either
  } else {
    std::size_t end = part.find("\r\n\r\n");
    if (end == std::string_view::npos)
      return multipart_error("A multipart part has no blank line after its headers.");
    headers = part.substr(0, end);
    content = part.substr(end + 4);
  }
  auto name = part_name(headers);
  if (!name) return name.error();
  if (*name) out.insert_or_assign(std::move(**name), std::string(content));
  return {};
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Standard alphabet, '=' padding required (RFC 4648 section 4, which RFC 7617 uses and every
// client sends). EVP_DecodeBlock is lax: it skips surrounding whitespace, accepts '=' in the
// middle ("Zg=a", "====") and counts padding as zero bytes. So the input is checked here
// first and the padding bytes are cut from its result afterwards.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0 || in.size() > INT_MAX) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=')
    ++pad;
  for (std::size_t i = 0; i + pad < in.size(); ++i)
    if (!is_base64_char(in[i])) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  return out;
}

// Moves parsed fields into `out` only once the whole input parsed, so a failed parse leaves
// `out` as it was; later fields overwrite earlier ones (last wins).
void merge(FormFields& parsed, FormFields& out) {
  for (auto& [name, value] : parsed)
    out.insert_or_assign(name, std::move(value));
}

}  // namespace

Result<std::string> percent_decode(std::string_view in, bool plus_as_space) {
  // Most names, values and path segments have nothing to decode: one copy.
  if (in.find_first_of(plus_as_space ? "%+" : "%") == std::string_view::npos) {
    return std::string(in);
  }
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return form_error("A '%' in the form data is not followed by two hex digits.");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c == '+' && plus_as_space ? ' ' : c);
    }
  }
  return out;
}

// All or nothing: a failed parse leaves `out` as it was. An empty `out` (no query string,
// the usual case) is filled directly and emptied again on an error; otherwise the fields go
// through a scratch map merged at the end, later ones replacing earlier ones.
Result<void> parse_urlencoded(std::string_view text, FormFields& out) {
  if (!out.empty()) {
    FormFields parsed;
    if (auto r = parse_urlencoded(text, parsed); !r) return r;
    merge(parsed, out);
    return {};
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t amp = std::min(text.find('&', pos), text.size());
    std::string_view pair = text.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!name || !value) {
      out.clear();
      return !name ? name.error() : value.error();
    }
    out.insert_or_assign(std::move(*name), std::move(*value));
  }
  return {};
}

Result<void> parse_multipart(std::string_view body, std::string_view content_type,
                             FormFields& out) {
  auto boundary = multipart_boundary(content_type);
  if (!boundary) return boundary.error();
  if (body.empty()) return {};  // no parts sent at all; the caller decides what is missing
  const std::string crlf_dash = std::string(kCrlf) + "--" + *boundary;
  const std::size_t dash_size = crlf_dash.size() - kCrlf.size();
  FormFields parsed;
  std::size_t at = find_delimiter(body, 0, crlf_dash);
  if (at == std::string_view::npos)
    return multipart_error("The multipart body has no boundary delimiter.");
  for (;;) {
    std::size_t pos = at + dash_size;
    if (body.substr(pos, 2) == "--") break;      // close delimiter; the epilogue is ignored
    pos = body.find(kCrlf, pos) + kCrlf.size();  // past the transport padding find_delimiter saw
    at = find_delimiter(body, pos, crlf_dash);
    if (at == std::string_view::npos)
      return multipart_error("The multipart body has no closing boundary delimiter.");
    auto added = add_part(body.substr(pos, at - kCrlf.size() - pos), parsed);
    if (!added) return added;
  }
  merge(parsed, out);
  return {};
}

Result<void> parse_form_body(std::string_view content_type, std::string_view body,
                             FormFields& out) {
  std::string_view media_type = media_type_of(content_type);
  if (media_type.empty()) return parse_urlencoded(body, out);  // curl -d without a type
  if (iequals(media_type, "application/x-www-form-urlencoded")) return parse_urlencoded(body, out);
  if (iequals(media_type, "multipart/form-data")) return parse_multipart(body, content_type, out);
  return make_error(Errc::unsupported_media, "unsupported_media_type",
                    "The request body must be application/x-www-form-urlencoded or "
                    "multipart/form-data.");
}

std::optional<BasicCredentials> parse_basic_auth(const char* authorization) {
  if (authorization == nullptr) return std::nullopt;
  constexpr std::string_view kScheme = "basic";
  std::string_view header = trim_ows(authorization);
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme) ||
      header[kScheme.size()] != ' ')
    return std::nullopt;
  // One or more spaces (RFC 9110 allows 1*SP there); the rest must be the base64 token.
  std::string_view token = header.substr(kScheme.size());
  token.remove_prefix(std::min(token.find_first_not_of(' '), token.size()));
  std::optional<std::string> decoded = base64_decode(token);
  if (!decoded) return std::nullopt;
  std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

}  // namespace sluice::common
