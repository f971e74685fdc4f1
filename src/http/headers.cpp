#include "http/headers.hpp"

#include "http/request_writer.hpp"
#include "text.hpp"

namespace uvget {

std::optional<std::uint64_t> parse_retry_after(std::string_view v, std::time_t now) {
  v = trim(v);
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string_view::npos)
    return v.size() > 9 ? std::uint64_t{999'999'999} * 1000 : *parse_u64(v) * 1000;
  auto at = parse_http_date(v);
  if (!at) return std::nullopt;
  return *at > now ? static_cast<std::uint64_t>(*at - now) * 1000 : 0;
}

std::optional<ContentRange> parse_content_range(std::string_view v) {
  v = trim(v);
  if (v.size() < 6 || !iequals(v.substr(0, 6), "bytes ")) return std::nullopt;
  v.remove_prefix(6);
  auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view range = v.substr(0, slash), length = v.substr(slash + 1);
  ContentRange cr;
  if (length != "*" && !(cr.length = parse_u64(length))) return std::nullopt;
  if (range == "*") return cr.length ? std::optional(cr) : std::nullopt;
  auto dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  cr.first = parse_u64(range.substr(0, dash));
  cr.last = parse_u64(range.substr(dash + 1));
  if (!cr.first || !cr.last || *cr.last < *cr.first) return std::nullopt;
  if (cr.length && *cr.last >= *cr.length) return std::nullopt;
  return cr;
}

}  // namespace uvget
