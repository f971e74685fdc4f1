// Error: the URL and the place it failed are fields, and message() writes them in one form.
#include <uvget/error.hpp>

#include <gtest/gtest.h>

namespace uvget {
namespace {

TEST(ErrorMessage, TheUrlLeadsAndARedirectsTargetFollows) {
  Error e(Errc::http_status, "HTTP 404 Not Found");
  EXPECT_EQ(e.message(), "HTTP 404 Not Found") << "no URL: the cause alone";
  e.url = "http://a.test/x";
  EXPECT_EQ(e.message(), "http://a.test/x: HTTP 404 Not Found");
  e.at = "http://b.test/y";
  EXPECT_EQ(e.message(), "http://a.test/x: HTTP 404 Not Found (at http://b.test/y)");
  EXPECT_EQ(e.cause(), "HTTP 404 Not Found");
  e.at = e.url;
  EXPECT_EQ(e.message(), "http://a.test/x: HTTP 404 Not Found") << "at the URL itself: once";
}

TEST(ErrorMessage, WithoutDetailTheCodeSpeaks) {
  Error e(Errc::too_slow, "");
  e.url = "http://a.test/";
  EXPECT_EQ(e.message(), "http://a.test/: transfer too slow");
  EXPECT_EQ(Error().message(), "ok");
  EXPECT_FALSE(Error());
}

}  // namespace
}  // namespace uvget
