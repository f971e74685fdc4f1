// URL parsing and reference resolution for http and https (RFC 3986), strict about what a
// downloader must not guess: unknown schemes, bad ports, bad percent-escapes and control bytes.
#include "url.hpp"

#include <idn2.h>

#include <algorithm>
#include <cctype>

namespace uvget {
namespace {

constexpr std::string_view kHex = "0123456789ABCDEF";

bool is_hex(char c) noexcept {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_unreserved(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) noexcept {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

Error url_error(std::string_view text, std::string_view why) {
  std::string shown(text.substr(0, 200));
  if (text.size() > 200) shown += "...";
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return Error(Errc::bad_url, "bad URL '" + shown + "': " + std::string(why));
}

// Path, query: keeps valid percent-escapes and pchar as given, percent-encodes what a server
// cannot take raw (space, non-ASCII, quotes...), refuses control bytes and broken escapes.
bool normalise_component(std::string_view in, bool is_query, std::string& out, std::string& why) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      why = "control character in the URL";
      return false;
    }
    if (c == '%') {
      if (i + 2 >= in.size()) {
        why = "incomplete percent-escape";
        return false;
      }
      if (!is_hex(in[i + 1]) || !is_hex(in[i + 2])) {
        why = "invalid percent-escape";
        return false;
      }
      out.append(in.substr(i, 3));
      i += 2;
      continue;
    }
    bool keep = is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' || c == '/' ||
                (is_query && c == '?');
    if (keep) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return true;
}

bool valid_reg_name(std::string_view host) {
  for (std::size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '%') {
      if (i + 2 >= host.size() || !is_hex(host[i + 1]) || !is_hex(host[i + 2])) return false;
      i += 2;
    } else if (!is_unreserved(c) && !is_sub_delim(c) && static_cast<unsigned char>(c) < 0x80) {
      return false;  // UTF-8 (an international name) is converted below
    }
  }
  return true;
}

int hex_value(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

// An international host name (UTF-8, raw or percent-encoded) as its A-labels, the way curl does
// it: UTS #46 without transitional mappings, then with them for names that need them
// (libidn2). ASCII names come back as they are. Empty with `why` set when it is not a name.
std::string to_ascii_host(std::string_view host, std::string& why) {
  bool plain = std::all_of(host.begin(), host.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80 && c != '%'; });
  if (plain) return std::string(host);
  std::string utf8;
  for (std::size_t i = 0; i < host.size(); ++i) {
    if (host[i] == '%') {
      utf8.push_back(static_cast<char>(hex_value(host[i + 1]) * 16 + hex_value(host[i + 2])));
      i += 2;
    } else {
      utf8.push_back(host[i]);
    }
  }
  if (std::all_of(utf8.begin(), utf8.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(host);  // only escaped ASCII: kept as written
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(utf8.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) rc = idn2_to_ascii_8z(utf8.c_str(), &out, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
  if (rc != IDN2_OK) {
    why = idn2_strerror(rc);
    return "";
  }
  std::string ascii(out);
  idn2_free(out);
  // What the A-label form spells must itself be a host: escapes may have hidden controls.
  if (!valid_reg_name(ascii) || std::any_of(ascii.begin(), ascii.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
      })) {
    why = "it has characters a host cannot";
    return "";
  }
  return ascii;
}

bool valid_ipv6(std::string_view h) {
  if (h.size() < 2) return false;
  int groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (h.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
    if (i == h.size()) return true;
  }
  while (i < h.size()) {
    std::size_t j = i;
    while (j < h.size() && is_hex(h[j])) ++j;
    if (j < h.size() && h[j] == '.') {  // embedded IPv4 as the last 32 bits
      std::string_view v4 = h.substr(i);
      int parts = 0;
      std::size_t k = 0;
      while (k <= v4.size()) {
        std::size_t e = v4.find('.', k);
        if (e == std::string_view::npos) e = v4.size();
        std::string_view p = v4.substr(k, e - k);
        if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), is_digit)) return false;
        if (std::stoi(std::string(p)) > 255) return false;
        ++parts;
        k = e + 1;
      }
      if (parts != 4) return false;
      groups += 2;
      i = h.size();
      break;
    }
    if (j == i || j - i > 4) return false;
    ++groups;
    if (j == h.size()) {
      i = j;
      break;
    }
    if (h[j] != ':') return false;
    if (j + 1 < h.size() && h[j + 1] == ':') {
      if (compressed) return false;
      compressed = true;
      i = j + 2;
      if (i == h.size()) break;
    } else {
      i = j + 1;
      if (i == h.size()) return false;
    }
  }
  return compressed ? groups < 8 : groups == 8;
}

struct Parts {  // a reference split per RFC 3986 appendix B
  std::string_view scheme, authority, path, query, fragment;
  bool has_scheme = false, has_authority = false, has_query = false;
};

Parts split(std::string_view s) {
  Parts p;
  if (auto f = s.find('#'); f != std::string_view::npos) {
    p.fragment = s.substr(f + 1);
    s = s.substr(0, f);
  }
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  if (!s.empty() && is_alpha(s[0])) {
    std::size_t i = 1;
    while (i < s.size() &&
           (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
      ++i;
    if (i < s.size() && s[i] == ':') {
      p.scheme = s.substr(0, i);
      p.has_scheme = true;
      s = s.substr(i + 1);
    }
  }
  if (s.substr(0, 2) == "//") {
    s = s.substr(2);
    std::size_t e = s.find_first_of("/?");
    p.authority = s.substr(0, e);
    p.has_authority = true;
    s = e == std::string_view::npos ? std::string_view{} : s.substr(e);
  }
  if (auto q = s.find('?'); q != std::string_view::npos) {
    p.query = s.substr(q + 1);
    p.has_query = true;
    s = s.substr(0, q);
  }
  p.path = s;
  return p;
}

Error check_scheme(std::string_view text, std::string_view scheme) {
  std::string s;
  for (char c : scheme) s.push_back(lower(c));
  if (s != "http" && s != "https")
    return url_error(text, "unsupported scheme '" + s + "' (only http and https)");
  return {};
}

Result<Url> build(std::string_view text, std::string_view scheme, std::string_view authority,
                  std::string_view path, std::string_view query, bool has_query) {
  Url u;
  for (char c : scheme) u.scheme.push_back(lower(c));
  if (u.scheme != "http" && u.scheme != "https")
    return url_error(text, "unsupported scheme '" + u.scheme + "' (only http and https)");

  std::string_view hostport = authority;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    u.userinfo = std::string(authority.substr(0, at));
    hostport = authority.substr(at + 1);
  }
  std::string_view host, port;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return url_error(text, "unterminated IPv6 literal");
    host = hostport.substr(1, close - 1);
    std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return url_error(text, "junk after IPv6 literal");
      port = rest.substr(1);
    }
    if (host.substr(0, 1) == "v" || host.substr(0, 1) == "V")
      return url_error(text, "IPvFuture literals are not supported");
    if (auto zone = host.find('%'); zone != std::string_view::npos)
      return url_error(text, "IPv6 zone identifiers are not supported");
    if (!valid_ipv6(host)) return url_error(text, "invalid IPv6 literal");
  } else {
    auto colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
    if (!valid_reg_name(host)) return url_error(text, "invalid character in host");
  }
  if (host.empty()) return url_error(text, "missing host");
  std::string idn_why;
  std::string ascii = hostport[0] == '[' ? std::string(host) : to_ascii_host(host, idn_why);
  if (ascii.empty()) return url_error(text, "invalid international host name: " + idn_why);
  for (char c : ascii) u.host.push_back(lower(c));

  if (port.empty()) {
    u.port = u.default_port();
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit))
      return url_error(text, "invalid port");
    int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return url_error(text, "port out of range");
    u.port = static_cast<std::uint16_t>(n);
  }

  std::string why;
  if (!normalise_component(path, false, u.path, why)) return url_error(text, why);
  if (u.path.empty()) u.path = "/";
  if (!normalise_component(query, true, u.query, why)) return url_error(text, why);
  u.has_query = has_query;
  return u;
}

}  // namespace

std::string remove_dot_segments(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  while (!in.empty()) {
    if (in.substr(0, 3) == "../") {
      in.remove_prefix(3);
    } else if (in.substr(0, 2) == "./") {
      in.remove_prefix(2);
    } else if (in.substr(0, 3) == "/./") {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.substr(0, 4) == "/../" || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      auto slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      std::size_t start = in[0] == '/' ? 1 : 0;
      std::size_t next = in.find('/', start);
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(0, next));
      in.remove_prefix(next);
    }
  }
  return out;
}

Result<Url> Url::parse(std::string_view text) {
  // Leading and trailing blanks are a copy-paste accident, not part of the URL.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return url_error(text, "empty");
  Parts p = split(text);
  if (!p.has_scheme) return url_error(text, "missing scheme (expected http:// or https://)");
  if (Error e = check_scheme(text, p.scheme)) return e;
  if (!p.has_authority) return url_error(text, "missing '//' and host");
  auto u = build(text, p.scheme, p.authority, p.path, p.query, p.has_query);
  // The same URL must name the same resource whether typed or reached by a redirect.
  if (u) u->path = remove_dot_segments(u->path);
  return u;
}

Result<Url> Url::resolve(std::string_view ref) const {
  while (!ref.empty() && (ref.front() == ' ' || ref.front() == '\t')) ref.remove_prefix(1);
  while (!ref.empty() && (ref.back() == ' ' || ref.back() == '\t')) ref.remove_suffix(1);
  Parts r = split(ref);
  if (r.has_scheme) {
    if (Error e = check_scheme(ref, r.scheme)) return e;
    if (!r.has_authority) return url_error(ref, "missing '//' and host");
    auto u = build(ref, r.scheme, r.authority, r.path, r.query, r.has_query);
    if (u) u->path = remove_dot_segments(u->path);
    return u;
  }
  if (r.has_authority) {
    auto u = build(ref, scheme, r.authority, r.path, r.query, r.has_query);
    if (u) u->path = remove_dot_segments(u->path);
    return u;
  }
  std::string new_path;
  std::string_view new_query = r.query;
  bool new_has_query = r.has_query;
  if (r.path.empty()) {
    new_path = path;
    if (!r.has_query) {
      new_query = query;
      new_has_query = has_query;
    }
  } else if (r.path[0] == '/') {
    new_path = remove_dot_segments(r.path);
  } else {
    std::string merged = path.substr(0, path.rfind('/') + 1);
    merged.append(r.path);
    new_path = remove_dot_segments(merged);
  }
  Url u = *this;
  std::string why;
  if (!normalise_component(new_path, false, u.path, why)) return url_error(ref, why);
  if (u.path.empty()) u.path = "/";
  if (!normalise_component(new_query, true, u.query, why)) return url_error(ref, why);
  u.has_query = new_has_query;
  return u;
}

std::string Url::authority() const {
  std::string a = is_ipv6_literal() ? "[" + host + "]" : host;
  if (port != default_port()) a += ":" + std::to_string(port);
  return a;
}

std::string Url::target() const {
  return has_query ? path + "?" + query : path;
}

std::string Url::origin() const {
  std::string a = is_ipv6_literal() ? "[" + host + "]" : host;
  return scheme + "://" + a + ":" + std::to_string(port);
}

std::string Url::str() const {
  return scheme + "://" + authority() + target();
}

}  // namespace uvget

namespace uvget {

Result<UrlParts> parse_url(std::string_view text) {
  auto u = Url::parse(text);
  if (!u) return u.error();
  return UrlParts{std::move(u->scheme), std::move(u->host),  u->port,
                  std::move(u->path),   std::move(u->query), u->has_query};
}

}  // namespace uvget
