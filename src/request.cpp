// Response helpers: header look-up and Content-Length.
#include <charconv>

#include <uvget/request.hpp>

#include "http/request_writer.hpp"

namespace uvget {

std::optional<std::string_view> Response::header(std::string_view name) const {
  for (auto& [n, v] : headers)
    if (iequals(n, name)) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::uint64_t> Response::content_length() const {
  auto v = header("Content-Length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return n;
}

}  // namespace uvget
