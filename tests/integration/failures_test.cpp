// Broken servers and networks: each failure gets its own error, naming the limit that ended it,
// and leaves no file.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class FailuresTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    dir_ = make_temp_dir("uvget-fail");
  }
  void TearDown() override {
    LoopTest::TearDown();
    remove_tree(dir_);
  }
  // Fetches into a file and checks that nothing is left under the final name or as .part.
  std::shared_ptr<Outcome> fetch_to_file(const std::string& url) {
    Request r;
    r.sink = make_file_sink(dir_ + "/out");
    return fetch(url, std::move(r));
  }
  void expect_no_file() {
    EXPECT_FALSE(exists(dir_ + "/out")) << "a failed download left its final file";
    EXPECT_FALSE(exists(dir_ + "/out.part")) << "a failed download left its .part file";
  }
  std::string dir_;
};

TEST_F(FailuresTest, TruncatedContentLengthBodyIsAnError) {
  TestServer server;
  server.route(
      "/t", Script()
                .send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + pattern_bytes(70'000))
                .close());
  auto o = fetch_to_file(server.url("/t"));
  run();
  ASSERT_TRUE(o->done);
  EXPECT_EQ(o->result.error.code, Errc::connection_closed) << o->result.error.message();
  EXPECT_NE(o->result.error.message().find(server.url("/t")), std::string::npos);
  EXPECT_NE(o->result.error.message().find("truncated"), std::string::npos)
      << o->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, TruncatedChunkedBodyIsAnError) {
  TestServer server;
  server.route("/t", Script()
                         .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "10\r\n0123456789abcdef\r\n10\r\n01234")
                         .close());
  auto o = fetch_to_file(server.url("/t"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::connection_closed) << o->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, ResetMidBodyIsAnError) {
  TestServer server;
  server.route(
      "/r", Script()
                .send("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern_bytes(300'000))
                .pause_ms(20)
                .reset());
  auto o = fetch_to_file(server.url("/r"));
  run();
  // Linux reports the reset itself only when nothing was left unread when it came; with bytes
  // still queued (the client waits for larger reads while a body streams fast) the reads return
  // them and then end of file. Either way the body is cut short, with the count in the message.
  EXPECT_TRUE(o->result.error.code == Errc::connection_reset ||
              o->result.error.code == Errc::connection_closed)
      << o->result.error.message();
  EXPECT_NE(o->result.error.message().find("300000"), std::string::npos)
      << o->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, ConnectionRefusedIsReported) {
  // Bind a port, then free it: nothing listens there.
  int port;
  {
    TestServer gone;
    port = gone.port();
  }
  auto o = fetch("http://127.0.0.1:" + std::to_string(port) + "/x");
  run();
  EXPECT_EQ(o->result.error.code, Errc::connect) << o->result.error.message();
  EXPECT_NE(o->result.error.message().find("ECONNREFUSED"), std::string::npos)
      << o->result.error.message();
  EXPECT_EQ(client().stats().connect_attempts, 1u) << "the refusal ended the only attempt";
}

TEST_F(FailuresTest, UnresolvableHostIsReported) {
  // An empty label fails inside the resolver library, with no query leaving the machine.
  auto o = fetch("http://bad..name/x");
  run();
  EXPECT_EQ(o->result.error.code, Errc::resolve) << o->result.error.message();
  EXPECT_NE(o->result.error.message().find("bad..name"), std::string::npos);
}

TEST_F(FailuresTest, ConnectTimeoutFiresOnTime) {
  BlackholeListener hole;
  ClientOptions o;
  o.connect_timeout_ms = 300;
  client(o);
  // Started before the attempt, due before its 300 ms are over: the attempt is still waiting
  // when this runs. (From now: the listener's set-up blocked.)
  std::shared_ptr<Outcome> out;
  bool checked_early = false;
  uv_update_time(&loop_);
  at_loop_ms(250, [&] {
    checked_early = true;
    EXPECT_FALSE(out->done) << "the connect timeout fired early: " << out->result.error.message();
  });
  out = fetch("http://127.0.0.1:" + std::to_string(hole.port()) + "/x");
  run();
  EXPECT_TRUE(checked_early) << "the connect timeout fired early: the loop ended first";
  EXPECT_EQ(out->result.error.code, Errc::connect_timeout) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("timed out after 300 ms"), std::string::npos)
      << out->result.error.message();
}

TEST_F(FailuresTest, StallBeforeHeadersHitsIdleTimeout) {
  TestServer server;
  server.route("/s", Script().stall());
  ClientOptions o;
  o.idle_timeout_ms = 300;
  client(o);
  auto out = fetch_to_file(server.url("/s"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::idle_timeout) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("no data for 300 ms waiting for the response"),
            std::string::npos)
      << out->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, StallMidBodyHitsIdleTimeout) {
  TestServer server;
  server.route("/s",
               Script()
                   .send("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + pattern_bytes(2000))
                   .stall());
  ClientOptions o;
  o.idle_timeout_ms = 300;
  client(o);
  auto out = fetch_to_file(server.url("/s"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::idle_timeout) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("2000 body bytes"), std::string::npos)
      << out->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, SlowButSteadyBodyIsNotAnIdleTimeout) {
  TestServer server;
  Script s;
  s.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  for (int i = 0; i < 10; ++i) s.pause_ms(100).send("x");
  server.route("/slow", s);
  ClientOptions o;
  o.idle_timeout_ms = 400;
  client(o);
  auto out = fetch(server.url("/slow"));
  run();
  EXPECT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(out->body, "xxxxxxxxxx");
}

TEST_F(FailuresTest, TotalTimeoutStopsATrickleThatIdleTimeoutAllows) {
  TestServer server;
  Script s;
  s.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  for (int i = 0; i < 100; ++i) s.pause_ms(50).send("x");
  server.route("/trickle", s);
  ClientOptions o;
  o.idle_timeout_ms = 1000;
  o.timeout_ms = 400;
  client(o);
  auto out = fetch_to_file(server.url("/trickle"));
  run();
  // The trickle alone would finish (in 5 s) without an error.
  EXPECT_EQ(out->result.error.code, Errc::timeout) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("timed out after 400 ms"), std::string::npos);
  expect_no_file();
}

TEST_F(FailuresTest, TotalTimeoutCountsTimeSpentQueued) {
  TestServer server;
  server.route("/stall", Script().stall());
  server.route("/ok", Script().send(http_response(200, "fine")));
  ClientOptions o;
  o.max_connections = 1;
  o.idle_timeout_ms = 0;
  client(o);
  Request r1, r2, r3;
  r1.timeout_ms = 600;  // holds the only connection, then times out
  r2.timeout_ms = 200;  // waits in the queue behind it and times out there
  auto stalled = fetch(server.url("/stall"), std::move(r1));
  auto queued = fetch(server.url("/ok"), std::move(r2));
  auto later = fetch(server.url("/ok"), std::move(r3));  // no deadline: runs once the line frees
  run();
  EXPECT_EQ(stalled->result.error.code, Errc::timeout) << stalled->result.error.message();
  EXPECT_EQ(queued->result.error.code, Errc::timeout) << queued->result.error.message();
  EXPECT_TRUE(later->result.ok()) << later->result.error.message();
}

TEST_F(FailuresTest, HugeHeaderBlockIsRefused) {
  TestServer server;
  std::string big = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 2000; ++i)
    big += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
  big += "Content-Length: 2\r\n\r\nok";
  server.route("/h", Script().send(big));
  auto out = fetch_to_file(server.url("/h"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::header_too_large) << out->result.error.message();
  expect_no_file();
}

TEST_F(FailuresTest, EndlessHeaderLineIsRefused) {
  TestServer server;
  server.route("/h",
               Script().send("HTTP/1.1 200 OK\r\nX-Long: " + std::string(200'000, 'a')).stall());
  auto out = fetch(server.url("/h"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::header_too_large) << out->result.error.message();
}

TEST_F(FailuresTest, NotFoundIsAnErrorAndWritesNothing) {
  TestServer server;  // default handler: 404
  auto out = fetch_to_file(server.url("/missing"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::http_status);
  EXPECT_EQ(out->result.status, 404);
  EXPECT_NE(out->result.error.message().find("404"), std::string::npos);
  expect_no_file();
}

TEST_F(FailuresTest, ErrorStatusCanBeAccepted) {
  TestServer server;
  server.route("/gone", Script().send(http_response(410, "gone body")));
  Request r;
  r.fail_on_http_error = false;
  auto out = fetch(server.url("/gone"), std::move(r));
  run();
  EXPECT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(out->result.status, 410);
  EXPECT_EQ(out->body, "gone body");
}

TEST_F(FailuresTest, GarbageResponseIsAParseError) {
  TestServer server;
  server.route("/g", Script().send("SSH-2.0-OpenSSH_9.2\r\n\r\n").close());
  server.route("/conflict", Script()
                                .send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                      "Content-Length: 6\r\n\r\nhello!")
                                .close());
  server.route("/te", Script()
                          .send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                          .close());
  server.route("/chunk", Script()
                             .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "zz\r\nhello\r\n0\r\n\r\n")
                             .close());
  server.route("/overflow", Script()
                                .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n")
                                .close());
  std::vector<std::shared_ptr<Outcome>> all;
  for (auto t : {"/g", "/conflict", "/te", "/chunk", "/overflow"})
    all.push_back(fetch(server.url(t)));
  run();
  for (auto& o : all)
    EXPECT_EQ(o->result.error.code, Errc::http_parse) << o->result.error.message();
}

TEST_F(FailuresTest, BadUrlIsRefusedAtOnce) {
  Request r;
  r.url = "ftp://example/x";
  bool called = false;
  Callbacks cbs;
  cbs.on_done = [&](const TransferResult&) { called = true; };
  auto id = client().get(std::move(r), std::move(cbs));
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::bad_url);
  EXPECT_NE(id.error().message().find("ftp"), std::string::npos);
  run();
  EXPECT_FALSE(called) << "a refused get() must never call back";
}

TEST_F(FailuresTest, DirectoryThatCannotHoldTheFileFailsCleanly) {
  TestServer server;
  server.route("/a", Script().send(http_response(200, pattern_bytes(100'000))));
  // A regular file where a directory should be: ENOTDIR even for root.
  std::string blocker = dir_ + "/not-a-dir";
  { std::ofstream(blocker) << "x"; }
  Request r;
  r.sink = make_file_sink(blocker + "/out");
  auto out = fetch(server.url("/a"), std::move(r));
  auto ok = fetch(server.url("/a"));  // the others go on
  run();
  EXPECT_EQ(out->result.error.code, Errc::file_io) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("ENOTDIR"), std::string::npos)
      << out->result.error.message();
  EXPECT_TRUE(ok->result.ok()) << ok->result.error.message();
}

}  // namespace
}  // namespace uvget::test
