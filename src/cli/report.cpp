// JSON output, human-readable figures and sharding for the command line.
#include "cli/report.hpp"

#include <charconv>
#include <cstdio>

namespace uvget::cli {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (b(i + k) & 0x3F);
  static const std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong...
  return n;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    // A run of printable ASCII without quote or backslash goes in whole.
    std::size_t plain = i;
    while (plain < s.size()) {
      auto c = static_cast<unsigned char>(s[plain]);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') break;
      ++plain;
    }
    out.append(s.substr(i, plain - i));
    i = plain;
    if (i == s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_len(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {  // the other controls and DEL
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
    }
    ++i;
  }
  out.push_back('"');
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

std::string mask_credentials(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0;;) {
    std::size_t scheme = text.find("://", at);
    if (scheme == std::string_view::npos) {
      out.append(text.substr(at));
      return out;
    }
    std::size_t start = scheme + 3;
    out.append(text.substr(at, start - at));
    // The authority ends at the first of these; userinfo is what comes before its last '@'.
    std::size_t end = text.find_first_of("/?#\" \t\r\n'<>", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view authority = text.substr(start, end - start);
    std::size_t atsign = authority.rfind('@');
    std::size_t colon = atsign == std::string_view::npos ? atsign : authority.find(':');
    if (colon != std::string_view::npos && colon < atsign) {
      out.append(authority.substr(0, colon + 1));
      out.append("***");
      out.append(authority.substr(atsign));
    } else {
      out.append(authority);
    }
    at = end;
  }
}

std::string_view error_kind(const Error& e) {
  if (e.code.category() != uvget_category()) return "other";
  switch (static_cast<Errc>(e.code.value())) {
    case Errc::bad_url:
      return "bad_url";
    case Errc::bad_request:
      return "bad_request";
    case Errc::resolve:
      return "dns";
    case Errc::dns_temporary:
      return "dns_temporary";
    case Errc::connect:
      return "connect";
    case Errc::connect_timeout:
      return "connect_timeout";
    case Errc::idle_timeout:
      return "idle_timeout";
    case Errc::timeout:
      return "timeout";
    case Errc::tls_handshake:
      return "tls";
    case Errc::tls_verify:
      return "tls_verify";
    case Errc::connection_closed:
    case Errc::connection_reset:
      return "connection";
    case Errc::http_parse:
    case Errc::header_too_large:
      return "http_protocol";
    case Errc::http_status:
      return "http_status";
    case Errc::too_many_redirects:
    case Errc::bad_redirect:
      return "redirect";
    case Errc::cancelled:
    case Errc::client_closed:
      return "cancelled";
    case Errc::file_io:
      return "file";
    case Errc::size_mismatch:
      return "size_mismatch";
    case Errc::body_too_large:
      return "too_large";
    case Errc::too_slow:
      return "too_slow";
    case Errc::checksum_mismatch:
      return "checksum";
    case Errc::bad_encoding:
      return "encoding";
    case Errc::robots_disallowed:
      return "robots";
  }
  return "other";
}

std::string json_error(std::string_view kind, std::string_view message) {
  return "{\"kind\":" + json_string(kind) +
         ",\"message\":" + json_string(mask_credentials(message)) + "}";
}

std::string json_not_started(std::string_view url, std::uint64_t line) {
  return "{\"url\":" + json_string(mask_credentials(url)) +
         (line ? ",\"line\":" + std::to_string(line) : std::string()) +
         ",\"final_url\":null,\"path\":null,\"status\":0,\"bytes\":0,\"resumed_from\":0,"
         "\"seconds\":0,\"attempts\":0,\"redirects\":0,\"error\":" +
         json_error("not_started", "not started: the run was interrupted") + "}";
}

namespace {

template <typename N>
void append_number(std::string& out, N n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, ec == std::errc() ? end : buf);
}

// A URL as records have it: its password masked (copied only when it may have one).
void append_url(std::string& out, std::string_view url) {
  if (url.find('@') == std::string_view::npos) return append_json_string(out, url);
  append_json_string(out, mask_credentials(url));
}

}  // namespace

void append_json_record(std::string& out, const TransferResult& r, std::string_view path,
                        bool skipped) {
  out += "{\"url\":";
  append_url(out, r.url);
  out += ",\"final_url\":";
  if (r.final_url.empty()) {
    out += "null";
  } else {
    append_url(out, r.final_url);
  }
  out += ",\"path\":";
  if (path.empty()) {
    out += "null";
  } else {
    append_json_string(out, path);
  }
  out += ",\"status\":";
  append_number(out, r.status);
  out += ",\"bytes\":";
  append_number(out, r.bytes);
  out += ",\"resumed_from\":";
  append_number(out, r.resumed_from);
  out += ",\"seconds\":";
  char secs[32];
  auto [end, ec] = std::to_chars(secs, secs + sizeof secs, r.seconds, std::chars_format::fixed, 6);
  out.append(secs, ec == std::errc() ? end : secs);
  out += ",\"attempts\":";
  append_number(out, r.attempts);
  out += ",\"redirects\":";
  append_number(out, r.redirects);
  if (r.host_limit) {
    out += ",\"host_limit\":";
    append_number(out, r.host_limit);
  }
  if (skipped) out += ",\"skipped\":true";
  if (!r.etag.empty()) {
    out += ",\"etag\":";
    append_json_string(out, r.etag);
  }
  if (!r.last_modified.empty()) {
    out += ",\"last_modified\":";
    append_json_string(out, r.last_modified);
  }
  out += ",\"error\":";
  if (r.ok()) {
    out += "null";
  } else {
    out += json_error(error_kind(r.error), r.error.message());
  }
  out += '}';
}

std::string json_record(const TransferResult& r, std::string_view path, bool skipped) {
  std::string out;
  append_json_record(out, r, path, skipped);
  return out;
}

std::string fit_status(const std::vector<std::string>& fields, std::size_t width) {
  // Which fields go first, by index: connections (4), bytes (1), rate (2), ETA (3).
  static const std::size_t kDropOrder[] = {4, 1, 2, 3};
  std::vector<bool> keep(fields.size(), true);
  auto join = [&] {
    std::string line;
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (keep[i]) line += (line.empty() ? "" : ", ") + fields[i];
    return line;
  };
  std::string line = join();
  for (std::size_t d : kDropOrder) {
    if (line.size() <= width) return line;
    if (d < keep.size()) keep[d] = false;
    line = join();
  }
  if (line.size() > width) line.resize(width);
  return line;
}

std::string count_of(std::uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

std::string human_bytes(double n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (n >= 1000 && u < 5) {
    n /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf,
                u == 0    ? "%.0f %s"
                : n < 10  ? "%.2f %s"
                : n < 100 ? "%.1f %s"
                          : "%.0f %s",
                n, units[u]);
  return buf;
}

std::string human_duration(double s) {
  if (!(s >= 0) || s > 360000) return "--:--";
  auto t = static_cast<unsigned long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lu:%02lu", t / 60, t % 60);
  return buf;
}

std::optional<Shard> parse_shard(std::string_view spec) {
  auto slash = spec.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  Shard s;
  auto k = spec.substr(0, slash), n = spec.substr(slash + 1);
  auto r1 = std::from_chars(k.data(), k.data() + k.size(), s.index);
  auto r2 = std::from_chars(n.data(), n.data() + n.size(), s.count);
  if (r1.ec != std::errc() || r1.ptr != k.data() + k.size() || k.empty()) return std::nullopt;
  if (r2.ec != std::errc() || r2.ptr != n.data() + n.size() || n.empty()) return std::nullopt;
  if (s.count == 0 || s.index >= s.count) return std::nullopt;
  return s;
}

bool in_shard(std::string_view url, const Shard& shard) {
  if (shard.count <= 1) return true;
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : url) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h % shard.count == shard.index;
}

}  // namespace uvget::cli
