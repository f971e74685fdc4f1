// Parsers for the response header values the transfer policies act on. Pure functions: each is
// unit-tested on its own (tests/unit/headers_test.cpp).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace uvget {

/// Retry-After (RFC 9110 10.2.3): delay-seconds, or an HTTP date turned into ms after `now`
/// (0 when it is past). A delay too large to count is capped at 999,999,999 s. nullopt when
/// the value is neither.
std::optional<std::uint64_t> parse_retry_after(std::string_view value, std::time_t now);

/// Content-Range (RFC 9110 14.4): "bytes FIRST-LAST/LENGTH", "bytes FIRST-LAST/*" or
/// "bytes */LENGTH" (with 416). Absent numbers are nullopt; nullopt as a whole when the value
/// is malformed, or LAST is before FIRST or past LENGTH.
struct ContentRange {
  std::optional<std::uint64_t> first, last, length;
};
std::optional<ContentRange> parse_content_range(std::string_view value);

/// The statuses that redirect (301, 302, 303, 307, 308).
constexpr bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace uvget
