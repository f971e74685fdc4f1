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
#include <span>
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

/// The bytes of one streamed body between the reader and the disk, as both file sinks hold
/// them: those waiting for the next write, and the write in flight (continued where a short
/// write stopped). Reading pauses once both together reach the hold limit, and may go on once a
/// write completes with fewer than resume_below() waiting. The buffers come from, and go back
/// to, the thread's pool.
class StreamBuffer {
 public:
  StreamBuffer(std::size_t high_water, std::size_t low_water)
      : high_water_(high_water), low_water_(low_water) {}
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  ~StreamBuffer() {
    // Given back on the thread that destroys it (an embedder may destroy a sink elsewhere).
    body_buffers::give(waiting_);
    body_buffers::give(writing_);
  }

  /// Counts among the thread's streaming bodies from now on (a body past the small-file size,
  /// or any segment), for its share of the budget.
  void join_budget() { holding_.join(); }
  bool joined() const noexcept { return holding_.joined(); }

  /// Appends `data`; false when the reader should pause (until it resumes: see end_write).
  bool add(std::span<const std::byte> data) {
    body_buffers::grow(waiting_, data.size(), hold_limit());
    waiting_.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (held() >= hold_limit()) paused_ = true;
    return !paused_;
  }
  /// Bytes it takes now before the reader should pause.
  std::size_t room() const {
    std::size_t limit = hold_limit();
    return held() < limit ? limit - held() : 0;
  }
  std::size_t hold_limit() const { return body_buffers::hold_limit(high_water_); }
  std::size_t resume_below() const { return body_buffers::resume_below(high_water_, low_water_); }
  bool paused() const noexcept { return paused_; }
  std::size_t held() const noexcept { return waiting_.size() + writing_.size(); }

  /// The bytes not yet in a write (a small body's whole, for a single job).
  const std::string& waiting() const noexcept { return waiting_; }
  bool has_waiting() const noexcept { return !waiting_.empty(); }
  void drop_waiting() noexcept { waiting_.clear(); }

  /// The waiting bytes become the write in flight.
  void begin_write() {
    writing_.swap(waiting_);
    waiting_.clear();
    written_ = 0;
  }
  /// What the write in flight has yet to put down; stable until wrote() or end_write().
  char* unwritten_data() noexcept { return writing_.data() + written_; }
  std::size_t unwritten_size() const noexcept { return writing_.size() - written_; }
  /// `n` bytes of the write in flight are down; true when it is all down.
  bool wrote(std::size_t n) noexcept {
    written_ += n;
    return written_ >= writing_.size();
  }
  /// The write in flight is over (all down, or given up). true when the reader was paused and
  /// may go on now: the sink says so (Sink::Events::drained).
  bool end_write() {
    writing_.clear();
    written_ = 0;
    if (paused_ && waiting_.size() < resume_below()) {
      paused_ = false;
      return true;
    }
    return false;
  }
  /// Drops every byte, and the pause with them.
  void clear() noexcept {
    waiting_.clear();
    writing_.clear();
    written_ = 0;
    paused_ = false;
  }

 private:
  const std::size_t high_water_, low_water_;
  std::string waiting_;      // not yet handed to a write
  std::string writing_;      // the write in flight
  std::size_t written_ = 0;  // of writing_, already down
  bool paused_ = false;      // add() returned false; end_write() has not said go on since
  body_buffers::Holder holding_;
};

/// Bytes the calling thread's pool keeps for the next streamed body.
std::size_t pooled_body_bytes();
/// Frees them. A client calls it on its loop's thread once it has closed, so a host that
/// downloaded once keeps no buffers for the rest of its life.
void release_body_buffers();

}  // namespace uvget
