// Small text helpers for the protocol and file formats: trimming and plain decimal numbers.
#pragma once

#include <time.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace uvget {

/// `s` without the `blanks` at either end.
inline std::string_view trim(std::string_view s, std::string_view blanks = " \t") {
  auto first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(blanks) - first + 1);
}

/// ASCII case-insensitive equality (header names, robots.txt keys, charsets).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// A non-empty run of decimal digits that fits in 64 bits (at most 19 digits); else nullopt.
inline std::optional<std::uint64_t> parse_u64(std::string_view v) {
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint64_t n = 0;
  for (char c : v) n = n * 10 + static_cast<std::uint64_t>(c - '0');
  return n;
}

/// An HTTP date (RFC 9110 5.6.7) as a time: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), and
/// the two obsolete forms a recipient must still read, rfc850-date ("Sunday, 06-Nov-94
/// 08:49:37 GMT") and asctime-date ("Sun Nov  6 08:49:37 1994").
inline std::optional<std::time_t> parse_http_date(std::string_view v) {
  std::string text(trim(v));
  for (const char* form :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), form, &tm);
    if (end && !*end) return timegm(&tm);
  }
  return std::nullopt;
}

}  // namespace uvget
