// The download's policies alone: what is retried, how long a retry waits, where a redirect
// leads and which headers it may carry there.
#include "core/policies.hpp"

#include <gtest/gtest.h>

namespace uvget {
namespace {

Url url(std::string_view text) {
  auto u = Url::parse(text);
  EXPECT_TRUE(u) << text;
  return *u;
}

TEST(Retryable, PassingFailuresAndServerStatusesOnly) {
  for (Errc c :
       {Errc::dns_temporary, Errc::connect, Errc::connect_timeout, Errc::idle_timeout,
        Errc::connection_closed, Errc::connection_reset, Errc::size_mismatch, Errc::too_slow})
    EXPECT_TRUE(retryable(Error(c, ""), 0)) << Error(c, "").message();
  for (Errc c : {Errc::resolve, Errc::bad_url, Errc::tls_verify, Errc::tls_handshake,
                 Errc::http_parse, Errc::checksum_mismatch, Errc::file_io, Errc::cancelled,
                 Errc::timeout, Errc::bad_encoding, Errc::too_many_redirects, Errc::body_too_large})
    EXPECT_FALSE(retryable(Error(c, ""), 0)) << Error(c, "").message();
  for (int s : {408, 429, 500, 502, 503, 504, 599})
    EXPECT_TRUE(retryable(Error(Errc::http_status, ""), s)) << s;
  for (int s : {400, 401, 403, 404, 410, 416, 451})
    EXPECT_FALSE(retryable(Error(Errc::http_status, ""), s)) << s;
}

TEST(Backoff, DoublesUpToTheCapAndJittersBelowIt) {
  EXPECT_EQ(backoff_ceiling(1, 1000, 30'000), 1000u);
  EXPECT_EQ(backoff_ceiling(2, 1000, 30'000), 2000u);
  EXPECT_EQ(backoff_ceiling(5, 1000, 30'000), 16'000u);
  EXPECT_EQ(backoff_ceiling(6, 1000, 30'000), 30'000u);
  EXPECT_EQ(backoff_ceiling(1000, 1000, 30'000), 30'000u) << "no overflow on a long run";
  EXPECT_EQ(backoff_ceiling(3, 0, 30'000), 0u);
  bool low = false, high = false;
  for (int i = 0; i < 2000; ++i) {
    std::uint64_t w = backoff_ms(3, 1000, 30'000);
    ASSERT_LE(w, 4000u);
    low = low || w < 1000;
    high = high || w > 3000;
  }
  EXPECT_TRUE(low && high) << "full jitter spreads over [0, ceiling]";
  EXPECT_EQ(backoff_ms(4, 0, 30'000), 0u);
}

TEST(Redirect, ResolvesAndRefusesADowngrade) {
  auto to = redirect_target(url("http://a.test/x/y"), "../z?q", false);
  ASSERT_TRUE(to) << to.error().message();
  EXPECT_EQ(to->str(), "http://a.test/z?q");
  auto down = redirect_target(url("https://a.test/"), "http://a.test/plain", false);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, Errc::bad_redirect);
  EXPECT_TRUE(redirect_target(url("https://a.test/"), "http://a.test/plain", true));
  auto bad = redirect_target(url("http://a.test/"), "ftp://a.test/f", false);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::bad_redirect);
}

TEST(Redirect, CredentialsStayWithTheirOrigin) {
  HeaderList h = {{"Authorization", "Basic x"},
                  {"cookie", "a=1"},
                  {"Proxy-Authorization", "p"},
                  {"X-Kept", "1"}};
  HeaderList same = h;
  drop_credentials_leaving(url("http://a.test/1"), url("http://a.test:80/2"), same);
  EXPECT_EQ(same.size(), 4u) << "the same origin keeps them";
  for (const char* other : {"http://b.test/", "https://a.test/", "http://a.test:8080/"}) {
    HeaderList left = h;
    drop_credentials_leaving(url("http://a.test/1"), url(other), left);
    ASSERT_EQ(left.size(), 1u) << other;
    EXPECT_EQ(left[0].first, "X-Kept");
  }
}

}  // namespace
}  // namespace uvget
