// Unit tests for one line of a -i list: URLs, mirrors, checksums and indented options.
#include <gtest/gtest.h>

#include "cli/list_line.hpp"

namespace uvget::cli {
namespace {

using Kind = ListLine::Kind;

TEST(ListLine, AUrlWithMirrorsAndAChecksum) {
  auto l = parse_list_line("  http://a/f.iso\thttp://b/f.iso\t sha-256=abc \thttp://c/f.iso\r");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->kind, Kind::url);
  EXPECT_EQ(l->url, "http://a/f.iso");
  EXPECT_EQ(l->checksum, "sha-256=abc");
  ASSERT_EQ(l->mirrors.size(), 2u);
  EXPECT_EQ(l->mirrors[0], "http://b/f.iso");
  EXPECT_EQ(l->mirrors[1], "http://c/f.iso");
  auto plain = parse_list_line("http://a/x?q=1");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->url, "http://a/x?q=1");
  EXPECT_TRUE(plain->mirrors.empty());
  EXPECT_TRUE(plain->checksum.empty());
}

TEST(ListLine, IndentedKeyValueLinesAreOptions) {
  auto out = parse_list_line("  out=name.bin");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->kind, Kind::option);
  EXPECT_EQ(out->key, "out");
  EXPECT_EQ(out->value, "name.bin");
  auto header = parse_list_line("\theader = X-Token: a=b");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->key, "header");
  EXPECT_EQ(header->value, "X-Token: a=b");
  // Indented, but a URL: the text before '=' is no plain word.
  auto url = parse_list_line("   http://a/p?x=1");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->kind, Kind::url);
  EXPECT_EQ(url->url, "http://a/p?x=1");
  // Not indented: a URL line, whatever it holds.
  EXPECT_EQ(parse_list_line("out=x")->kind, Kind::url);
}

TEST(ListLine, BlankLinesAndCommentsAreNothing) {
  EXPECT_FALSE(parse_list_line(""));
  EXPECT_FALSE(parse_list_line(" \t\r"));
  EXPECT_FALSE(parse_list_line("# http://a/"));
  EXPECT_FALSE(parse_list_line("   # out=x"));
}

}  // namespace
}  // namespace uvget::cli
