// End-to-end GETs against the scripted test server: every body framing, sinks, headers.
#include <gtest/gtest.h>

#include "support/certs.hpp"
#include "support/loop_fixture.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using GetTest = LoopTest;

TEST_F(GetTest, ContentLengthBodyArrivesWhole) {
  TestServer server;
  std::string body = pattern_bytes(100'000, 1);
  server.route("/a", Script().send(http_response(200, body)));
  auto o = fetch(server.url("/a"));
  run();
  ASSERT_TRUE(o->done);
  EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 200);
  EXPECT_EQ(o->result.bytes, body.size());
  EXPECT_EQ(o->body, body);
  EXPECT_EQ(o->result.final_url, server.url("/a"));
  EXPECT_EQ(o->result.attempts, 1);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/a");
  EXPECT_EQ(server.requests()[0].method, "GET");
}

TEST_F(GetTest, ChunkedBodySplitAcrossWritesIsReassembled) {
  TestServer server;
  server.route("/c", Script()
                         .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
                         .pause_ms(30)
                         .send("lo\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"));
  auto o = fetch(server.url("/c"));
  run();
  ASSERT_TRUE(o->done);
  EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "hello world");
}

TEST_F(GetTest, CloseDelimitedBodyEndsAtEof) {
  TestServer server;
  std::string body = pattern_bytes(50'000, 2);
  server.route("/e", Script().send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body).close());
  auto o = fetch(server.url("/e"));
  run();
  ASSERT_TRUE(o->done);
  EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, body);
}

TEST_F(GetTest, InterimResponsesAreSkipped) {
  TestServer server;
  server.route("/i", Script()
                         .send("HTTP/1.1 100 Continue\r\n\r\n")
                         .send("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n")
                         .send(http_response(200, "final")));
  auto o = fetch(server.url("/i"));
  run();
  ASSERT_TRUE(o->done);
  EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 200);
  EXPECT_EQ(o->body, "final");
  EXPECT_EQ(o->heads, 1);
}

TEST_F(GetTest, HeadRequestReadsNoBody) {
  TestServer server;
  // A HEAD response announces a length but sends no body; a second request proves the
  // connection stayed in step.
  server.set_handler([](const RecordedRequest& r) {
    if (r.method == "HEAD") return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    return Script().send(http_response(200, "get"));
  });
  Request head;
  head.method = Method::head;
  auto o1 = fetch(server.url("/h"), std::move(head));
  run();
  auto o2 = fetch(server.url("/g"));
  run();
  ASSERT_TRUE(o1->done && o2->done);
  EXPECT_TRUE(o1->result.ok()) << o1->result.error.message();
  EXPECT_EQ(o1->result.bytes, 0u);
  EXPECT_TRUE(o2->result.ok()) << o2->result.error.message();
  EXPECT_EQ(o2->body, "get");
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_EQ(server.requests()[0].method, "HEAD");
}

TEST_F(GetTest, RequestCarriesHostUserAgentAndExtraHeaders) {
  TestServer server;
  server.route("/h", Script().send(http_response(200, "x")));
  ClientOptions opts;
  opts.user_agent = "test-agent/1";
  opts.headers = {{"X-Client", "c"}, {"Accept", "text/plain"}};
  client(opts);
  Request req;
  req.headers = {{"X-Request", "r"}, {"x-client", "overridden"}};
  auto o = fetch(server.url("/h"), std::move(req));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto r = server.requests().at(0);
  EXPECT_EQ(r.header("Host").value_or(""), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.header("User-Agent").value_or(""), "test-agent/1");
  EXPECT_EQ(r.header("Accept").value_or(""), "text/plain");
  EXPECT_EQ(r.header("X-Request").value_or(""), "r");
  EXPECT_EQ(r.header("X-Client").value_or(""), "overridden");
}

TEST_F(GetTest, OnDataSeesEveryByteWithoutASink) {
  TestServer server;
  std::string body = pattern_bytes(300'000, 3);
  server.route("/d", Script().send(http_response(200, body)));
  std::string seen;
  bool done = false;
  Request req;
  req.url = server.url("/d");
  Callbacks cbs;
  cbs.on_data = [&](std::span<const std::byte> b) {
    seen.append(reinterpret_cast<const char*>(b.data()), b.size());
  };
  cbs.on_done = [&](const TransferResult& r) {
    done = true;
    EXPECT_TRUE(r.ok()) << r.error.message();
  };
  ASSERT_TRUE(client().get(std::move(req), std::move(cbs)));
  run();
  EXPECT_TRUE(done);
  EXPECT_EQ(seen, body);
}

TEST_F(GetTest, FileSinkWritesFinalNameOnlyWhenComplete) {
  TestServer server;
  std::string dir = make_temp_dir("uvget-get");
  std::string small = pattern_bytes(1000, 4), large = pattern_bytes(5 * 1024 * 1024, 5);
  server.route("/small", Script().send(http_response(200, small)));
  // The large body arrives in pieces with pauses, so writes interleave with reads.
  Script s;
  s.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(large.size()) + "\r\n\r\n");
  for (std::size_t off = 0; off < large.size(); off += 1024 * 1024)
    s.send(large.substr(off, 1024 * 1024)).pause_ms(5);
  server.route("/large", s);
  Request r1, r2;
  r1.sink = make_file_sink(dir + "/small");
  r2.sink = make_file_sink(dir + "/large");
  auto o1 = fetch(server.url("/small"), std::move(r1));
  auto o2 = fetch(server.url("/large"), std::move(r2));
  run();
  ASSERT_TRUE(o1->result.ok()) << o1->result.error.message();
  ASSERT_TRUE(o2->result.ok()) << o2->result.error.message();
  EXPECT_EQ(read_file(dir + "/small"), small);
  EXPECT_EQ(read_file(dir + "/large"), large);
  EXPECT_FALSE(exists(dir + "/small.part"));
  EXPECT_FALSE(exists(dir + "/large.part"));
  remove_tree(dir);
}

TEST_F(GetTest, EmptyBodyMakesAnEmptyFile) {
  TestServer server;
  std::string dir = make_temp_dir("uvget-get");
  server.route("/empty", Script().send(http_response(200, "")));
  Request r;
  r.sink = make_file_sink(dir + "/empty");
  auto o = fetch(server.url("/empty"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(exists(dir + "/empty"));
  EXPECT_EQ(read_file(dir + "/empty"), "");
  remove_tree(dir);
}

TEST_F(GetTest, LocalhostNameIsResolvedAndCached) {
  TestServer server;
  server.set_handler(
      [](const RecordedRequest&) { return Script().send(http_response(200, "ok")); });
  ClientOptions o;
  o.max_connections = 4;
  o.max_per_host = 4;
  client(o);
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 20; ++i)
    all.push_back(
        fetch("http://localhost:" + std::to_string(server.port()) + "/n" + std::to_string(i)));
  run();
  for (auto& o2 : all) EXPECT_TRUE(o2->result.ok()) << o2->result.error.message();
  auto st = client().stats();
  EXPECT_LE(st.dns_lookups, 1u);
  EXPECT_EQ(st.transfers_done, 20u);
}

}  // namespace
}  // namespace uvget::test

namespace uvget::test {
namespace {

TEST_F(GetTest, Ipv6LoopbackLiteralWorks) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); }, "::1");
  auto o = fetch(server.url("/six"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "/six");
  EXPECT_EQ(server.requests().at(0).header("Host").value_or(""),
            "[::1]:" + std::to_string(server.port()));
}

TEST_F(GetTest, NextAddressIsTriedWhenAConnectFails) {
  TestServer server(
      [](const RecordedRequest&) { return Script().send(http_response(200, "found")); });
  // Nothing listens on ::1 at this port (the server is on 127.0.0.1): the first address is
  // refused and the second one answers.
  ClientOptions opts;
  opts.resolve_overrides = {{"multi.test", {"::1", "127.0.0.1"}}};
  client(opts);
  auto o = fetch("http://multi.test:" + std::to_string(server.port()) + "/x");
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "found");
  EXPECT_EQ(server.requests().at(0).header("Host").value_or(""),
            "multi.test:" + std::to_string(server.port()));
}

TEST_F(GetTest, AllAddressesFailingReportsTheLastAndTheCount) {
  int port;
  {
    TestServer gone;
    port = gone.port();
  }
  ClientOptions opts;
  opts.resolve_overrides = {{"nowhere.test", {"::1", "127.0.0.1"}}};
  client(opts);
  auto o = fetch("http://nowhere.test:" + std::to_string(port) + "/x");
  run();
  EXPECT_EQ(o->result.error.code, Errc::connect);
  EXPECT_NE(o->result.error.message().find("tried 2 addresses"), std::string::npos)
      << o->result.error.message();
}

TEST_F(GetTest, BadResolveOverrideIsRefusedAtCreate) {
  ClientOptions opts;
  opts.resolve_overrides = {{"x.test", {"not-an-ip"}}};
  auto c = Client::create(&loop_, opts);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::bad_request);
}

}  // namespace
}  // namespace uvget::test

namespace uvget::test {
namespace {

// While a large body streams in fast the client asks the kernel to wake it only for larger
// amounts (SO_RCVLOWAT); the end of a body, a slow tail and a stall must still be seen at once.
class WakeupTest : public LoopTest {
 protected:
  static Script fast_then_slow_tail(const std::string& body, std::size_t fast) {
    Script s;
    s.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body.substr(0, fast));
    for (std::size_t at = fast; at < body.size(); at += 700)
      s.pause_ms(20).send(body.substr(at, 700));
    return s;
  }
};

TEST_F(WakeupTest, ASlowTailAfterAFastStartArrivesWithoutWaitingForTheIdleTimeout) {
  std::string body = pattern_bytes(3'000'000 + 5'000, 9);
  TestServer server;
  server.route("/tail", fast_then_slow_tail(body, 3'000'000));
  server.route("/again", Script().send(http_response(200, "next")));
  ClientOptions o;
  // The tail takes ~150 ms. Left in the kernel (a missed wake-up), it would end the transfer
  // with this idle timeout.
  o.idle_timeout_ms = 2000;
  client(o);
  auto t = fetch(server.url("/tail"));
  run();
  ASSERT_TRUE(t->result.ok()) << t->result.error.message();
  EXPECT_EQ(t->body, body);
  // The connection goes back to the pool waking for any byte: the next response is seen.
  auto n = fetch(server.url("/again"));
  run();
  ASSERT_TRUE(n->result.ok()) << n->result.error.message();
  EXPECT_EQ(n->body, "next");
  EXPECT_TRUE(n->result.reused_connection);
}

TEST_F(WakeupTest, OverTlsToo) {
  const TestCerts& certs = shared_test_certs();
  std::string body = pattern_bytes(3'000'000 + 5'000, 10);
  TestServer server(TlsServerFiles{certs.good_cert, certs.good_key});
  server.route("/tail", fast_then_slow_tail(body, 3'000'000));
  ClientOptions o;
  o.ca_file = certs.ca_cert;
  o.idle_timeout_ms = 2000;  // what a missed wake-up would end with
  client(o);
  auto t = fetch(server.localhost_url("/tail"));
  run();
  ASSERT_TRUE(t->result.ok()) << t->result.error.message();
  EXPECT_EQ(t->body, body);
}

TEST_F(WakeupTest, AStallAfterAFastStartIsAnIdleTimeout) {
  std::string body = pattern_bytes(2'000'000, 11);
  TestServer server;
  server.route("/stall",
               Script().send("HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + body).stall());
  ClientOptions o;
  o.idle_timeout_ms = 300;
  client(o);
  auto t = fetch(server.url("/stall"));
  run();
  EXPECT_EQ(t->result.error.code, Errc::idle_timeout) << t->result.error.message();
  EXPECT_NE(t->result.error.message().find("no data for 300 ms"), std::string::npos)
      << t->result.error.message();
}

}  // namespace
}  // namespace uvget::test
