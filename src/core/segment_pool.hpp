// SegmentPool: other loops that can run a split download's segment requests (the Runner's
// workers), so that one large file uses more than one core. The transfer that owns the file
// stays on its loop; only segment requests travel, and their results come back to it.
#pragma once

#include <cstdint>
#include <functional>

#include <uvget/request.hpp>

namespace uvget {

class SegmentPool {
 public:
  virtual ~SegmentPool() = default;
  /// Runs `request` on one of the loops (maybe this one); `on_done` is called later on this
  /// loop, never inside run(). Returns a token for cancel(), or 0 when no loop can take it now
  /// (then `on_done` is never called).
  virtual std::uint64_t run(Request request, std::function<void(TransferResult)> on_done) = 0;
  /// Cancels a request run() started; its on_done still comes.
  virtual void cancel(std::uint64_t token) = 0;
};

}  // namespace uvget
