#include "core/policies.hpp"

#include <algorithm>
#include <random>

#include "http/request_writer.hpp"

namespace uvget {

bool retryable(const Error& e, int status) {
  if (e.code == Errc::http_status) return status == 408 || status == 429 || status >= 500;
  return e.code == Errc::dns_temporary || e.code == Errc::connect ||
         e.code == Errc::connect_timeout || e.code == Errc::idle_timeout ||
         e.code == Errc::connection_closed || e.code == Errc::connection_reset ||
         e.code == Errc::size_mismatch || e.code == Errc::too_slow;
}

std::uint64_t backoff_ceiling(int attempt, std::uint64_t base, std::uint64_t cap) {
  std::uint64_t ceiling = base;
  for (int i = 1; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  return std::min(ceiling, cap);
}

std::uint64_t backoff_ms(int attempt, std::uint64_t base, std::uint64_t cap) {
  std::uint64_t ceiling = backoff_ceiling(attempt, base, cap);
  static thread_local std::minstd_rand rng(std::random_device{}());
  return ceiling ? std::uniform_int_distribution<std::uint64_t>(0, ceiling)(rng) : 0;
}

Result<Url> redirect_target(const Url& from, std::string_view location,
                            bool allow_https_downgrade) {
  auto next = from.resolve(location);
  if (!next) return Error(Errc::bad_redirect, "cannot follow Location: " + next.error().message());
  if (from.is_https() && !next->is_https() && !allow_https_downgrade)
    return Error(Errc::bad_redirect,
                 "refusing to follow a redirect from https to plain http (" + next->str() + ")");
  return next;
}

void drop_credentials_leaving(const Url& from, const Url& to, HeaderList& headers) {
  if (to.origin() == from.origin()) return;
  std::erase_if(headers, [](auto& h) {
    return iequals(h.first, "Authorization") || iequals(h.first, "Cookie") ||
           iequals(h.first, "Proxy-Authorization");
  });
}

}  // namespace uvget
