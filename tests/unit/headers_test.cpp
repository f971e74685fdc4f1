// The header values the transfer's policies act on, parsed alone: Retry-After and
// Content-Range, good and malformed.
#include "http/headers.hpp"

#include <gtest/gtest.h>

namespace uvget {
namespace {

// Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110.
constexpr std::time_t kRfcDate = 784111777;

TEST(RetryAfter, SecondsAndDatesBecomeMilliseconds) {
  EXPECT_EQ(parse_retry_after("120", kRfcDate), 120'000u);
  EXPECT_EQ(parse_retry_after("  0 ", kRfcDate), 0u);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kRfcDate - 30), 30'000u);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kRfcDate + 5), 0u)
      << "a date in the past means now";
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", kRfcDate - 1), 1000u);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", kRfcDate - 2), 2000u);
}

TEST(RetryAfter, AHugeDelayIsCappedNotWrapped) {
  EXPECT_EQ(parse_retry_after("99999999999999999999999", kRfcDate), 999'999'999'000u);
}

TEST(RetryAfter, AnythingElseIsNotAValue) {
  for (const char* bad : {"", "  ", "-5", "1.5", "soon", "12 s", "Sun, 32 Nov 1994 08:49:37 GMT"})
    EXPECT_FALSE(parse_retry_after(bad, kRfcDate)) << "'" << bad << "'";
}

TEST(ContentRange, TheThreeForms) {
  auto full = parse_content_range("bytes 100-199/1000");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->first, 100u);
  EXPECT_EQ(full->last, 199u);
  EXPECT_EQ(full->length, 1000u);
  auto unknown = parse_content_range("bytes 0-9/*");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->first, 0u);
  EXPECT_EQ(unknown->last, 9u);
  EXPECT_FALSE(unknown->length);
  auto unsatisfied = parse_content_range(" BYTES */5000 ");
  ASSERT_TRUE(unsatisfied);
  EXPECT_FALSE(unsatisfied->first);
  EXPECT_FALSE(unsatisfied->last);
  EXPECT_EQ(unsatisfied->length, 5000u);
}

TEST(ContentRange, MalformedOrInconsistentIsRefused) {
  for (const char* bad :
       {"", "bytes", "bytes 1-2", "items 0-1/2", "bytes 5-4/10", "bytes 0-10/10", "bytes */*",
        "bytes -5/10", "bytes 0-/10", "bytes 0-1/x", "bytes a-b/10", "bytes 0-1/10/10"})
    EXPECT_FALSE(parse_content_range(bad)) << "'" << bad << "'";
}

TEST(Redirect, TheRedirectingStatuses) {
  for (int s : {301, 302, 303, 307, 308}) EXPECT_TRUE(is_redirect(s)) << s;
  for (int s : {200, 300, 304, 305, 306, 309, 404}) EXPECT_FALSE(is_redirect(s)) << s;
}

}  // namespace
}  // namespace uvget
