// Planning a segmented download (which byte ranges to fetch), the bookkeeping of done ranges,
// and the validator a resume sends.
#include <algorithm>

#include "sink/split_file.hpp"

namespace uvget {

std::string validator_of(const Response& head) {
  if (auto etag = head.header("ETag"); etag && !etag->empty() && !etag->starts_with("W/"))
    return std::string(*etag);
  if (auto lm = head.header("Last-Modified"); lm && !lm->empty()) return std::string(*lm);
  return {};
}

void add_range(std::vector<ByteRange>& ranges, ByteRange r) {
  if (r.from >= r.to) return;
  auto it = std::lower_bound(ranges.begin(), ranges.end(), r,
                             [](const ByteRange& a, const ByteRange& b) { return a.to < b.from; });
  // it: the first range that ends at or after r.from, i.e. the first that may touch r.
  while (it != ranges.end() && it->from <= r.to) {
    r.from = std::min(r.from, it->from);
    r.to = std::max(r.to, it->to);
    it = ranges.erase(it);
  }
  ranges.insert(it, r);
}

std::vector<ByteRange> plan_segments(std::uint64_t total, const std::vector<ByteRange>& done,
                                     std::uint64_t stream_from, int n, std::uint64_t min_piece) {
  std::vector<ByteRange> tasks;
  std::uint64_t at = 0;
  for (const ByteRange& d : done) {
    if (d.from > at) tasks.push_back({at, std::min(d.from, total)});
    at = std::max(at, d.to);
  }
  if (at < total) tasks.push_back({at, total});
  min_piece = std::max<std::uint64_t>(min_piece, 1);
  while (tasks.size() < static_cast<std::size_t>(std::max(n, 1))) {
    auto big = std::max_element(tasks.begin(), tasks.end(),
                                [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (big == tasks.end() || big->size() < 2 * min_piece) break;
    std::uint64_t mid = big->from + big->size() / 2;
    if (std::uint64_t aligned = mid - mid % 4096; aligned > big->from) mid = aligned;  // a page
    ByteRange second{mid, big->to};
    big->to = mid;
    tasks.insert(big + 1, second);
  }
  auto first = std::find_if(tasks.begin(), tasks.end(),
                            [&](const ByteRange& t) { return t.from == stream_from; });
  if (first != tasks.end()) std::rotate(tasks.begin(), first, first + 1);
  return tasks;
}

}  // namespace uvget
