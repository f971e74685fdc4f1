// SplitFile: what a segmented download needs from its sink beyond Sink: one preallocated file
// written at offsets by several streams, and a record of the ranges already on disk. The file
// sink implements it; a transfer splits only when its sink does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <uvget/request.hpp>

namespace uvget {

struct ByteRange {
  std::uint64_t from = 0, to = 0;  // [from, to)
  std::uint64_t size() const noexcept { return to - from; }
  bool operator==(const ByteRange&) const = default;
};

/// Shared by a segment's sink and the download it belongs to, which may move `end` down while
/// the segment runs (handing the rest to another connection): the sink takes bytes only up to
/// `end` and counts them in `accepted`, both under `mutex` (a segment may run on another
/// loop), so the download never cuts below what the sink took and the sink never takes past
/// a cut.
struct SegmentCut {
  explicit SegmentCut(std::uint64_t to) : end(to) {}
  std::mutex mutex;
  std::uint64_t end;           // absolute offset, exclusive
  std::uint64_t accepted = 0;  // bytes taken, from the segment's start
};

class SplitFile {
 public:
  /// Ranges complete on disk from an earlier run (sorted, disjoint, merged); empty when fresh.
  virtual std::vector<ByteRange> done_ranges() const = 0;
  /// Instead of open()/open_continued(): the body (`total` bytes) is fetched in segments. Opens
  /// the .part at its full size; keeps the done ranges when `continuing`, else starts empty.
  virtual Error open_split(uv_loop_s* loop, const Response& head, std::uint64_t total,
                           bool continuing, Sink::Events events) = 0;
  /// A sink for the bytes of `r`, written at their offsets into the same file, its written part
  /// recorded as done when it finishes or is aborted. With `check_range`, its open() accepts only
  /// a 206 whose Content-Range is exactly `r` of the same total. Must not outlive this sink, and
  /// every segment ends (finish or abort done) before finish() or abort() of this sink.
  /// `cut`: where the download may cut the segment short (null: never); once the sink reaches a
  /// cut it fails with Errc::cancelled after its bytes are on disk.
  virtual std::unique_ptr<Sink> segment(ByteRange r, bool check_range,
                                        std::shared_ptr<SegmentCut> cut) = 0;
  /// A segment for another loop: it opens the .part by name (call once when_open() said it
  /// exists), checks its range, closes the file before it reports, and leaves the count of bytes
  /// it wrote in `written` for record_range() on this sink's loop.
  virtual std::unique_ptr<Sink> remote_segment(ByteRange r,
                                               std::shared_ptr<std::atomic<std::uint64_t>> written,
                                               std::shared_ptr<SegmentCut> cut) = 0;
  /// `cb` once the .part is open at its full size (now, if it is).
  virtual void when_open(std::function<void()> cb) = 0;
  /// Records bytes a remote segment wrote (for the sidecar).
  virtual void record_range(ByteRange r) = 0;
  /// The done ranges cover the whole file.
  virtual bool covers_all() const = 0;
  /// The bytes held() counts are in the file, not only in memory (a split needs them there).
  virtual bool held_on_disk() const = 0;

 protected:
  ~SplitFile() = default;
};

/// Segments for the parts of [0, total) not in `done`: at least `n` when the gaps allow pieces of
/// `min_piece` bytes or more (largest gap halved first), sorted by offset. The task starting at
/// `stream_from` (the first gap, which the response already streaming covers) comes first.
std::vector<ByteRange> plan_segments(std::uint64_t total, const std::vector<ByteRange>& done,
                                     std::uint64_t stream_from, int n, std::uint64_t min_piece);

/// The validator a resume sends in If-Range: the strong ETag, else Last-Modified; "" if none.
std::string validator_of(const Response& head);

/// Inserts `r` into sorted, disjoint `ranges`, merging what touches or overlaps.
void add_range(std::vector<ByteRange>& ranges, ByteRange r);

}  // namespace uvget
