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

TEST(FitStatus, FieldsGoFromTheMiddleBeforeTheLineIsCut) {
  std::vector<std::string> f = {"5/200 files", "1.2 MB",        "300 kB/s",
                                "ETA 0:10",    "2 connections", "0 errors"};
  std::string full = "5/200 files, 1.2 MB, 300 kB/s, ETA 0:10, 2 connections, 0 errors";
  EXPECT_EQ(fit_status(f, 200), full);
  EXPECT_EQ(fit_status(f, full.size() - 1), "5/200 files, 1.2 MB, 300 kB/s, ETA 0:10, 0 errors");
  EXPECT_EQ(fit_status(f, 41), "5/200 files, 300 kB/s, ETA 0:10, 0 errors");
  EXPECT_EQ(fit_status(f, 31), "5/200 files, ETA 0:10, 0 errors");
  EXPECT_EQ(fit_status(f, 22), "5/200 files, 0 errors");
  EXPECT_EQ(fit_status(f, 10), "5/200 file");
}

TEST(CountOf, OneIsSingular) {
  EXPECT_EQ(count_of(1, "file"), "1 file");
  EXPECT_EQ(count_of(0, "error"), "0 errors");
  EXPECT_EQ(count_of(2, "byte"), "2 bytes");
}

}  // namespace
}  // namespace uvget::cli
