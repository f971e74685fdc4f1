#include "net/read_budget.hpp"

#include <algorithm>

#include "net/tcp_stream.hpp"

namespace uvget {
namespace {

constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::size_t kPlainBuffer = 64 * 1024;  // mbedtls_ssl_read gives one record at most

}  // namespace

ReadBudget::ReadBudget(std::uint64_t slice_us, std::uint64_t rate, std::function<void()> wake,
                       std::function<void()> watch)
    : read_buf_(kReadBuffer),
      plain_buf_(kPlainBuffer),
      slice_ns_(slice_us * 1000),
      rate_(rate),
      refilled_ns_(uv_hrtime()),
      wake_(std::move(wake)),
      watch_(std::move(watch)) {}

std::int64_t ReadBudget::min_read() const {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(4096, std::max<std::uint64_t>(rate_ / 20, 1)));
}

// Token bucket: refilled at rate_ bytes/s, holding at most a quarter second's worth (at least
// 16 KiB), so the rate stays even rather than bursting after a pause.
std::size_t ReadBudget::allowance() {
  if (!rate_) return SIZE_MAX;
  std::uint64_t now = uv_hrtime();
  auto cap = static_cast<std::int64_t>(std::max<std::uint64_t>(rate_ / 4, 16 * 1024));
  std::uint64_t gained = (now - refilled_ns_) * rate_ / 1'000'000'000;
  if (gained > 0) {
    tokens_ = std::min<std::int64_t>(tokens_ + static_cast<std::int64_t>(gained), cap);
    refilled_ns_ = now;
  }
  // Reads of a few bytes would cost a syscall each: wait for a useful amount.
  return tokens_ >= min_read() ? static_cast<std::size_t>(tokens_) : 0;
}

std::uint64_t ReadBudget::ms_until_tokens() {
  if (!rate_ || allowance() > 0) return 0;
  auto want = static_cast<std::uint64_t>(min_read() - tokens_);
  return std::max<std::uint64_t>(1, want * 1000 / rate_);
}

void ReadBudget::defer(TcpStream& s) {
  deferred_.push_back(&s);
  wake_();
}

// On the idle phase of the next pass (right after the host's timers): reading restarts, and
// the reads happen in that pass's poll phase under a fresh slice.
bool ReadBudget::resume_deferred() {
  if (deferred_.empty()) return true;
  if (rate_ && allowance() == 0) return false;
  while (!deferred_.empty()) {
    TcpStream* s = deferred_.front();
    deferred_.pop_front();
    s->resume_deferred();  // a stream that closed was forgotten
  }
  return true;
}

void ReadBudget::watch(TcpStream& s) {
  lowat_.push_back(&s);
  if (lowat_.size() == 1) watch_();
}

bool ReadBudget::relax_quiet(std::uint64_t now) {
  std::erase_if(lowat_, [now](TcpStream* s) {
    if (now - s->last_read_ms() < kQuietMs) return false;
    s->relax();
    return true;
  });
  return lowat_.empty();
}

void ReadBudget::forget(TcpStream& s) {
  if (!deferred_.empty()) std::erase(deferred_, &s);
  if (!lowat_.empty()) std::erase(lowat_, &s);
}

}  // namespace uvget
