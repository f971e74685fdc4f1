// plan_segments and add_range: which byte ranges a segmented download fetches.
#include <gtest/gtest.h>

#include <algorithm>

#include "sink/split_file.hpp"

namespace uvget {
namespace {

constexpr std::uint64_t MiB = 1 << 20;

std::uint64_t covered(const std::vector<ByteRange>& v) {
  std::uint64_t n = 0;
  for (auto& r : v) n += r.size();
  return n;
}

TEST(SplitPlan, AFreshFileIsCutIntoNPiecesThatCoverItExactly) {
  auto t = plan_segments(100 * MiB, {}, 0, 4, MiB);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].from, 0u);
  EXPECT_EQ(covered(t), 100 * MiB);
  std::vector<ByteRange> all;
  for (auto& r : t) add_range(all, r);
  ASSERT_EQ(all.size(), 1u) << "no gap, no overlap";
  EXPECT_EQ(all[0], (ByteRange{0, 100 * MiB}));
  for (auto& r : t) EXPECT_EQ(r.from % 4096, 0u) << "cut on page boundaries";
}

TEST(SplitPlan, PiecesNeverGoUnderTheMinimum) {
  auto t = plan_segments(3 * MiB, {}, 0, 8, MiB);
  EXPECT_EQ(t.size(), 2u);
  for (auto& r : t) EXPECT_GE(r.size(), MiB);
  EXPECT_EQ(plan_segments(MiB, {}, 0, 8, MiB).size(), 1u);
  for (std::uint64_t size : {5 * MiB + 123, 17 * MiB - 1, 64 * MiB}) {
    for (int n = 1; n <= 9; ++n) {
      auto p = plan_segments(size, {}, 0, n, MiB);
      EXPECT_EQ(covered(p), size);
      for (auto& r : p) EXPECT_GE(r.size(), MiB) << size << " in " << n;
    }
  }
}

// Any n gives pieces as even as page alignment allows: three connections get thirds.
TEST(SplitPlan, PiecesAreEvenForAnyN) {
  for (int n : {3, 5, 6, 7}) {
    auto t = plan_segments(24 * MiB, {}, 0, n, MiB);
    ASSERT_EQ(t.size(), static_cast<std::size_t>(n));
    auto [lo, hi] = std::minmax_element(t.begin(), t.end(),
                                        [](auto& a, auto& b) { return a.size() < b.size(); });
    EXPECT_LE(hi->size() - lo->size(), 4096u * 2) << n << " pieces";
  }
  // Gaps share the pieces by size: a gap twice as large gets twice as many.
  std::vector<ByteRange> done = {{10 * MiB, 20 * MiB}};
  auto t = plan_segments(40 * MiB, done, 0, 6, MiB);  // gaps of 10 and 20 MiB
  ASSERT_EQ(t.size(), 6u);
  std::size_t in_first = 0;
  for (auto& r : t) in_first += r.to <= 10 * MiB;
  EXPECT_EQ(in_first, 2u);
}

TEST(SplitPlan, OnlyTheGapsAreFetchedAndTheStreamsGapComesFirst) {
  std::vector<ByteRange> done = {{0, 10 * MiB}, {20 * MiB, 30 * MiB}};
  auto t = plan_segments(40 * MiB, done, 10 * MiB, 2, MiB);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (ByteRange{10 * MiB, 20 * MiB}));
  EXPECT_EQ(t[1], (ByteRange{30 * MiB, 40 * MiB}));
  EXPECT_TRUE(plan_segments(40 * MiB, {{0, 40 * MiB}}, 40 * MiB, 4, MiB).empty());
}

TEST(SplitPlan, AddRangeMergesTouchingAndOverlappingRanges) {
  std::vector<ByteRange> v;
  add_range(v, {10, 20});
  add_range(v, {30, 40});
  add_range(v, {0, 5});
  EXPECT_EQ(v.size(), 3u);
  add_range(v, {20, 30});  // touches both neighbours
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1], (ByteRange{10, 40}));
  add_range(v, {3, 12});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], (ByteRange{0, 40}));
  add_range(v, {7, 7});  // empty: ignored
  EXPECT_EQ(v.size(), 1u);
}

}  // namespace
}  // namespace uvget
