// Unit tests for the request head writer: exact bytes, header layering, header validation.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "http/request_writer.hpp"
#include "url.hpp"

namespace uvget {
namespace {

constexpr std::string_view kAgent = "uvget-test/1.0";

Url url(std::string_view text) {
  auto r = Url::parse(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : Url{};
}

std::string write(Method m, std::string_view u, const HeaderList& client = {},
                  const HeaderList& request = {}, std::string_view agent = kAgent) {
  std::string out;
  write_request(out, m, url(u), agent, client, request);
  return out;
}

std::string request_line(std::string_view u, Method m = Method::get) {
  std::string out = write(m, u);
  return out.substr(0, out.find("\r\n") + 2);
}

// --- Exact bytes ----------------------------------------------------------------------------

TEST(WriteRequest, SimpleGetExactBytes) {
  EXPECT_EQ(write(Method::get, "http://example.com/file.bin"),
            "GET /file.bin HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "User-Agent: uvget-test/1.0\r\n"
            "Accept: */*\r\n"
            "\r\n");
}

TEST(WriteRequest, SimpleHeadExactBytes) {
  EXPECT_EQ(write(Method::head, "https://example.com"),
            "HEAD / HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "User-Agent: uvget-test/1.0\r\n"
            "Accept: */*\r\n"
            "\r\n");
}

TEST(WriteRequest, AppendsToExistingOutput) {
  std::string out = "previous";
  write_request(out, Method::get, url("http://h/"), kAgent, {}, {});
  EXPECT_EQ(out.rfind("previous", 0), 0u);
  EXPECT_EQ(out.substr(8, 16), "GET / HTTP/1.1\r\n");
}

TEST(WriteRequest, HostHasNonDefaultPort) {
  EXPECT_NE(write(Method::get, "http://example.com:8080/").find("\r\nHost: example.com:8080\r\n"),
            std::string::npos);
  EXPECT_NE(write(Method::get, "https://example.com:80/").find("\r\nHost: example.com:80\r\n"),
            std::string::npos);
}

TEST(WriteRequest, HostOmitsDefaultPort) {
  EXPECT_NE(write(Method::get, "http://example.com:80/").find("\r\nHost: example.com\r\n"),
            std::string::npos);
  EXPECT_NE(write(Method::get, "https://EXAMPLE.com:443/").find("\r\nHost: example.com\r\n"),
            std::string::npos);
}

TEST(WriteRequest, Ipv6HostInBrackets) {
  EXPECT_EQ(write(Method::get, "http://[::1]:8080/x"),
            "GET /x HTTP/1.1\r\n"
            "Host: [::1]:8080\r\n"
            "User-Agent: uvget-test/1.0\r\n"
            "Accept: */*\r\n"
            "\r\n");
  EXPECT_NE(write(Method::get, "http://[2001:db8::1]/").find("\r\nHost: [2001:db8::1]\r\n"),
            std::string::npos);
}

TEST(WriteRequest, UserinfoNeverSent) {
  std::string out = write(Method::get, "http://user:secret@example.com/");
  EXPECT_EQ(out.find("secret"), std::string::npos) << out;
  EXPECT_EQ(out.find("user"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nHost: example.com\r\n"), std::string::npos) << out;
}

TEST(WriteRequest, QueryInTarget) {
  EXPECT_EQ(request_line("http://h/search?q=a%20b&x=1#frag"),
            "GET /search?q=a%20b&x=1 HTTP/1.1\r\n");
  EXPECT_EQ(request_line("http://h/p?"), "GET /p? HTTP/1.1\r\n");
  EXPECT_EQ(request_line("http://h/p"), "GET /p HTTP/1.1\r\n");
  EXPECT_EQ(request_line("http://h?k=v", Method::head), "HEAD /?k=v HTTP/1.1\r\n");
}

TEST(WriteRequest, PercentEncodedTargetSentAsParsed) {
  EXPECT_EQ(request_line("http://h/a b/%2F"), "GET /a%20b/%2F HTTP/1.1\r\n");
}

// --- Header layering ------------------------------------------------------------------------

TEST(WriteRequest, ClientAndRequestHeadersFollowDefaultsInOrder) {
  EXPECT_EQ(write(Method::get, "http://h/", {{"X-Client", "c"}, {"X-Both", "from-client"}},
                  {{"X-Request", "r"}, {"X-Both", "from-request"}}),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "User-Agent: uvget-test/1.0\r\n"
            "Accept: */*\r\n"
            "X-Client: c\r\n"
            "X-Request: r\r\n"
            "X-Both: from-request\r\n"
            "\r\n");
}

TEST(WriteRequest, RequestHeaderOverridesClientHeaderCaseInsensitively) {
  std::string out = write(Method::get, "http://h/", {{"X-Token", "old"}}, {{"x-TOKEN", "new"}});
  EXPECT_EQ(out.find("old"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nx-TOKEN: new\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("X-Token"), std::string::npos) << out;
}

TEST(WriteRequest, DefaultHeadersOverriddenInPlace) {
  EXPECT_EQ(write(Method::get, "http://h/", {{"accept", "text/html"}, {"USER-AGENT", "client"}},
                  {{"Accept", "application/json"}}),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "User-Agent: client\r\n"
            "Accept: application/json\r\n"
            "\r\n");
}

TEST(WriteRequest, HostCanBeOverridden) {
  std::string out = write(Method::get, "http://h:81/", {}, {{"host", "virtual.test"}});
  EXPECT_NE(out.find("\r\nHost: virtual.test\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("h:81"), std::string::npos) << out;
}

TEST(WriteRequest, EmptyValueRemovesDefaultHeader) {
  EXPECT_EQ(write(Method::get, "http://h/", {}, {{"User-Agent", ""}, {"accept", ""}}),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(write(Method::get, "http://h/", {{"Accept", ""}}),
            "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: uvget-test/1.0\r\n\r\n");
}

TEST(WriteRequest, EmptyUserAgentArgumentOmitsHeader) {
  EXPECT_EQ(write(Method::get, "http://h/", {}, {}, ""),
            "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n");
}

TEST(WriteRequest, RequestValueRestoresHeaderRemovedByClient) {
  std::string out = write(Method::get, "http://h/", {{"Accept", ""}, {"X-A", ""}},
                          {{"accept", "text/plain"}, {"X-A", "1"}});
  EXPECT_NE(out.find("\r\nAccept: text/plain\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nX-A: 1\r\n"), std::string::npos) << out;
}

TEST(WriteRequest, EmptyRequestValueRemovesClientHeader) {
  std::string out = write(Method::get, "http://h/", {{"X-A", "1"}, {"X-B", "2"}}, {{"x-a", ""}});
  EXPECT_EQ(out.find("X-A"), std::string::npos) << out;
  EXPECT_EQ(out.find("x-a"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nX-B: 2\r\n"), std::string::npos) << out;
}

TEST(WriteRequest, LaterDuplicateWinsWithinALayer) {
  EXPECT_EQ(write(Method::get, "http://h/", {{"X-A", "1"}, {"x-a", "2"}},
                  {{"X-B", "1"}, {"X-B", "2"}, {"X-C", "1"}, {"X-C", ""}}),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "User-Agent: uvget-test/1.0\r\n"
            "Accept: */*\r\n"
            "x-a: 2\r\n"
            "X-B: 2\r\n"
            "\r\n");
  std::string out = write(Method::get, "http://h/", {{"Accept", "a"}, {"ACCEPT", "b"}});
  EXPECT_NE(out.find("\r\nAccept: b\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find(": a\r\n"), std::string::npos) << out;
}

TEST(WriteRequest, EachHeaderNameAppearsOnce) {
  std::string out =
      write(Method::get, "http://h/", {{"Host", "c"}, {"X-A", "1"}, {"x-a", "2"}, {"X-B", "3"}},
            {{"HOST", "r"}, {"X-b", "4"}, {"x-B", "5"}, {"Accept", "*/*"}});
  auto count = [&](std::string_view needle) {
    std::size_t n = 0;
    for (std::size_t at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count("\r\nHost: r\r\n"), 1u) << out;
  EXPECT_EQ(count(": c\r\n"), 0u) << out;
  EXPECT_EQ(count("\r\nx-a: 2\r\n"), 1u) << out;
  EXPECT_EQ(count("\r\nx-B: 5\r\n"), 1u) << out;
  EXPECT_EQ(count(": 3\r\n") + count(": 4\r\n"), 0u) << out;
  EXPECT_EQ(count("Accept"), 1u) << out;
  EXPECT_EQ(count("\r\n\r\n"), 1u) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

// --- Helpers --------------------------------------------------------------------------------

TEST(Iequals, ComparesAsciiCaseInsensitively) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("ACCEPT", "accept"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Accept", "Accept-"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_FALSE(iequals("X-A", "X_A"));
  EXPECT_FALSE(iequals("[", "{"));  // 0x20 apart like a letter pair, but not letters
  EXPECT_FALSE(iequals("@", "`"));
}

TEST(ValidateHeaders, AcceptsTokenNamesAndPlainValues) {
  EXPECT_FALSE(validate_headers({}));
  EXPECT_FALSE(validate_headers({{"X-Token", "abc def"},
                                 {"Accept", ""},
                                 {"a!#$%&'*+-.^_`|~Z09", "tab\tinside; \"quoted\""},
                                 {"X-Utf8", "caf\xC3\xA9"}}));
}

TEST(ValidateHeaders, RefusesCrLfOrNulInValue) {
  for (std::string value : {std::string("a\rb"), std::string("a\nb"), std::string("a\r\nX-Evil: 1"),
                            std::string("a\0b", 3), std::string("\n")}) {
    Error e = validate_headers({{"X-Fine", "ok"}, {"X-Bad", value}});
    EXPECT_TRUE(e);
    EXPECT_EQ(e.code, make_error_code(Errc::bad_request));
    EXPECT_NE(e.message().find("X-Bad"), std::string::npos) << e.message();
  }
}

TEST(ValidateHeaders, RefusesNonTokenNames) {
  for (std::string name :
       {std::string(""), std::string("Bad Name"), std::string("Bad:Name"), std::string("Bad\tName"),
        std::string("X-A\r\nX-B"), std::string("(comment)"), std::string("a/b"),
        std::string("a\"b"), std::string("caf\xC3\xA9"), std::string("a\0b", 3), std::string("a@b"),
        std::string("a=b"), std::string("a,b"), std::string("{x}")}) {
    Error e = validate_headers({{name, "v"}});
    EXPECT_TRUE(e) << "name '" << name << "' accepted";
    EXPECT_EQ(e.code, make_error_code(Errc::bad_request)) << name;
  }
}

}  // namespace
}  // namespace uvget
