// ReadBudget: how much a loop's connections may read, and when. Three rules, all optional:
// reads in one pass of the loop stop after a time slice (so the host's timers and handles get
// their turn), a token bucket keeps to --limit-rate, and sockets that asked the kernel to wake
// them only for large amounts (SO_RCVLOWAT) go back to every byte once they are quiet. It also
// owns the one read buffer and the one plaintext buffer that every connection of the loop
// shares: a read is consumed before the next one starts. No handles of its own: the client
// runs it from its loop phases (new_pass, resume_deferred, relax_quiet).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace uvget {

class TcpStream;

class ReadBudget {
 public:
  /// A stream with SO_RCVLOWAT raised that read nothing this long (the server slowed down or
  /// stalled short of the mark) goes back to waking for every byte: relax_quiet() runs this often.
  static constexpr std::uint64_t kQuietMs = 20;

  /// `wake`: call resume_deferred() on the next pass (the client's idle handle). `watch`:
  /// call relax_quiet() now and then until it returns true (the client's quiet timer).
  ReadBudget(std::uint64_t slice_us, std::uint64_t rate_bytes_per_s, std::function<void()> wake,
             std::function<void()> watch);

  uv_buf_t read_buffer() { return uv_buf_init(read_buf_.data(), unsigned(read_buf_.size())); }
  uv_buf_t plain_buffer() { return uv_buf_init(plain_buf_.data(), unsigned(plain_buf_.size())); }

  // The slice.
  bool slicing() const noexcept { return slice_ns_ > 0; }
  bool spent() const noexcept { return slice_ns_ > 0 && pass_ns_ >= slice_ns_; }
  void charge_time(std::uint64_t ns) noexcept { pass_ns_ += ns; }
  void new_pass() noexcept { pass_ns_ = 0; }

  // The rate: bytes a read may take now (SIZE_MAX without a limit; 0: wait), and what it took.
  std::size_t allowance();
  void charge(std::size_t n) noexcept {
    if (rate_) tokens_ -= static_cast<std::int64_t>(n);
  }
  /// Deferred reads wait for tokens: ms until a useful amount is back (0: now, or no limit).
  std::uint64_t ms_until_tokens();

  // Reads that stopped for the next pass (slice spent, or no tokens).
  void defer(TcpStream& s);
  bool has_deferred() const noexcept { return !deferred_.empty(); }
  /// Restarts them, unless tokens are still short (then false: wait ms_until_tokens()).
  bool resume_deferred();

  // Streams with SO_RCVLOWAT raised: relaxed once quiet for a while.
  void watch(TcpStream& s);
  /// true: no stream is watched any more.
  bool relax_quiet(std::uint64_t now_ms);

  /// `s` is closing: forget it.
  void forget(TcpStream& s);

  // Read callbacks running now (nested ones count): output made during them waits for their end.
  void began() noexcept { ++reads_; }
  void ended() noexcept { --reads_; }
  bool reading() const noexcept { return reads_ > 0; }

 private:
  std::int64_t min_read() const;  // the smallest read worth making under the rate limit

  std::vector<char> read_buf_, plain_buf_;
  std::uint64_t slice_ns_;
  std::uint64_t pass_ns_ = 0;
  std::uint64_t rate_;
  std::int64_t tokens_ = 0;  // bytes that may be read now (negative: owed)
  std::uint64_t refilled_ns_;
  std::function<void()> wake_, watch_;
  std::deque<TcpStream*> deferred_;
  std::vector<TcpStream*> lowat_;
  int reads_ = 0;
};

}  // namespace uvget
