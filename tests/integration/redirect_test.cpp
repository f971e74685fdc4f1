// Redirects: every code, relative Locations, the limit, bad targets, credentials per origin.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using RedirectTest = LoopTest;

Script redirect(int code, const std::string& location) {
  return Script().send(http_response(code, "moved", {{"Location", location}}));
}

TEST_F(RedirectTest, EveryRedirectCodeIsFollowed) {
  TestServer server;
  for (int code : {301, 302, 303, 307, 308})
    server.route("/r" + std::to_string(code),
                 redirect(code, "/dir/../final?c=" + std::to_string(code)));
  server.set_handler([](const RecordedRequest& r) {
    return Script().send(http_response(200, "final " + r.target));
  });
  std::vector<std::shared_ptr<Outcome>> all;
  for (int code : {301, 302, 303, 307, 308})
    all.push_back(fetch(server.url("/r" + std::to_string(code))));
  run();
  int i = 0;
  for (int code : {301, 302, 303, 307, 308}) {
    auto& o = all[i++];
    ASSERT_TRUE(o->result.ok()) << o->result.error.message();
    EXPECT_EQ(o->body, "final /final?c=" + std::to_string(code));
    EXPECT_EQ(o->result.redirects, 1);
    EXPECT_EQ(o->result.final_url, server.url("/final?c=" + std::to_string(code)));
    EXPECT_EQ(o->result.url, server.url("/r" + std::to_string(code)));
  }
}

TEST_F(RedirectTest, RelativeLocationResolvesAgainstTheCurrentUrl) {
  TestServer server;
  server.route("/a/b/c", redirect(302, "../x/y"));
  server.route("/a/x/y", redirect(302, "z?q=1"));
  server.route("/a/x/z?q=1", Script().send(http_response(200, "here")));
  auto o = fetch(server.url("/a/b/c"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "here");
  EXPECT_EQ(o->result.redirects, 2);
}

TEST_F(RedirectTest, LoopStopsAtTheLimit) {
  TestServer server;
  server.route("/loop", redirect(302, "/loop"));
  ClientOptions opts;
  opts.max_redirects = 4;
  client(opts);
  auto o = fetch(server.url("/loop"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::too_many_redirects) << o->result.error.message();
  EXPECT_EQ(server.requests().size(), 5u);  // the first request and 4 redirects
  EXPECT_EQ(server.accepted_connections(), 1)
      << "redirects to the same origin reuse the connection";
}

TEST_F(RedirectTest, NonHttpOrMissingLocationIsRefused) {
  TestServer server;
  server.route("/ftp", redirect(301, "ftp://127.0.0.1/file"));
  server.route("/js", redirect(302, "javascript:alert(1)"));
  server.route("/none", Script().send(http_response(302, "no location")));
  server.route("/empty", redirect(302, ""));
  std::vector<std::shared_ptr<Outcome>> all;
  for (auto t : {"/ftp", "/js", "/none", "/empty"}) all.push_back(fetch(server.url(t)));
  run();
  for (auto& o : all)
    EXPECT_EQ(o->result.error.code, Errc::bad_redirect) << o->result.error.message();
}

TEST_F(RedirectTest, CredentialsStayWithTheirOrigin) {
  TestServer other(
      [](const RecordedRequest&) { return Script().send(http_response(200, "other")); });
  TestServer server;
  server.route("/same", redirect(302, "/same2"));
  server.route("/same2", Script().send(http_response(200, "same")));
  server.route("/away", redirect(302, other.url("/landing")));
  Request r1, r2;
  r1.headers =
      r2.headers = {{"Authorization", "Bearer secret"}, {"Cookie", "s=1"}, {"X-Keep", "k"}};
  auto o1 = fetch(server.url("/same"), std::move(r1));
  auto o2 = fetch(server.url("/away"), std::move(r2));
  run();
  ASSERT_TRUE(o1->result.ok()) << o1->result.error.message();
  ASSERT_TRUE(o2->result.ok()) << o2->result.error.message();
  for (auto& req : server.requests()) {
    EXPECT_EQ(req.header("Authorization").value_or(""), "Bearer secret") << req.target;
    EXPECT_EQ(req.header("Cookie").value_or(""), "s=1") << req.target;
  }
  ASSERT_EQ(other.requests().size(), 1u);
  EXPECT_FALSE(other.requests()[0].header("Authorization"))
      << "credentials leaked to another origin";
  EXPECT_FALSE(other.requests()[0].header("Cookie")) << "cookie leaked to another origin";
  EXPECT_EQ(other.requests()[0].header("X-Keep").value_or(""), "k");
}

TEST_F(RedirectTest, RedirectBodyIsNotWrittenToTheSink) {
  TestServer server;
  std::string dir = make_temp_dir("uvget-redir");
  server.route("/from", redirect(301, "/to"));
  server.route("/to", Script().send(http_response(200, "real content")));
  Request r;
  r.sink = make_file_sink(dir + "/file");
  auto o = fetch(server.url("/from"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(read_file(dir + "/file"), "real content");
  remove_tree(dir);
}

}  // namespace
}  // namespace uvget::test
