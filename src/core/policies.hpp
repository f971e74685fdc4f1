// The rules a download follows when something goes wrong or points elsewhere, as functions of
// their inputs: which failures are retried, how long to wait, where a redirect leads and what
// it may carry there. Transfer applies them; tests/unit/policies_test.cpp checks them alone.
#pragma once

#include <cstdint>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/options.hpp>

#include "url.hpp"

namespace uvget {

/// Failures that may pass on another try: DNS failing for now, connects, timeouts, bodies cut
/// short or too slow, and HTTP 408, 429 and 5xx (`status`, for Errc::http_status).
bool retryable(const Error& e, int status);

/// The longest wait before retry `attempt` (1 for the first): min(base * 2^(attempt-1), cap).
std::uint64_t backoff_ceiling(int attempt, std::uint64_t base_ms, std::uint64_t cap_ms);
/// Full jitter: a uniform random wait in [0, backoff_ceiling(...)].
std::uint64_t backoff_ms(int attempt, std::uint64_t base_ms, std::uint64_t cap_ms);

/// Where a redirect from `from` with this Location leads: Errc::bad_redirect when it cannot be
/// resolved, or when it goes from https to plain http without `allow_https_downgrade`.
Result<Url> redirect_target(const Url& from, std::string_view location, bool allow_https_downgrade);

/// Credentials (Authorization, Cookie, Proxy-Authorization) are for the origin they were given
/// for: dropped from `headers` when a redirect leaves it.
void drop_credentials_leaving(const Url& from, const Url& to, HeaderList& headers);

}  // namespace uvget
