// Unit tests for robots.txt (RFC 9309): groups, the longest match, '*' and '$', percent-encoding,
// Crawl-delay, and text that is hostile or malformed.
#include <gtest/gtest.h>

#include <string>

#include "core/robots.hpp"

namespace uvget {
namespace {

TEST(Robots, TheProductTokenOfAUserAgent) {
  EXPECT_EQ(robots_token("uvget/0.1"), "uvget");
  EXPECT_EQ(robots_token("My-Bot_2 (+http://example.org)"), "My-Bot_");
  EXPECT_EQ(robots_token("ExampleBot"), "ExampleBot");
  EXPECT_EQ(robots_token("/x"), "");
}

TEST(Robots, OurGroupWinsOverStarAndGroupsForUsAreMerged) {
  const char* text =
      "User-agent: *\n"
      "Disallow: /\n"
      "\n"
      "User-agent: otherbot\n"
      "User-agent: UVGET\n"  // case-insensitive, one group with otherbot
      "Disallow: /private\n"
      "\n"
      "user-agent: uvget/2.0\n"  // the version is not part of the token
      "allow: /private/ok\n";
  RobotsRules r = RobotsRules::parse(text, "uvget");
  EXPECT_TRUE(r.allowed("/"));
  EXPECT_TRUE(r.allowed("/public/page"));
  EXPECT_FALSE(r.allowed("/private"));
  EXPECT_FALSE(r.allowed("/private/x"));
  EXPECT_TRUE(r.allowed("/private/ok/x"));
  EXPECT_EQ(r.refusing_rule("/private/x"), "Disallow: /private");
  // Another crawler gets the '*' group.
  RobotsRules other = RobotsRules::parse(text, "nobody");
  EXPECT_FALSE(other.allowed("/anything"));
}

TEST(Robots, NoGroupForUsOrStarAllowsEverything) {
  RobotsRules r = RobotsRules::parse("User-agent: otherbot\nDisallow: /\n", "uvget");
  EXPECT_TRUE(r.allowed("/x"));
  EXPECT_EQ(r.rule_count(), 0u);
  EXPECT_TRUE(RobotsRules::parse("", "uvget").allowed("/"));
  EXPECT_TRUE(RobotsRules().allowed("/"));
  EXPECT_FALSE(RobotsRules::disallow_all().allowed("/"));
  EXPECT_TRUE(RobotsRules::disallow_all().allowed("/robots.txt"));
  EXPECT_TRUE(RobotsRules::parse("User-agent: *\nDisallow: /\n", "uvget").allowed("/robots.txt"));
}

TEST(Robots, TheLongestMatchDecidesAndAllowWinsATie) {
  RobotsRules r = RobotsRules::parse(
      "User-agent: *\n"
      "Disallow: /a\n"
      "Allow: /a/b\n"
      "Disallow: /a/b/c\n"
      "Allow: /same\n"
      "Disallow: /same\n",
      "uvget");
  EXPECT_FALSE(r.allowed("/a"));
  EXPECT_FALSE(r.allowed("/apple"));  // a prefix, not a path segment
  EXPECT_TRUE(r.allowed("/a/b"));
  EXPECT_FALSE(r.allowed("/a/b/c/d"));
  EXPECT_TRUE(r.allowed("/same/thing"));
  EXPECT_TRUE(r.allowed("/b"));
}

TEST(Robots, WildcardsAndTheEndAnchor) {
  RobotsRules r = RobotsRules::parse(
      "User-agent: *\n"
      "Disallow: /*.pdf$\n"
      "Disallow: /search*q=\n"
      "Disallow: /exact$\n"
      "Allow: /*.pdf$x\n",  // '$' only anchors at the end
      "uvget");
  EXPECT_FALSE(r.allowed("/docs/a.pdf"));
  EXPECT_TRUE(r.allowed("/docs/a.pdf?download=1"));
  EXPECT_TRUE(r.allowed("/docs/a.pdfx"));
  EXPECT_FALSE(r.allowed("/search?lang=en&q=cats"));
  EXPECT_TRUE(r.allowed("/search?lang=en"));
  EXPECT_FALSE(r.allowed("/exact"));
  EXPECT_TRUE(r.allowed("/exact/more"));
  EXPECT_TRUE(robots_match("/a*b*c", "/axxbyyc"));
  EXPECT_FALSE(robots_match("/a*b*c$", "/axxbyycz"));
  EXPECT_TRUE(robots_match("*", ""));
  EXPECT_TRUE(robots_match("/", "/anything"));
  // A pattern of many stars against a long path is not exponential.
  std::string stars(2000, '*');
  EXPECT_FALSE(robots_match("/" + stars + "x$", "/" + std::string(20000, 'a')));
}

TEST(Robots, PercentEncodingIsComparedNormalised) {
  RobotsRules r = RobotsRules::parse(
      "User-agent: *\n"
      "Disallow: /%7Ejoe/\n"       // %7E is '~', unreserved: decoded
      "Disallow: /a%2fb\n"         // %2F stays encoded (reserved), case aside
      "Disallow: /caf\xC3\xA9\n",  // raw UTF-8 is encoded
      "uvget");
  EXPECT_FALSE(r.allowed("/~joe/index.html"));
  EXPECT_FALSE(r.allowed("/%7ejoe/index.html"));
  EXPECT_FALSE(r.allowed("/a%2Fb"));
  EXPECT_TRUE(r.allowed("/a/b"));  // an encoded slash is not a slash
  EXPECT_FALSE(r.allowed("/caf%C3%A9"));
  EXPECT_FALSE(r.allowed("/caf%c3%a9/menu"));
}

TEST(Robots, CrawlDelayOfTheChosenGroup) {
  const char* text =
      "User-agent: *\nCrawl-delay: 10\nDisallow: /x\n\n"
      "User-agent: uvget\nCrawl-delay: 0.5\nDisallow: /y\n";
  EXPECT_EQ(RobotsRules::parse(text, "uvget").crawl_delay_ms(), 500u);
  EXPECT_EQ(RobotsRules::parse(text, "other").crawl_delay_ms(), 10000u);
  EXPECT_EQ(RobotsRules::parse("User-agent: *\nCrawl-delay: soon\n", "uvget").crawl_delay_ms(), 0u);
  EXPECT_EQ(RobotsRules::parse("User-agent: *\nCrawl-delay: -3\n", "uvget").crawl_delay_ms(), 0u);
}

TEST(Robots, CommentsBlankLinesCrlfAndJunkAreTolerated) {
  RobotsRules r = RobotsRules::parse(
      "\xEF\xBB\xBF# a comment\r\n"
      "Disallow: /before-any-group\r\n"  // no group yet: ignored
      "User-agent: * # everyone\r\n"
      "\r\n"
      "this line has no colon\r\n"
      "Sitemap: http://example.org/sitemap.xml\r\n"
      "Disallow: /tmp # temporary\r\n"
      "Disallow:\r\n"  // empty: no rule
      "Unknown-Key: whatever\r\n",
      "uvget");
  EXPECT_TRUE(r.allowed("/before-any-group"));
  EXPECT_FALSE(r.allowed("/tmp/file"));
  EXPECT_TRUE(r.allowed("/other"));
  EXPECT_EQ(r.rule_count(), 1u);
}

TEST(Robots, OnlyTheFirst512KiBAreRead) {
  std::string text = "User-agent: *\n";
  while (text.size() < RobotsRules::kMaxBytes) text += "Disallow: /filler\n";
  text += "Disallow: /late\n";
  RobotsRules r = RobotsRules::parse(text, "uvget");
  EXPECT_FALSE(r.allowed("/filler"));
  EXPECT_TRUE(r.allowed("/late"));
}

}  // namespace
}  // namespace uvget
