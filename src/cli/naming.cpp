// Output name derivation and sanitising.
#include "cli/naming.hpp"

#include "text.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>

namespace uvget::cli {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t kMaxName = 200;  // leaves room for ".part" and a ".NNN" suffix

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string sanitise_name(std::string_view decoded) {
  std::string out;
  out.reserve(decoded.size());
  for (char c : decoded) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\' || u < 0x20 || u == 0x7f)
      out.push_back('_');
    else
      out.push_back(c);
  }
  if (out.empty() || out == "." || out == "..") return "index.html";
  std::size_t dots = 0;
  while (dots < out.size() && out[dots] == '.') ++dots;
  if (dots > 0) out.replace(0, dots, std::string(dots, '_'));
  if (out.size() > kMaxName) {
    // Keep a short extension: "very-long....tar.gz" stays recognisable.
    std::size_t dot = out.rfind('.');
    std::string ext = (dot != std::string::npos && out.size() - dot <= 16) ? out.substr(dot) : "";
    std::size_t keep = kMaxName - ext.size();
    // Do not cut a UTF-8 sequence in half (unless the text is no UTF-8 at all).
    std::size_t at = keep;
    while (at > 0 && (static_cast<unsigned char>(out[at]) & 0xC0) == 0x80) --at;
    out = out.substr(0, at > 0 ? at : keep) + ext;
  }
  return out.empty() ? "index.html" : out;
}

std::string name_from_path(std::string_view path) {
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  std::size_t slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return sanitise_name(percent_decode(last));
}

namespace {

// FNV-1a, 64 bits: a stable digest for names (not for security: a name is never trusted).
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string_view last_segment(std::string_view path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string name_for(std::string_view path, std::string_view query, bool has_query,
                     std::string_view url, NameFrom how) {
  switch (how) {
    case NameFrom::path:
      return name_from_path(path);
    case NameFrom::path_query: {
      std::string name = percent_decode(last_segment(path));
      if (has_query) name += "?" + percent_decode(query);
      return sanitise_name(name);
    }
    case NameFrom::hash: {
      // Two digests of the URL (the second over it reversed) make 32 hex digits: distinct
      // names for any list a run can hold.
      std::string reversed(url.rbegin(), url.rend());
      char hex[40];
      std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(fnv1a(url)),
                    static_cast<unsigned long long>(fnv1a(reversed)));
      std::string seg = percent_decode(last_segment(path));
      std::size_t dot = seg.rfind('.');
      std::string ext;
      if (dot != std::string::npos && dot > 0 && seg.size() - dot <= 10) ext = seg.substr(dot);
      return sanitise_name(hex + ext);
    }
  }
  return name_from_path(path);
}

namespace {

// RFC 8187 ext-value: charset'language'pct-encoded. "" when the charset is not one we read.
std::string ext_value(std::string_view v) {
  std::size_t q1 = v.find('\''), q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return {};
  std::string_view charset = v.substr(0, q1);
  std::string raw = percent_decode(v.substr(q2 + 1));
  if (iequals(charset, "UTF-8")) return raw;
  if (!iequals(charset, "ISO-8859-1")) return {};
  std::string utf8;  // Latin-1 to UTF-8
  for (unsigned char c : raw) {
    if (c < 0x80) {
      utf8.push_back(static_cast<char>(c));
    } else {
      utf8.push_back(static_cast<char>(0xC0 | (c >> 6)));
      utf8.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return utf8;
}

}  // namespace

std::string content_disposition_name(std::string_view header) {
  std::string plain, extended;
  std::size_t i = header.find(';');  // the disposition type comes first
  while (i != std::string_view::npos && i < header.size()) {
    ++i;
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
    std::size_t eq = header.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string_view key = header.substr(i, eq - i);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    i = eq + 1;
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
    std::string value;
    if (i < header.size() && header[i] == '"') {  // quoted-string, with \-escapes
      for (++i; i < header.size() && header[i] != '"'; ++i) {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value.push_back(header[i]);
      }
      i = header.find(';', i);
    } else {
      std::size_t end = header.find(';', i);
      value = std::string(header.substr(i, end == std::string_view::npos ? end : end - i));
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      i = end;
    }
    if (iequals(key, "filename*"))
      extended = ext_value(value);
    else if (iequals(key, "filename"))
      plain = value;
  }
  std::string name = !extended.empty() ? extended : plain;
  std::size_t cut = name.find_last_of("/\\");
  if (cut != std::string::npos) name = name.substr(cut + 1);
  if (name.empty() || name == "." || name == "..") return {};
  return sanitise_name(name);
}

std::string layout_dirs(std::string_view host_port, std::string_view path, bool no_host,
                        int cut_dirs) {
  std::string out;
  auto add = [&out](std::string_view segment) {
    std::string d = percent_decode(segment);
    if (d.empty() || d == ".") return;
    std::string safe = sanitise_name(d);  // ".." and leading dots lose their meaning here
    if (d == "..") safe = "__";
    if (!out.empty()) out.push_back('/');
    out += safe;
  };
  if (!no_host) add(host_port);
  std::size_t slash = path.rfind('/');
  std::string_view dirs =
      slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
  int index = 0;
  while (!dirs.empty()) {
    std::size_t next = dirs.find('/');
    std::string_view seg = dirs.substr(0, next);
    dirs = next == std::string_view::npos ? std::string_view() : dirs.substr(next + 1);
    if (seg.empty()) continue;  // the leading '/', or "//"
    if (index++ < cut_dirs) continue;
    add(seg);
  }
  return out;
}

}  // namespace uvget::cli
