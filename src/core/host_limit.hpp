// HostLimit: how many connections one origin may have now, learned from its answers. No I/O and
// no clock of its own (times are passed in), so tests/unit/host_limit_test.cpp drives it alone.
//
// The rule is additive increase, multiplicative decrease, as TCP does with its window:
// - An overload answer (429 Too Many Requests, 503 Service Unavailable) halves the limit, down
//   to 1. Only one decrease per round: answers to requests sent before the last decrease were
//   already accounted for, so a burst of 429s to requests that were all in flight together
//   halves once, not once each.
// - A 429 also says how many connections were too many: the limit stays below the number open
//   when it came (the ceiling) until `ceiling_ms` pass without another 429. A 503 sets no
//   ceiling: a CDN that fails one object has not said anything about concurrency.
// - An overload answer while more connections are open than the limit changes nothing: those
//   above it are still closing, and the server answered what it saw before the decrease.
// - Two refused or reset connections in a row count as one overload answer.
// - Every other answer raises the limit by one, up to the ceiling, else up to the maximum
//   (--per-host). Connections are never closed in the middle of a body to obey a lower limit:
//   the scheduler starts no request above it, and while a 429's ceiling holds it also closes
//   idle connections above it (see counts_connections).
// - The host is held whole (no new request at all) only when most of its recent answers were
//   overload answers: one stray 503 delays only its own URL.
#pragma once

#include <cstdint>

namespace uvget {

class HostLimit {
 public:
  /// A 429 keeps its ceiling this long after the last one.
  static constexpr std::uint64_t kCeilingMs = 60'000;
  /// How many recent answers the hold decision looks at, and how many it needs at least.
  static constexpr int kWindow = 8;
  static constexpr int kWindowMin = 4;

  enum class Answer {
    ok,               // any answer but the two below (a 404 or a 500 is not an overload)
    too_many,         // 429
    unavailable,      // 503
    refused_or_reset  // the connection was refused, or reset before any answer
  };

  explicit HostLimit(int max) : max_(max < 1 ? 1 : max), limit_(max_) {}

  int limit() const noexcept { return limit_; }
  int max() const noexcept { return max_; }
  /// Something is worth remembering: the limit is below the maximum or a ceiling is kept, and
  /// the last overload is less than kCeilingMs old (a host quiet that long may start afresh;
  /// so the scheduler forgets idle origins and its memory stays bounded by the busy ones).
  bool adapted(std::uint64_t now_ms) const noexcept {
    return (limit_ < max_ || (ceiling_ > 0 && now_ms < ceiling_until_)) &&
           now_ms < last_overload_ms_ + kCeilingMs;
  }

  /// A 429's ceiling holds: the server counts connections, so the limit bounds the open ones
  /// (idle ones above it are closed). Otherwise it bounds the busy ones, and idle connections
  /// above it wait parked for the limit to rise again instead of being closed and reopened.
  bool counts_connections(std::uint64_t now_ms) const noexcept {
    return ceiling_ > 0 && now_ms < ceiling_until_;
  }

  /// A request leaves: the ticket to give back with its answer.
  std::uint64_t sent() noexcept { return next_ticket_++; }

  /// The answer to the request of `ticket`; `open`: connections open to the origin as it came.
  /// Returns true when the limit changed.
  bool answered(Answer a, std::uint64_t ticket, int open, std::uint64_t now_ms);

  /// Most of the recent answers (at least kWindowMin of the last kWindow) were overloads:
  /// the whole host should rest.
  bool mostly_overloaded() const noexcept;

 private:
  int cap(std::uint64_t now_ms) const noexcept {
    return ceiling_ > 0 && now_ms < ceiling_until_ ? ceiling_ : max_;
  }
  void remember(bool overload) noexcept;

  const int max_;
  int limit_;
  int ceiling_ = 0;  // 0: none
  std::uint64_t ceiling_until_ = 0;
  std::uint64_t next_ticket_ = 1;
  std::uint64_t decreased_at_ = 0;  // the first ticket sent after the last decrease
  int failures_in_row_ = 0;         // refused or reset connections
  std::uint64_t last_overload_ms_ = 0;
  std::uint32_t recent_ = 0;  // the last kWindow answers, newest in bit 0: 1 = overload
  int recent_count_ = 0;
};

}  // namespace uvget
