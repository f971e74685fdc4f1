// What the command line prints about URLs and counts.
#include <gtest/gtest.h>

#include "cli/report.hpp"

namespace uvget::cli {
namespace {

TEST(MaskCredentials, APasswordIsMaskedAndAUserNameAloneKept) {
  EXPECT_EQ(mask_credentials("http://alice:secret@host/a"), "http://alice:***@host/a");
  EXPECT_EQ(mask_credentials("https://alice@host:8443/"), "https://alice@host:8443/");
  EXPECT_EQ(mask_credentials("http://host/a?u=x:y@z"), "http://host/a?u=x:y@z");
  EXPECT_EQ(mask_credentials("http://a:b:c@host"), "http://a:***@host");
  EXPECT_EQ(mask_credentials("http://u:p@w@host/"), "http://u:***@host/") << "up to the last @";
}

TEST(MaskCredentials, EveryUrlInAMessageIsMasked) {
  EXPECT_EQ(mask_credentials("http://a:1@x/: redirected to https://b:2@y/z (HTTP 301)"),
            "http://a:***@x/: redirected to https://b:***@y/z (HTTP 301)");
  EXPECT_EQ(mask_credentials("no url here: a:b@c"), "no url here: a:b@c");
  EXPECT_EQ(mask_credentials("{\"url\":\"http://a:pw@h\"}"), "{\"url\":\"http://a:***@h\"}");
}

TEST(CountOf, OneIsSingular) {
  EXPECT_EQ(count_of(1, "file"), "1 file");
  EXPECT_EQ(count_of(0, "error"), "0 errors");
  EXPECT_EQ(count_of(2, "byte"), "2 bytes");
}

}  // namespace
}  // namespace uvget::cli
