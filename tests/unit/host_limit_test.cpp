// Unit tests for uvget::HostLimit: a host's connection limit as its answers move it, with the
// time passed in.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/host_limit.hpp"

namespace uvget {
namespace {

using A = HostLimit::Answer;

TEST(HostLimit, ATooManyHalvesOnceForABurstAndKeepsBelowWhatWasOpen) {
  HostLimit h(16);
  std::vector<std::uint64_t> tickets;
  for (int i = 0; i < 16; ++i) tickets.push_back(h.sent());
  // Twelve of the sixteen in flight together come back 429: one decrease, not twelve.
  EXPECT_TRUE(h.answered(A::too_many, tickets[0], 16, 0));
  EXPECT_EQ(h.limit(), 8);
  for (int i = 1; i < 12; ++i) EXPECT_FALSE(h.answered(A::too_many, tickets[i], 16, 0));
  EXPECT_EQ(h.limit(), 8);
  // A request sent after the decrease that still gets a 429: down again.
  EXPECT_TRUE(h.answered(A::too_many, h.sent(), 8, 0));
  EXPECT_EQ(h.limit(), 4);
  // Successes climb back one at a time, to the ceiling (7: one fewer than were open), not to 16.
  for (int i = 0; i < 20; ++i) h.answered(A::ok, h.sent(), 4, 1000);
  EXPECT_EQ(h.limit(), 7);
  EXPECT_TRUE(h.adapted(1000));
  // A minute without a 429 and the ceiling is gone: the limit climbs to the maximum.
  for (int i = 0; i < 20; ++i) h.answered(A::ok, h.sent(), 7, HostLimit::kCeilingMs + 1);
  EXPECT_EQ(h.limit(), 16);
  EXPECT_FALSE(h.adapted(HostLimit::kCeilingMs + 1));
}

TEST(HostLimit, AServerThatRefusesAboveKSettlesAtK) {
  const int k = 4;
  HostLimit h(16);
  // Connections ramp up (one more per answer, as ClientOptions::initial_per_host lets them) to
  // the limit; the server answers 429 as soon as more than k are open.
  int peak_after_first = 0;
  bool refused_once = false;
  for (int step = 0; step < 500; ++step) {
    int open = std::min(h.limit(), step + 1);
    std::uint64_t t = h.sent();
    bool too_many = open > k;
    h.answered(too_many ? A::too_many : A::ok, t, open, static_cast<std::uint64_t>(step));
    if (refused_once) peak_after_first = std::max(peak_after_first, h.limit());
    refused_once |= too_many;
  }
  EXPECT_TRUE(refused_once);
  EXPECT_EQ(h.limit(), k);
  EXPECT_LE(peak_after_first, k);
}

TEST(HostLimit, AnOverloadWhileAboveTheLimitIsTheOldStateAndChangesNothing) {
  HostLimit h(16);
  EXPECT_TRUE(h.answered(A::too_many, h.sent(), 5, 0));  // the server allows 4
  EXPECT_EQ(h.limit(), 4);
  // Sent after the decrease, on a connection the server still counted with those closing.
  EXPECT_FALSE(h.answered(A::too_many, h.sent(), 5, 0));
  EXPECT_EQ(h.limit(), 4);
  EXPECT_FALSE(h.answered(A::unavailable, h.sent(), 6, 0));
  EXPECT_EQ(h.limit(), 4);
  // At the limit, the server still says too many: down again.
  EXPECT_TRUE(h.answered(A::too_many, h.sent(), 4, 0));
  EXPECT_EQ(h.limit(), 2);
}

TEST(HostLimit, AnUnavailableHalvesWithoutACeiling) {
  HostLimit h(16);
  EXPECT_TRUE(h.answered(A::unavailable, h.sent(), 16, 0));
  EXPECT_EQ(h.limit(), 8);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(h.answered(A::ok, h.sent(), 8, 0));
  EXPECT_EQ(h.limit(), 15);
  EXPECT_TRUE(h.answered(A::ok, h.sent(), 8, 0));
  EXPECT_EQ(h.limit(), 16);
  EXPECT_FALSE(h.answered(A::ok, h.sent(), 8, 0));  // at the maximum
  EXPECT_FALSE(h.adapted(0));
  // Held low and then left alone for a minute: nothing worth keeping.
  HostLimit quiet(16);
  quiet.answered(A::unavailable, quiet.sent(), 16, 1000);
  EXPECT_TRUE(quiet.adapted(1000 + HostLimit::kCeilingMs - 1));
  EXPECT_FALSE(quiet.adapted(1000 + HostLimit::kCeilingMs));
}

TEST(HostLimit, TwoRefusedOrResetConnectionsInARowLowerTheLimit) {
  HostLimit h(10);
  EXPECT_FALSE(h.answered(A::refused_or_reset, h.sent(), 10, 0));
  EXPECT_FALSE(h.answered(A::ok, h.sent(), 10, 0));  // the streak is broken
  EXPECT_FALSE(h.answered(A::refused_or_reset, h.sent(), 10, 0));
  EXPECT_EQ(h.limit(), 10);
  EXPECT_TRUE(h.answered(A::refused_or_reset, h.sent(), 10, 0));
  EXPECT_EQ(h.limit(), 5);
  EXPECT_FALSE(h.mostly_overloaded());  // connections that failed are not answers
}

TEST(HostLimit, TheHostRestsWholeOnlyWhenMostRecentAnswersAreOverloads) {
  HostLimit h(16);
  for (int i = 0; i < 7; ++i) h.answered(A::ok, h.sent(), 16, 0);
  h.answered(A::unavailable, h.sent(), 16, 0);
  EXPECT_FALSE(h.mostly_overloaded()) << "one stray 503";
  h.answered(A::unavailable, h.sent(), 16, 0);
  h.answered(A::too_many, h.sent(), 16, 0);
  h.answered(A::unavailable, h.sent(), 16, 0);
  EXPECT_FALSE(h.mostly_overloaded()) << "4 of the last 8";
  h.answered(A::unavailable, h.sent(), 16, 0);
  EXPECT_TRUE(h.mostly_overloaded()) << "5 of the last 8";
  for (int i = 0; i < 4; ++i) h.answered(A::ok, h.sent(), 16, 0);
  EXPECT_FALSE(h.mostly_overloaded()) << "the window moved on";
  HostLimit fresh(16);
  fresh.answered(A::unavailable, fresh.sent(), 1, 0);
  fresh.answered(A::unavailable, fresh.sent(), 1, 0);
  fresh.answered(A::unavailable, fresh.sent(), 1, 0);
  EXPECT_FALSE(fresh.mostly_overloaded()) << "too few answers to say";
  fresh.answered(A::unavailable, fresh.sent(), 1, 0);
  EXPECT_TRUE(fresh.mostly_overloaded());
}

TEST(HostLimit, NeverBelowOneAndAMaximumOfOneNeverMoves) {
  HostLimit h(3);
  for (int i = 0; i < 10; ++i) h.answered(A::too_many, h.sent(), 1, 0);
  EXPECT_EQ(h.limit(), 1);
  HostLimit one(1);
  EXPECT_FALSE(one.answered(A::too_many, one.sent(), 1, 0));
  EXPECT_FALSE(one.answered(A::ok, one.sent(), 1, 0));
  EXPECT_EQ(one.limit(), 1);
}

}  // namespace
}  // namespace uvget
