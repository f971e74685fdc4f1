// Unit tests for the command line's output names: name_from_path, sanitise_name, percent_decode.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

#include "cli/naming.hpp"

namespace uvget::cli {
namespace {

constexpr std::size_t kMaxName = 200;

// The promise every output name keeps: one plain, visible directory entry.
::testing::AssertionResult IsSafeName(const std::string& name) {
  auto fail = [&](const char* why) {
    std::string shown;
    for (unsigned char c : name) {
      if (c < 0x20 || c >= 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", c);
        shown += buf;
      } else {
        shown += static_cast<char>(c);
      }
    }
    return ::testing::AssertionFailure() << why << ": \"" << shown << "\"";
  };
  if (name.empty()) return fail("empty");
  if (name.size() > kMaxName) return fail("longer than 200 bytes");
  if (name == "." || name == "..") return fail("a dot entry");
  if (name[0] == '.') return fail("starts with '.'");
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return fail("has a path separator");
    if (u < 0x20 || u == 0x7f) return fail("has a NUL or control byte");
  }
  return ::testing::AssertionSuccess();
}

// True when s is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or values over U+10FFFF).
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t more;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      more = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + more >= s.size()) return false;
    for (std::size_t k = 1; k <= more; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += more + 1;
  }
  return true;
}

std::string from_path(std::string_view path) {
  std::string name = name_from_path(path);
  EXPECT_TRUE(IsSafeName(name)) << "path \"" << path << "\"";
  return name;
}

std::string sanitised(std::string_view text) {
  std::string name = sanitise_name(text);
  EXPECT_TRUE(IsSafeName(name)) << "input of " << text.size() << " bytes";
  return name;
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// --- name_from_path -------------------------------------------------------------------------

TEST(NameFromPath, LastSegmentOfPlainPath) {
  EXPECT_EQ(from_path("/a/b/file.txt"), "file.txt");
  EXPECT_EQ(from_path("/file.tar.gz"), "file.tar.gz");
  EXPECT_EQ(from_path("file.txt"), "file.txt");
}

TEST(NameFromPath, EmptyLastSegmentBecomesIndexHtml) {
  EXPECT_EQ(from_path("/"), "index.html");
  EXPECT_EQ(from_path(""), "index.html");
  EXPECT_EQ(from_path("/dir/"), "index.html");
  EXPECT_EQ(from_path("/dir/?x=1"), "index.html");
  EXPECT_EQ(from_path("?x=1"), "index.html");
}

TEST(NameFromPath, DotSegmentsBecomeIndexHtml) {
  EXPECT_EQ(from_path("/.."), "index.html");
  EXPECT_EQ(from_path("/."), "index.html");
  EXPECT_EQ(from_path("/a/.."), "index.html");
  EXPECT_EQ(from_path("/%2e%2e"), "index.html");
  EXPECT_EQ(from_path("/%2E%2E"), "index.html");
  EXPECT_EQ(from_path("/%2e"), "index.html");
  EXPECT_EQ(from_path("/.%2e"), "index.html");
}

TEST(NameFromPath, EncodedTraversalStaysOneEntry) {
  EXPECT_EQ(from_path("/..%2f..%2fetc%2fpasswd"), "___.._etc_passwd");
  EXPECT_EQ(from_path("/..%2F..%2F..%2Froot%2F.ssh%2Fid_rsa"), "___.._.._root_.ssh_id_rsa");
  EXPECT_EQ(from_path("/a%5c..%5cb"), "a_.._b");
  EXPECT_EQ(from_path("/%5c%5cserver%5cshare"), "__server_share");
  EXPECT_EQ(from_path("/..\\..\\windows"), "___.._windows");
}

TEST(NameFromPath, NulAndControlBytesReplaced) {
  EXPECT_EQ(from_path("/%00x"), "_x");
  EXPECT_EQ(from_path("/a%0Ab%0dc%09d%7Fe%1b"), "a_b_c_d_e_");
  EXPECT_EQ(from_path("/%00"), "_");
}

TEST(NameFromPath, LeadingDotsReplaced) {
  EXPECT_EQ(from_path("/.hidden"), "_hidden");
  EXPECT_EQ(from_path("/..hidden"), "__hidden");
  EXPECT_EQ(from_path("/..."), "___");
  EXPECT_EQ(from_path("/%2ebashrc"), "_bashrc");
  EXPECT_EQ(from_path("/a.b."), "a.b.");  // only leading dots matter
}

TEST(NameFromPath, QueryDropped) {
  EXPECT_EQ(from_path("/x.bin?y=1"), "x.bin");
  EXPECT_EQ(from_path("/x.bin?y=/etc/passwd"), "x.bin");
  EXPECT_EQ(from_path("/d/x.bin?"), "x.bin");
}

TEST(NameFromPath, PercentDecoded) {
  EXPECT_EQ(from_path("/my%20file.txt"), "my file.txt");
  EXPECT_EQ(from_path("/%41%62c"), "Abc");
  EXPECT_EQ(from_path("/100%25"), "100%");
  EXPECT_EQ(from_path("/bad%zz%4"), "bad%zz%4");  // broken escapes kept as text
}

TEST(NameFromPath, Utf8Kept) {
  EXPECT_EQ(from_path("/caf%C3%A9.txt"), "caf\xC3\xA9.txt");
  EXPECT_EQ(from_path("/\xE6\x97\xA5\xE6\x9C\xAC.pdf"), "\xE6\x97\xA5\xE6\x9C\xAC.pdf");
  EXPECT_EQ(from_path("/%F0%9F%98%80"), "\xF0\x9F\x98\x80");
}

// --- sanitise_name --------------------------------------------------------------------------

TEST(SanitiseName, PlainNameUnchanged) {
  EXPECT_EQ(sanitised("report-2024_v2.final.pdf"), "report-2024_v2.final.pdf");
  EXPECT_EQ(sanitised("a b ~ ! $ ( ) [ ] , ;"), "a b ~ ! $ ( ) [ ] , ;");
}

TEST(SanitiseName, EmptyAndDotNamesBecomeIndexHtml) {
  EXPECT_EQ(sanitised(""), "index.html");
  EXPECT_EQ(sanitised("."), "index.html");
  EXPECT_EQ(sanitised(".."), "index.html");
}

TEST(SanitiseName, SeparatorsAndControlBytesReplaced) {
  EXPECT_EQ(sanitised("a/b\\c"), "a_b_c");
  EXPECT_EQ(sanitised("/"), "_");
  EXPECT_EQ(sanitised("../x"), "___x");
  EXPECT_EQ(sanitised(std::string_view("a\0b", 3)), "a_b");
  EXPECT_EQ(sanitised("\x01\x1f\x7f"), "___");
  EXPECT_EQ(sanitised("\xC3\xA9\x80\xFF"), "\xC3\xA9\x80\xFF");  // high bytes are not controls
}

TEST(SanitiseName, LongNameTruncatedKeepingExtension) {
  std::string name = sanitised(std::string(300, 'a') + ".tar.gz");
  EXPECT_EQ(name.size(), kMaxName);
  EXPECT_EQ(name, std::string(kMaxName - 3, 'a') + ".gz");
}

TEST(SanitiseName, NameOfExactly200BytesKept) {
  std::string exact = std::string(196, 'b') + ".bin";
  EXPECT_EQ(sanitised(exact), exact);
  std::string over = std::string(197, 'b') + ".bin";
  EXPECT_EQ(sanitised(over), std::string(196, 'b') + ".bin");
}

TEST(SanitiseName, LongExtensionNotKept) {
  std::string ext = "." + std::string(20, 'e');
  std::string name = sanitised(std::string(300, 'a') + ext);
  EXPECT_EQ(name, std::string(kMaxName, 'a'));
}

TEST(SanitiseName, LongNameWithoutDotTruncated) {
  EXPECT_EQ(sanitised(std::string(1000, 'z')), std::string(kMaxName, 'z'));
}

TEST(SanitiseName, TruncationNeverSplitsUtf8Sequence) {
  // 2-, 3- and 4-byte characters, each with every alignment against the cut.
  for (std::string_view ch : {"\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80"}) {
    for (int pad = 0; pad < 4; ++pad) {
      for (std::string_view ext : {"", ".txt", ".tar.gz"}) {
        std::string input = std::string(pad, 'p') + repeat(ch, 120) + std::string(ext);
        std::string name = sanitised(input);
        SCOPED_TRACE("char of " + std::to_string(ch.size()) + " bytes, pad " + std::to_string(pad) +
                     ", ext '" + std::string(ext) + "'");
        EXPECT_TRUE(is_utf8(name));
        EXPECT_LE(name.size(), kMaxName);
        EXPECT_GT(name.size(), kMaxName - ch.size() - 1);  // cut at most one character short
        std::string kept_ext = ext.empty() ? "" : std::string(ext.substr(ext.rfind('.')));
        EXPECT_EQ(name.substr(name.size() - kept_ext.size()), kept_ext);
        EXPECT_EQ(input.rfind(name.substr(0, name.size() - kept_ext.size()), 0), 0u);
      }
    }
  }
}

TEST(SanitiseName, LongLeadingDotNameTruncatedSafely) {
  EXPECT_EQ(sanitised(std::string(300, '.') + "x.txt"), std::string(196, '_') + ".txt");
  EXPECT_EQ(sanitised(std::string(300, '.') + ".txt"), std::string(200, '_'));  // all leading
}

// --- percent_decode -------------------------------------------------------------------------

TEST(PercentDecode, DecodesValidEscapesOnly) {
  EXPECT_EQ(percent_decode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(percent_decode("%41%42"), "AB");
  EXPECT_EQ(percent_decode("%00"), std::string(1, '\0'));
  EXPECT_EQ(percent_decode("%FF"), "\xFF");
  EXPECT_EQ(percent_decode("%%41"), "%A");
  EXPECT_EQ(percent_decode("%zz"), "%zz");
  EXPECT_EQ(percent_decode("%4"), "%4");
  EXPECT_EQ(percent_decode("x%"), "x%");
  EXPECT_EQ(percent_decode("%4g"), "%4g");
  EXPECT_EQ(percent_decode("%2541"), "%41");  // decoded once, not twice
  EXPECT_EQ(percent_decode("+"), "+");        // not form decoding
  EXPECT_EQ(percent_decode(""), "");
}

// --- Properties over random input -----------------------------------------------------------

std::string random_bytes(std::mt19937& rng) {
  // Mostly the bytes that matter: separators, dots, escapes, controls, UTF-8 pieces.
  static constexpr std::string_view kInteresting = "/\\.%?#2eEfF5cC0aA";
  std::uniform_int_distribution<int> len_dist(0, 450);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> pick(0, kInteresting.size() - 1);
  std::string s;
  int len = len_dist(rng);
  for (int i = 0; i < len; ++i) {
    int k = kind(rng);
    if (k < 5)
      s.push_back(kInteresting[pick(rng)]);
    else if (k < 7)
      s.push_back(static_cast<char>('a' + byte(rng) % 26));
    else
      s.push_back(static_cast<char>(byte(rng)));
  }
  return s;
}

std::string random_utf8(std::mt19937& rng) {
  static constexpr std::string_view kPieces[] = {
      "a",      ".",   "/", "\\", "%2e", "%2F", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
      "%C3%A9", "%00", "\t"};
  std::uniform_int_distribution<int> len_dist(0, 150);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kPieces) - 1);
  std::string s;
  for (int i = len_dist(rng); i > 0; --i) s += kPieces[pick(rng)];
  return s;
}

TEST(NamingProperty, RandomBytesAlwaysGiveSafeNames) {
  std::mt19937 rng(20240501);
  for (int i = 0; i < 4000; ++i) {
    std::string s = random_bytes(rng);
    std::string a = name_from_path(s);
    std::string b = sanitise_name(s);
    std::string c = sanitise_name(percent_decode(s));
    ASSERT_TRUE(IsSafeName(a)) << "name_from_path, case " << i;
    ASSERT_TRUE(IsSafeName(b)) << "sanitise_name, case " << i;
    ASSERT_TRUE(IsSafeName(c)) << "sanitise_name(percent_decode), case " << i;
    ASSERT_EQ(sanitise_name(b), b) << "not idempotent, case " << i;
  }
}

TEST(NamingProperty, RandomUtf8StaysValidUtf8) {
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string s = random_utf8(rng);
    std::string decoded = percent_decode(s);
    ASSERT_TRUE(is_utf8(decoded)) << "generator bug, case " << i;
    std::string name = sanitise_name(decoded);
    ASSERT_TRUE(IsSafeName(name)) << "case " << i;
    ASSERT_TRUE(is_utf8(name)) << "case " << i << ", " << decoded.size() << " bytes in";
    std::string from = name_from_path(s);
    ASSERT_TRUE(IsSafeName(from)) << "case " << i;
    ASSERT_TRUE(is_utf8(from)) << "case " << i;
  }
}

TEST(IsUtf8Helper, DetectsMalformedInput) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("abc\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_utf8("\xC3"));
  EXPECT_FALSE(is_utf8("\xE6\x97"));
  EXPECT_FALSE(is_utf8("\x80"));
  EXPECT_FALSE(is_utf8("\xC0\xAF"));  // overlong '/'
  EXPECT_FALSE(is_utf8("\xFF"));
}

}  // namespace
}  // namespace uvget::cli

namespace uvget::cli {
namespace {

// Found by the naming fuzzer: a long name of bytes that are no UTF-8 was cut to nothing.
TEST(NamingFuzzFinds, ALongNameThatIsNoUtf8IsCutNotEmptied) {
  std::string path = "/dir/." + std::string(300, '\xaf');
  std::string name = name_from_path(path);
  EXPECT_FALSE(name.empty());
  EXPECT_LE(name.size(), 200u);
  EXPECT_NE(name.front(), '.');
}

TEST(NameFor, PathQueryAndHashTellUrlsApart) {
  EXPECT_EQ(name_for("/dl/download", "id=7", true, "http://h/dl/download?id=7", NameFrom::path),
            "download");
  EXPECT_EQ(
      name_for("/dl/download", "id=7", true, "http://h/dl/download?id=7", NameFrom::path_query),
      "download?id=7");
  EXPECT_EQ(name_for("/img/a.jpg", "size=a/b%2F..", true, "u", NameFrom::path_query),
            "a.jpg?size=a_b_..");  // the query's slashes, even encoded, cannot make a path
  EXPECT_EQ(name_for("/x", "", false, "u", NameFrom::path_query), "x");
  std::string a =
      name_for("/img/photo.jpg", "size=1", true, "http://h/img/photo.jpg?size=1", NameFrom::hash);
  std::string b =
      name_for("/img/photo.jpg", "size=2", true, "http://h/img/photo.jpg?size=2", NameFrom::hash);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 32u + 4u);
  EXPECT_EQ(a.substr(32), ".jpg");
  EXPECT_EQ(a, name_for("/img/photo.jpg", "size=1", true, "http://h/img/photo.jpg?size=1",
                        NameFrom::hash))
      << "the same URL gets the same name on every run";
  EXPECT_EQ(name_for("/", "", false, "http://h/", NameFrom::hash).size(), 32u);
}

TEST(LayoutDirs, HostAndPathSegmentsSanitisedAndNeverClimbing) {
  EXPECT_EQ(layout_dirs("example.org", "/a/b/c.txt", false, 0), "example.org/a/b");
  EXPECT_EQ(layout_dirs("example.org:8080", "/c.txt", false, 0), "example.org:8080");
  EXPECT_EQ(layout_dirs("example.org", "/a/b/c.txt", true, 0), "a/b");
  EXPECT_EQ(layout_dirs("example.org", "/a/b/c.txt", true, 1), "b");
  EXPECT_EQ(layout_dirs("example.org", "/a/b/c.txt", true, 5), "");
  EXPECT_EQ(layout_dirs("h", "//a///b/./c", false, 0), "h/a/b");
  // Encoded dots, slashes and backslashes stay inside one segment of their own.
  EXPECT_EQ(layout_dirs("h", "/%2e%2e/%2E%2E/x", false, 0), "h/__/__");
  EXPECT_EQ(layout_dirs("h", "/a%2F..%2F..%2Fetc/f", false, 0), "h/a_.._.._etc");
  EXPECT_EQ(layout_dirs("h", "/..%5C..%5Cwin/f", false, 0), "h/___.._win");
  EXPECT_EQ(layout_dirs("h", "/.hidden/f", false, 0), "h/_hidden");
  std::string longest(1000, 'x');
  std::string dirs = layout_dirs("h", "/" + longest + "/f", false, 0);
  EXPECT_EQ(dirs, "h/" + std::string(200, 'x')) << "a segment is cut to a name's length";
}

TEST(ContentDisposition, FilenameStarBeforeFilenameAndNeverAPath) {
  EXPECT_EQ(content_disposition_name("attachment; filename=\"report.pdf\""), "report.pdf");
  EXPECT_EQ(content_disposition_name("attachment; filename=plain.txt"), "plain.txt");
  EXPECT_EQ(content_disposition_name("attachment; filename=\"fallback.txt\"; "
                                     "filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt"),
            "na\xC3\xAFve r\xC3\xA9sum\xC3\xA9.txt");
  EXPECT_EQ(content_disposition_name("attachment; filename*=iso-8859-1'en'%E9t%E9.txt"),
            "\xC3\xA9t\xC3\xA9.txt");
  EXPECT_EQ(content_disposition_name("attachment; FILENAME = \"quoted \\\"name\\\".txt\" "),
            "quoted \"name\".txt");
  // Paths lose everything but their last component; what is left is sanitised.
  EXPECT_EQ(content_disposition_name("attachment; filename=\"../../etc/passwd\""), "passwd");
  EXPECT_EQ(content_disposition_name("attachment; filename=\"C:\\\\evil\\\\x.exe\""), "x.exe");
  EXPECT_EQ(content_disposition_name("attachment; filename*=UTF-8''%2e%2e%2fsecret"), "secret");
  EXPECT_EQ(content_disposition_name("attachment; filename=\".bashrc\""), "_bashrc");
  EXPECT_EQ(content_disposition_name("attachment; filename=\"a\x01"
                                     "b\""),
            "a_b");
  // Nothing usable: the URL names the file.
  EXPECT_EQ(content_disposition_name("attachment"), "");
  EXPECT_EQ(content_disposition_name("attachment; filename=\"..\""), "");
  EXPECT_EQ(content_disposition_name("attachment; filename=\"dir/\""), "");
  EXPECT_EQ(content_disposition_name("attachment; filename*=KOI8-R''%C1"), "");
  EXPECT_EQ(content_disposition_name("inline; filename=\"unterminated"), "unterminated");
}

}  // namespace
}  // namespace uvget::cli
