// Unit tests for uvget::Http1Session, fed from byte arrays: no socket, no loop. A fake link plays
// the connection (must_close() shuts the session, as Connection::close does) and fake exchanges
// record what reaches them, so order and counts are asserted as the session produces them.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_session.hpp"

namespace uvget {
namespace {

constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxHeaderCount = 100;

using Log = std::vector<std::string>;

// The connection under the session, as far as the session can see it.
struct FakeLink final : Http1Session::Link {
  Log& log;
  Http1Session* session = nullptr;
  explicit FakeLink(Log& l) : log(l) {}

  void exchange_ending() override { log.push_back("link:ending"); }
  void next_response() override { log.push_back("link:next"); }
  void must_close() override {
    log.push_back("link:close");
    session->shut();  // what Connection::close does last
  }
  void released() override { log.push_back("link:released"); }
};

struct FakeExchange final : Exchange {
  std::string name;
  Log& log;
  std::string body;
  int status = 0;
  int done = 0;
  int unanswered = 0;
  Error error;
  bool retry_safe = false;
  bool server_broke = false;
  std::function<void()> after_done;  // what the transfer does next (park, close, submit)

  FakeExchange(std::string n, Log& l) : name(std::move(n)), log(l) {}

  void on_exchange_head(Response& head) override {
    status = head.status;
    log.push_back(name + ":head " + std::to_string(head.status));
  }
  void on_exchange_body(std::span<const std::byte> bytes) override {
    body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  void on_exchange_done(const Error& e, bool safe) override {
    ++done;
    error = e;
    retry_safe = safe;
    log.push_back(name + (e ? ":failed" : ":done"));
    if (after_done) after_done();
  }
  void on_exchange_unanswered(bool broke) override {
    ++unanswered;
    server_broke = broke;
    log.push_back(name + ":unanswered");
  }
};

struct Fixture {
  Log log;
  FakeLink link{log};
  Http1Session session{link, kMaxHeaderBytes, kMaxHeaderCount};
  std::vector<std::unique_ptr<FakeExchange>> exchanges;

  Fixture() { link.session = &session; }

  FakeExchange& submit(std::string name, bool head = false) {
    exchanges.push_back(std::make_unique<FakeExchange>(name, log));
    std::string request = (head ? "HEAD /" : "GET /") + name + " HTTP/1.1\r\nHost: h\r\n\r\n";
    session.submit(exchanges.back().get(), request, head);
    return *exchanges.back();
  }
  void receive(std::string_view bytes, bool more_pending = false) {
    session.receive(bytes.data(), bytes.size(), more_pending);
  }
  // One exchange answered in full on a fresh session, so the connection has kept alive once.
  void keep_alive_once() {
    submit("first");
    receive(kHello);
    log.clear();
  }
  static constexpr std::string_view kHello = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
};

const std::string kA = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\naaa";
const std::string kB =
    "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
    "2\r\nbb\r\n3;ext=1\r\nbbb\r\n0\r\nX-Trailer: t\r\n\r\n";
const std::string kC = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";  // to a HEAD
const std::string kD =
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndddd";

TEST(Http1Session, AResponseEndsItsExchangeAndLeavesTheConnectionReusable) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  EXPECT_EQ(f.session.take_output(), "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_FALSE(f.session.has_output());
  EXPECT_EQ(f.session.answering(), &a);
  EXPECT_EQ(f.session.where(), "before any response");
  f.receive(kA);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "aaa");
  EXPECT_EQ(a.done, 1);
  EXPECT_FALSE(a.error);
  EXPECT_TRUE(f.session.reusable());
  EXPECT_EQ(f.session.in_flight(), 0u);
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:ending", "a:done"}));
  // The next request on it is a reused one.
  f.submit("b");
  EXPECT_TRUE(f.session.reused());
  EXPECT_EQ(f.session.requests(), 2u);
}

// Three pipelined responses (a Content-Length body, a chunked one with an extension and
// trailers, one to a HEAD that announces a length but has no body) and one after a 100
// Continue, cut into three pieces at every pair of places: each exchange gets its own head and
// body whatever the cuts, in order, and the connection stays usable.
TEST(Http1Session, PipelinedResponsesCutAnywhereReachTheirExchangesInOrder) {
  const std::string wire = kA + kB + kC + kD;
  for (std::size_t i = 0; i <= wire.size(); ++i) {
    for (std::size_t j = i; j <= wire.size(); ++j) {
      Fixture f;
      FakeExchange& a = f.submit("a");
      FakeExchange& b = f.submit("b");
      FakeExchange& c = f.submit("c", /*head=*/true);
      FakeExchange& d = f.submit("d");
      ASSERT_EQ(f.session.in_flight(), 4u);
      f.receive(std::string_view(wire).substr(0, i));
      f.receive(std::string_view(wire).substr(i, j - i));
      f.receive(std::string_view(wire).substr(j));
      SCOPED_TRACE("cut at " + std::to_string(i) + " and " + std::to_string(j));
      ASSERT_EQ(f.log,
                (Log{"a:head 200", "link:next", "a:done", "b:head 404", "link:next", "b:done",
                     "c:head 200", "link:next", "c:done", "d:head 200", "link:ending", "d:done"}));
      EXPECT_EQ(a.body, "aaa");
      EXPECT_EQ(b.body, "bbbbb");
      EXPECT_EQ(c.body, "");
      EXPECT_EQ(d.body, "dddd");
      EXPECT_TRUE(f.session.reusable());
      EXPECT_EQ(f.session.in_flight(), 0u);
    }
  }
}

// The client hands a parked connection its next request from the done callback of the last.
TEST(Http1Session, AnExchangeMaySubmitTheNextRequestFromItsDoneCallback) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  FakeExchange* b = nullptr;
  a.after_done = [&] {
    ASSERT_TRUE(f.session.reusable());
    b = &f.submit("b");
  };
  f.receive(kA);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(f.session.answering(), b);
  EXPECT_TRUE(f.session.reused());
  EXPECT_EQ(f.session.take_output(),
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  f.receive(kD);
  EXPECT_EQ(b->body, "dddd");
  EXPECT_EQ(f.log,
            (Log{"a:head 200", "link:ending", "a:done", "b:head 200", "link:ending", "b:done"}));
}

TEST(Http1Session, AnAbandonedSmallResponseBehindIsReadAwayThenTheConnectionReleased) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  FakeExchange& b = f.submit("b");
  f.session.abandon(&b);
  f.receive(kA + kA);
  EXPECT_EQ(a.done, 1);
  EXPECT_EQ(b.done + b.unanswered, 0);
  EXPECT_EQ(b.status, 0);
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:next", "a:done", "link:ending", "link:released"}));
  EXPECT_TRUE(f.session.reusable());
  EXPECT_EQ(f.session.in_flight(), 0u);
}

TEST(Http1Session, AnAbandonedLargeResponseBehindClosesAndTheRestGoUnanswered) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  FakeExchange& b = f.submit("b");
  FakeExchange& c = f.submit("c");
  f.session.abandon(&b);
  f.receive(kA + "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\nxxxx");
  EXPECT_EQ(a.done, 1);
  EXPECT_EQ(b.status, 0);
  EXPECT_EQ(c.unanswered, 1);
  EXPECT_FALSE(c.server_broke);
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:next", "a:done", "link:close", "c:unanswered"}));
  EXPECT_TRUE(f.session.is_shut());
}

TEST(Http1Session, AbandoningTheExchangeBeingAnsweredClosesTheConnection) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  f.receive("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
  f.session.abandon(&a);
  EXPECT_EQ(a.done, 0);  // it asked: nothing more is reported to it
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:close"}));
  f.receive("cdefgh");
  EXPECT_EQ(a.body, "ab");
}

// Connection: close with requests pipelined behind: the one answered is done, and those behind
// are told they went unanswered, the last first (each is put back at the front of its queue).
TEST(Http1Session, ConnectionCloseLeavesTheRequestsBehindUnansweredLastFirst) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  FakeExchange& b = f.submit("b");
  FakeExchange& c = f.submit("c");
  a.after_done = [&] {
    if (!f.session.reusable()) f.link.must_close();
  };
  f.receive("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\naaa");
  EXPECT_EQ(a.body, "aaa");
  EXPECT_FALSE(a.error);
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:ending", "a:done", "link:close", "c:unanswered",
                        "b:unanswered"}));
  EXPECT_FALSE(b.server_broke);
  EXPECT_FALSE(c.server_broke);
}

// The server closes after one answer although it said nothing of closing: the pipelined
// request behind was dropped. It goes again elsewhere (unanswered, not failed), and the server
// is marked as one that breaks pipelining.
TEST(Http1Session, APipelinedRequestDroppedUnannouncedIsUnansweredAndMarksTheServer) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  FakeExchange& b = f.submit("b");
  FakeExchange& c = f.submit("c");
  f.receive(kA);
  f.session.on_eof(true);
  EXPECT_EQ(a.done, 1);
  EXPECT_EQ(b.done, 0);
  EXPECT_EQ(b.unanswered, 1);
  EXPECT_EQ(c.unanswered, 1);
  EXPECT_TRUE(b.server_broke);
  EXPECT_TRUE(c.server_broke);
  EXPECT_EQ(f.log, (Log{"a:head 200", "link:next", "a:done", "link:ending", "link:close",
                        "c:unanswered", "b:unanswered"}));
}

TEST(Http1Session, AFailureIsRetrySafeOnlyOnAReusedConnectionBeforeAnyByte) {
  {  // a fresh connection: the request may have been acted on
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.session.fail(Error(Errc::connection_reset, "reset"));
    EXPECT_EQ(a.done, 1);
    EXPECT_EQ(a.error.code, make_error_code(Errc::connection_reset));
    EXPECT_FALSE(a.retry_safe);
  }
  {  // a reused one, closed before a byte of the answer: the server dropped it while idle
    Fixture f;
    f.keep_alive_once();
    FakeExchange& b = f.submit("b");
    f.session.on_eof(true);
    EXPECT_EQ(b.error.code, make_error_code(Errc::connection_closed));
    EXPECT_TRUE(b.retry_safe);
    EXPECT_FALSE(f.session.reusable());
  }
  {  // a reused one that answered a byte first
    Fixture f;
    f.keep_alive_once();
    FakeExchange& b = f.submit("b");
    f.receive("H");
    f.session.fail(Error(Errc::connection_reset, "reset"));
    EXPECT_TRUE(b.error);
    EXPECT_FALSE(b.retry_safe);
  }
  {  // a reused one that timed out: the server may still be working on it
    Fixture f;
    f.keep_alive_once();
    FakeExchange& b = f.submit("b");
    f.session.fail(Error(Errc::idle_timeout, "no data"));
    EXPECT_FALSE(b.retry_safe);
  }
}

TEST(Http1Session, OnlyATrustedEndEndsACloseDelimitedBody) {
  const std::string_view head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
  {
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.receive(head);
    EXPECT_EQ(a.done, 0);
    EXPECT_EQ(f.session.where(), "after 13 body bytes");
    f.session.on_eof(true);
    EXPECT_EQ(a.done, 1);
    EXPECT_FALSE(a.error);
    EXPECT_EQ(a.body, "until the end");
    EXPECT_FALSE(f.session.reusable());
  }
  {  // TLS without close_notify: it may be a truncation
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.receive(head);
    f.session.on_eof(false);
    EXPECT_EQ(a.done, 1);
    EXPECT_EQ(a.error.code, make_error_code(Errc::connection_closed));
    EXPECT_NE(a.error.detail.find("after 13 body bytes"), std::string::npos) << a.error.detail;
  }
  {  // a Content-Length body cut short fails whatever the end
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.receive("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    f.session.on_eof(true);
    EXPECT_EQ(a.error.code, make_error_code(Errc::connection_closed));
    EXPECT_NE(a.error.detail.find("3 body bytes of 10"), std::string::npos) << a.error.detail;
  }
}

TEST(Http1Session, BytesBeyondTheResponseOrStillUndecryptedMakeTheConnectionUnusable) {
  {
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.receive(kA + "HTTP/1.1 200");  // nothing was asked for these
    EXPECT_EQ(a.done, 1);
    EXPECT_FALSE(a.error);
    EXPECT_FALSE(f.session.reusable());
  }
  {
    Fixture f;
    FakeExchange& a = f.submit("a");
    f.receive(kA, /*more_pending=*/true);
    EXPECT_EQ(a.done, 1);
    EXPECT_FALSE(f.session.reusable());
  }
}

TEST(Http1Session, AByteOrAnEndOnAnIdleSessionClosesIt) {
  {
    Fixture f;
    f.keep_alive_once();
    f.receive("x");
    EXPECT_EQ(f.log, (Log{"link:close"}));
  }
  {
    Fixture f;
    f.keep_alive_once();
    f.session.on_eof(true);
    EXPECT_EQ(f.log, (Log{"link:close"}));
  }
  {
    Fixture f;
    f.keep_alive_once();
    f.receive("");  // nothing is not out of step
    EXPECT_TRUE(f.log.empty());
  }
}

TEST(Http1Session, PipeliningWaitsForAKeepAliveAndNeverQueuesBehindALargeOrEndingBody) {
  Fixture f;
  f.submit("a");
  EXPECT_FALSE(f.session.can_pipeline(4));  // not yet known to keep alive
  f.receive(kA);
  f.submit("b");
  EXPECT_TRUE(f.session.can_pipeline(4));
  EXPECT_FALSE(f.session.can_pipeline(1));  // the depth is reached
  f.receive("HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n");
  EXPECT_FALSE(f.session.can_pipeline(4));  // its requests would wait for all of it
  EXPECT_EQ(f.session.identity_body_left(), 300000u);
  f.receive(std::string(300000, 'x'));

  f.submit("c");
  f.receive("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
  EXPECT_TRUE(f.session.can_pipeline(4));  // small enough to wait behind
  f.receive(std::string(1000, 'x'));

  f.submit("d");
  f.receive("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_FALSE(f.session.can_pipeline(4));  // length unknown
  f.receive("0\r\n\r\n");

  f.submit("e");
  f.receive("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n");
  EXPECT_FALSE(f.session.can_pipeline(4));  // it ends the connection
}

TEST(Http1Session, AMalformedResponseFailsItsExchangeNotRetrySafe) {
  Fixture f;
  f.keep_alive_once();
  FakeExchange& a = f.submit("a");
  f.receive("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc");
  EXPECT_EQ(a.done, 1);
  EXPECT_TRUE(a.error);
  EXPECT_FALSE(a.retry_safe);
  EXPECT_FALSE(f.session.reusable());
}

TEST(Http1Session, AnExchangeThatClosesFromItsHeadGetsNothingMore) {
  struct Closer final : Exchange {
    FakeLink& link;
    int calls = 0;
    explicit Closer(FakeLink& l) : link(l) {}
    void on_exchange_head(Response&) override {
      ++calls;
      link.must_close();
    }
    void on_exchange_body(std::span<const std::byte>) override { ++calls; }
    void on_exchange_done(const Error&, bool) override { ++calls; }
    void on_exchange_unanswered(bool) override { ++calls; }
  };
  Fixture f;
  Closer closer(f.link);
  f.session.submit(&closer, "GET / HTTP/1.1\r\n\r\n", false);
  FakeExchange& behind = f.submit("behind");
  f.receive(kA + kA);
  EXPECT_EQ(closer.calls, 1);
  EXPECT_EQ(behind.unanswered, 1);
  EXPECT_EQ(behind.done, 0);
  EXPECT_EQ(f.log, (Log{"link:close", "behind:unanswered"}));
}

TEST(Http1Session, AfterShutNothingIsReported) {
  Fixture f;
  FakeExchange& a = f.submit("a");
  f.session.shut();
  f.receive(kA);
  f.session.on_eof(false);
  f.session.fail(Error(Errc::connection_reset, "reset"));
  EXPECT_EQ(a.done + a.unanswered, 0);
  EXPECT_TRUE(f.log.empty());
  EXPECT_FALSE(f.session.has_output());
}

}  // namespace
}  // namespace uvget
