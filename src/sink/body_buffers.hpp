// The body buffers of streamed files, one pool and one budget per thread (the loop's).
//
// A streamed body's sink holds two buffers (the bytes waiting and the write in flight). When the
// sink ends they go back to the thread's pool, and the next file's sink takes them, reserved
// once at a size that holds a whole high-water mark: a fresh allocation of a few hundred KiB is
// an mmap whose every page faults in at first touch, and growing by doubling copies. The pool
// keeps at most kPoolBytes; small bodies (whole-file jobs) never touch it.
//
// The same thread-wide view bounds memory: while many streamed bodies hold buffers at once, each
// may hold an even share of kBudget before its reading pauses (never less than kMinHold, never
// more than its high-water mark).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace uvget {

/// Bodies up to this size are buffered and written by one threadpool job (open, write, close,
/// rename) instead of four round trips: the common case for many small files.
constexpr std::size_t kSmallFile = 64 * 1024;

namespace body_buffers {

constexpr std::size_t kPoolBytes = 8 << 20;
constexpr std::size_t kBudget = 32 << 20;
constexpr std::size_t kMinHold = 64 << 10;

struct Pool {
  std::vector<std::string> free;
  std::size_t bytes = 0;
  std::size_t holders = 0;  // file sinks of this thread streaming a body through buffers
  ~Pool();
};

/// The calling thread's pool, or null once the thread is exiting.
Pool* here();
/// Before `adding` bytes go into a streamed body's buffer s: past the small-file size and its
/// capacity, s gets room for `limit` held bytes and a quarter more (a read that crosses it),
/// keeping what it holds, in a pooled buffer when one is large enough.
void grow(std::string& s, std::size_t adding, std::size_t limit);
/// s's buffer goes back to the pool (when large, and the pool has room); s is left empty.
void give(std::string& s);

/// What a streamed body with this high-water mark may hold (waiting and being written) before
/// its reading pauses: the mark, or an even share of kBudget among the calling thread's
/// holders when that is less, never under min(kMinHold, high_water).
std::size_t hold_limit(std::size_t high_water);
/// Where reading starts again after a pause: under min(low_water, half the hold limit).
std::size_t resume_below(std::size_t high_water, std::size_t low_water);

/// A streaming sink's share of its thread's budget: join() on the thread that writes (once the
/// body streams), and it counts among the holders until destroyed.
class Holder {
 public:
  Holder() = default;
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;
  ~Holder() {
    if (pool_ && pool_ == here()) --pool_->holders;  // else counted on a thread long gone
  }
  void join() {
    if (!pool_ && (pool_ = here())) ++pool_->holders;
  }
  bool joined() const noexcept { return pool_ != nullptr; }

 private:
  Pool* pool_ = nullptr;
};

}  // namespace body_buffers

/// Bytes the calling thread's pool keeps for the next streamed body.
std::size_t pooled_body_bytes();
/// Frees them. A client calls it on its loop's thread once it has closed, so a host that
/// downloaded once keeps no buffers for the rest of its life.
void release_body_buffers();

}  // namespace uvget
