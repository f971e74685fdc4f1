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
  std::vector<ByteRange> gaps;
  std::uint64_t at = 0;
  for (const ByteRange& d : done) {
    if (d.from > at) gaps.push_back({at, std::min(d.from, total)});
    at = std::max(at, d.to);
  }
  if (at < total) gaps.push_back({at, total});
  min_piece = std::max<std::uint64_t>(min_piece, 1);
  // Pieces are handed out one at a time to the gap whose pieces would be largest, so that n
  // pieces come out as even as the gaps allow (three connections get thirds, not a half and two
  // quarters), none under min_piece (nor a page under it, after the cuts are aligned).
  std::vector<std::uint64_t> pieces(gaps.size(), 1);
  std::size_t count = gaps.size();
  while (count < static_cast<std::size_t>(std::max(n, 1))) {
    std::size_t best = gaps.size();
    for (std::size_t i = 0; i < gaps.size(); ++i) {
      if (gaps[i].size() / (pieces[i] + 1) < min_piece + 4096) continue;
      if (best == gaps.size() ||
          gaps[i].size() * pieces[best] > gaps[best].size() * pieces[i])  // size/pieces larger
        best = i;
    }
    if (best == gaps.size()) break;
    ++pieces[best];
    ++count;
  }
  std::vector<ByteRange> tasks;
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    std::uint64_t from = gaps[i].from;
    for (std::uint64_t k = 1; k <= pieces[i]; ++k) {
      std::uint64_t to =
          k == pieces[i] ? gaps[i].to : gaps[i].from + gaps[i].size() / pieces[i] * k;
      if (std::uint64_t aligned = to - to % 4096; k < pieces[i] && aligned > from) to = aligned;
      tasks.push_back({from, to});
      from = to;
    }
  }
  auto first = std::find_if(tasks.begin(), tasks.end(),
                            [&](const ByteRange& t) { return t.from == stream_from; });
  if (first != tasks.end()) std::rotate(tasks.begin(), first, first + 1);
  return tasks;
}

}  // namespace uvget
