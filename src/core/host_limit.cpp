// Additive increase, multiplicative decrease of one origin's connection limit.
#include "core/host_limit.hpp"

#include <algorithm>
#include <bit>

namespace uvget {

bool HostLimit::answered(Answer a, std::uint64_t ticket, int open, std::uint64_t now_ms) {
  const int before = limit_;
  if (a == Answer::refused_or_reset) {
    if (++failures_in_row_ < 2) return false;
    failures_in_row_ = 0;
  } else {
    failures_in_row_ = 0;
    remember(a != Answer::ok);
  }
  if (a != Answer::ok) last_overload_ms_ = now_ms;
  if (a == Answer::ok) {
    if (limit_ < cap(now_ms)) ++limit_;
    if (ceiling_ > 0 && now_ms >= ceiling_until_) ceiling_ = 0;
    return limit_ != before;
  }
  // More open than the limit: the connections above it are still closing, and the server
  // answered what it saw before. The decrease that caused that already counts.
  if (open > limit_) return false;
  if (a == Answer::too_many) ceiling_until_ = now_ms + kCeilingMs;  // it still says so
  // Answers to requests sent before the last decrease were already accounted for.
  if (ticket < decreased_at_) return false;
  if (a == Answer::too_many) {
    // Fewer than were open when the server said too many, for as long as it keeps saying so.
    int below = std::max(1, open - 1);
    ceiling_ = ceiling_ > 0 && now_ms < ceiling_until_ ? std::min(ceiling_, below) : below;
    limit_ = std::min(limit_, ceiling_);
  }
  limit_ = std::max(1, std::min(limit_, before / 2));
  decreased_at_ = next_ticket_;
  return limit_ != before;
}

void HostLimit::remember(bool overload) noexcept {
  recent_ = ((recent_ << 1) | (overload ? 1u : 0u)) & ((1u << kWindow) - 1);
  if (recent_count_ < kWindow) ++recent_count_;
}

bool HostLimit::mostly_overloaded() const noexcept {
  return recent_count_ >= kWindowMin && 2 * std::popcount(recent_) > recent_count_;
}

}  // namespace uvget
