// What /etc/resolv.conf and RES_OPTIONS say about DNS timeouts, read as glibc reads them (c-ares
// 1.18 reads neither option itself).
#include <gtest/gtest.h>

#include "net/resolver.hpp"

namespace uvget {
namespace {

TEST(ResolvConf, DefaultsAreGlibcs) {
  auto t = parse_resolv_timeouts("nameserver 127.0.0.1\nsearch a.test\n", "");
  EXPECT_EQ(t.timeout_ms, 5000);
  EXPECT_EQ(t.attempts, 2);
}

TEST(ResolvConf, OptionsLinesSetTimeoutAndAttemptsWithinGlibcsBounds) {
  auto t = parse_resolv_timeouts("options ndots:2 timeout:3\noptions\tattempts:4 rotate\n", "");
  EXPECT_EQ(t.timeout_ms, 3000);
  EXPECT_EQ(t.attempts, 4);
  t = parse_resolv_timeouts("options timeout:99 attempts:9\n", "");
  EXPECT_EQ(t.timeout_ms, 30000);
  EXPECT_EQ(t.attempts, 5);
  t = parse_resolv_timeouts("options timeout:0 attempts:0\n", "");
  EXPECT_EQ(t.timeout_ms, 1000);
  EXPECT_EQ(t.attempts, 1);
}

TEST(ResolvConf, ResOptionsComesLastAndMalformedWordsAreIgnored) {
  auto t = parse_resolv_timeouts("options timeout:3 attempts:3\n", "timeout:1");
  EXPECT_EQ(t.timeout_ms, 1000);
  EXPECT_EQ(t.attempts, 3);
  t = parse_resolv_timeouts(
      "options timeout:x attempts:-1 timeout: optionsattempts:4\n"
      "#options timeout:9\noptionstimeout:9\n",
      "");
  EXPECT_EQ(t.timeout_ms, 5000);
  EXPECT_EQ(t.attempts, 2);
}

}  // namespace
}  // namespace uvget
