// Per-host politeness: request rates and waits per origin (on one loop and across loops), and
// robots.txt, seen from the client's own count at probes on its loop and from the server's log.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class PolitenessTest : public LoopTest {
 protected:
  // The client's requests sent so far, read by a probe `ms` after now on the loop: requests
  // start at the loop time of the pump, so the first is at 0 or later and the kth, paced by
  // G ms, at (k-1) G or later.
  void count_at(std::uint64_t ms, std::uint64_t* out) {
    at_loop_ms(ms, [this, out] { *out = client().stats().requests_sent; });
  }
};

TEST_F(PolitenessTest, RequestsToOneHostKeepToTheRatePerHost) {
  TestServer server;
  ClientOptions o;
  o.max_rate_per_host = 10;  // one every 100 ms
  client(o);
  std::uint64_t at250 = 0, at450 = 0;
  count_at(250, &at250);
  count_at(450, &at450);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 6; ++i) outs.push_back(fetch(server.url("/r" + std::to_string(i))));
  run();
  for (auto& out : outs) EXPECT_EQ(out->result.status, 404);  // the default handler's answer
  EXPECT_EQ(server.requests().size(), 6u);
  EXPECT_GE(at250, 1u) << "the probe did not run";
  EXPECT_LE(at250, 3u) << "more than 3 requests within 250 ms at 10 a second";
  EXPECT_LE(at450, 5u) << "more than 5 requests within 450 ms at 10 a second";
}

TEST_F(PolitenessTest, AWaitPacesEachHostAloneAndOthersAreNotHeldUp) {
  TestServer a, b;
  ClientOptions o;
  o.wait_ms = 300;
  client(o);
  std::uint64_t at150 = 0;
  count_at(150, &at150);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 3; ++i) {
    outs.push_back(fetch(a.url("/a" + std::to_string(i))));
    outs.push_back(fetch(b.url("/b" + std::to_string(i))));
  }
  run();
  for (auto& out : outs) EXPECT_TRUE(out->done);
  EXPECT_EQ(a.requests().size(), 3u);
  EXPECT_EQ(b.requests().size(), 3u);
  EXPECT_LE(at150, 2u) << "a host got a second request within its wait";
  // Both hosts were served from the start: each got one connection, one request at a time.
  EXPECT_EQ(a.accepted_connections(), 1);
  EXPECT_EQ(b.accepted_connections(), 1);
}

TEST_F(PolitenessTest, ARandomWaitIsNeverBelowHalfTheWait) {
  TestServer server;
  ClientOptions o;
  o.wait_ms = 200;
  o.random_wait = true;
  client(o);
  std::uint64_t at90 = 0;
  count_at(90, &at90);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 4; ++i) outs.push_back(fetch(server.url("/w" + std::to_string(i))));
  run();
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_LE(at90, 1u) << "a second request within half the wait";
}

// The pace holds across loops: the Runner keeps each origin on one loop when pacing is on (and
// gives that loop the whole per-host limit), so one client paces it. Seen from the server: every
// request to the host came over one connection, one after the other (two loops would have
// opened one each and sent in parallel).
TEST_F(PolitenessTest, PacingHoldsAcrossLoops) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  ClientOptions o;
  o.wait_ms = 50;
  auto r = Runner::create(&loop_, RunnerOptions{2, o});
  ASSERT_TRUE(r) << r.error().message();
  std::unique_ptr<Runner> runner = std::move(*r);
  int done = 0;
  for (int i = 0; i < 5; ++i) {
    Request req;
    req.url = server.url("/p" + std::to_string(i));
    req.sink = make_discard_sink();
    auto id = runner->get(std::move(req), {.on_done = [&](const TransferResult& res) {
                            EXPECT_TRUE(res.ok()) << res.error.message();
                            ++done;
                          }});
    ASSERT_TRUE(id);
  }
  run();
  EXPECT_EQ(done, 5);
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 5u);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].connection_id, seen[0].connection_id) << "a second loop sent to the host";
    EXPECT_EQ(seen[i].index_on_connection, static_cast<int>(i));
  }
  EXPECT_EQ(server.accepted_connections(), 1);
  runner->close([] {});
  run();
}

// ---- robots.txt ------------------------------------------------------------------------------

class RobotsTest : public LoopTest {
 protected:
  ClientOptions robots_on(int retries = 0) {
    ClientOptions o;
    o.robots = true;
    o.retries = retries;
    o.retry_wait_ms = 5;
    o.retry_max_wait_ms = 10;
    return o;
  }
  static std::vector<std::string> targets(const TestServer& server) {
    std::vector<std::string> out;
    for (auto& r : server.requests()) out.push_back(r.target);
    return out;
  }
  static int count(const std::vector<std::string>& v, const std::string& x) {
    return static_cast<int>(std::count(v.begin(), v.end(), x));
  }
};

Script ok_body(const RecordedRequest& r) {
  return Script().send(http_response(200, "page " + r.target));
}

TEST_F(RobotsTest, RulesDecideWhichUrlsAreRequestedAndRefusedOnesNeverAre) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(200,
                                                          "User-agent: *\n"
                                                          "Disallow: /\n"
                                                          "\n"
                                                          "User-agent: uvget\n"
                                                          "Disallow: /private\n"
                                                          "Allow: /private/ok\n"
                                                          "Disallow: /*.pdf$\n")));
  client(robots_on());
  auto pub = fetch(server.url("/public"));
  auto priv = fetch(server.url("/private/x"));
  auto ok = fetch(server.url("/private/ok/y"));
  auto pdf = fetch(server.url("/doc.pdf"));
  auto pdfq = fetch(server.url("/doc.pdf?v=2"));
  run();
  EXPECT_TRUE(pub->result.ok()) << pub->result.error.message();
  EXPECT_TRUE(ok->result.ok()) << ok->result.error.message();
  EXPECT_TRUE(pdfq->result.ok()) << pdfq->result.error.message();
  for (auto* refused : {&priv, &pdf}) {
    EXPECT_EQ((*refused)->result.error.code, make_error_code(Errc::robots_disallowed));
    EXPECT_EQ((*refused)->result.status, 0);
  }
  EXPECT_NE(priv->result.error.message().find("Disallow: /private"), std::string::npos)
      << priv->result.error.message();
  EXPECT_NE(priv->result.error.message().find(server.url("/private/x")), std::string::npos);
  auto seen = targets(server);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front(), "/robots.txt") << "robots.txt came first";
  EXPECT_EQ(count(seen, "/robots.txt"), 1);
  EXPECT_EQ(count(seen, "/private/x"), 0) << "a refused URL was requested";
  EXPECT_EQ(count(seen, "/doc.pdf"), 0) << "a refused URL was requested";
  EXPECT_EQ(seen.size(), 4u);
}

TEST_F(RobotsTest, OneFetchServesEveryUrlOfTheHost) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(200, "User-agent: *\nDisallow: /no\n")));
  client(robots_on());
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 50; ++i) outs.push_back(fetch(server.url("/p" + std::to_string(i))));
  run();
  for (auto& o : outs) EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  auto seen = targets(server);
  EXPECT_EQ(count(seen, "/robots.txt"), 1);
  EXPECT_EQ(seen.front(), "/robots.txt");
  EXPECT_EQ(seen.size(), 51u);
}

TEST_F(RobotsTest, A404AllowsEverything) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(404, "none")));
  client(robots_on());
  auto a = fetch(server.url("/anything"));
  run();
  EXPECT_TRUE(a->result.ok()) << a->result.error.message();
  EXPECT_EQ(targets(server), (std::vector<std::string>{"/robots.txt", "/anything"}));
}

TEST_F(RobotsTest, A500ThenTheRulesIsRetriedAndTheRulesHold) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/robots.txt") {
      if (n++ == 0) return Script().send(http_response(500, "oops"));
      return Script().send(http_response(200, "User-agent: *\nDisallow: /secret\n"));
    }
    return ok_body(r);
  });
  client(robots_on(2));
  auto open = fetch(server.url("/open"));
  auto secret = fetch(server.url("/secret"));
  run();
  EXPECT_TRUE(open->result.ok()) << open->result.error.message();
  EXPECT_EQ(secret->result.error.code, make_error_code(Errc::robots_disallowed));
  EXPECT_EQ(targets(server), (std::vector<std::string>{"/robots.txt", "/robots.txt", "/open"}));
}

TEST_F(RobotsTest, ARobotsTxtThatKeepsFailingRefusesTheWholeHost) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(503, "down")));
  client(robots_on(1));
  auto a = fetch(server.url("/a"));
  auto b = fetch(server.url("/b"));
  run();
  for (auto* o : {&a, &b}) {
    EXPECT_EQ((*o)->result.error.code, make_error_code(Errc::robots_disallowed));
    EXPECT_NE((*o)->result.error.message().find("could not be fetched"), std::string::npos)
        << (*o)->result.error.message();
    EXPECT_NE((*o)->result.error.message().find("503"), std::string::npos)
        << (*o)->result.error.message();
  }
  EXPECT_EQ(targets(server), (std::vector<std::string>{"/robots.txt", "/robots.txt"}))
      << "retried once, and nothing else was requested";
}

TEST_F(RobotsTest, AnUnreachableHostFailsWithTheRobotsKind) {
  int port;
  {
    TestServer gone;  // a port that was just free, with nothing on it now
    port = gone.port();
  }
  client(robots_on(1));
  auto a = fetch("http://127.0.0.1:" + std::to_string(port) + "/a");
  run();
  EXPECT_EQ(a->result.error.code, make_error_code(Errc::robots_disallowed));
  EXPECT_NE(a->result.error.message().find("could not be fetched"), std::string::npos)
      << a->result.error.message();
}

TEST_F(RobotsTest, CrawlDelayPacesTheHost) {
  TestServer server(ok_body);
  server.route("/robots.txt",
               Script().send(http_response(200, "User-agent: *\nCrawl-delay: 0.3\n")));
  client(robots_on());
  std::uint64_t at200 = 0;
  at_loop_ms(200, [&] { at200 = client().stats().requests_sent; });
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 3; ++i) outs.push_back(fetch(server.url("/c" + std::to_string(i))));
  run();
  for (auto& o : outs) EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_GE(at200, 1u);
  EXPECT_LE(at200, 2u) << "robots.txt and one page at most within 200 ms of a 0.3 s delay";
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST_F(RobotsTest, ARedirectToAnotherHostIsCheckedAgainstThatHostsRobots) {
  TestServer b(ok_body);
  b.route("/robots.txt", Script().send(http_response(200, "User-agent: *\nDisallow: /private\n")));
  TestServer a(ok_body);
  a.route("/robots.txt", Script().send(http_response(404, "")));
  a.route("/go", Script().send(http_response(302, "", {{"Location", b.url("/private/doc")}})));
  client(robots_on());
  auto t = fetch(a.url("/go"));
  run();
  EXPECT_EQ(t->result.error.code, make_error_code(Errc::robots_disallowed))
      << t->result.error.message();
  EXPECT_EQ(targets(b), (std::vector<std::string>{"/robots.txt"}));
  EXPECT_EQ(targets(a), (std::vector<std::string>{"/robots.txt", "/go"}));
}

TEST_F(RobotsTest, TheUserAgentsProductTokenChoosesTheGroup) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(200,
                                                          "User-agent: *\nDisallow: /\n\n"
                                                          "User-agent: mybot\nDisallow: /x\n")));
  ClientOptions o = robots_on();
  o.user_agent = "MyBot/2.1 (+http://example.org/bot)";
  client(o);
  auto y = fetch(server.url("/y"));
  auto x = fetch(server.url("/x"));
  run();
  EXPECT_TRUE(y->result.ok()) << y->result.error.message();
  EXPECT_EQ(x->result.error.code, make_error_code(Errc::robots_disallowed));
}

// With several loops each origin stays on one, so its robots.txt is fetched once.
TEST_F(RobotsTest, AcrossLoopsRobotsTxtIsFetchedOncePerHost) {
  TestServer server(ok_body);
  server.route("/robots.txt", Script().send(http_response(200, "User-agent: *\nDisallow: /n\n")));
  auto r = Runner::create(&loop_, RunnerOptions{2, robots_on()});
  ASSERT_TRUE(r) << r.error().message();
  std::unique_ptr<Runner> runner = std::move(*r);
  int ok = 0, refused = 0;
  for (int i = 0; i < 20; ++i) {
    Request req;
    req.url = server.url(i % 4 == 0 ? "/n" + std::to_string(i) : "/y" + std::to_string(i));
    req.sink = make_discard_sink();
    ASSERT_TRUE(runner->get(std::move(req), {.on_done = [&](const TransferResult& res) {
                              if (res.ok()) ++ok;
                              if (res.error.code == Errc::robots_disallowed) ++refused;
                            }}));
  }
  run();
  EXPECT_EQ(ok, 15);
  EXPECT_EQ(refused, 5);
  EXPECT_EQ(count(targets(server), "/robots.txt"), 1);
  EXPECT_EQ(server.requests().size(), 16u);
  runner->close([] {});
  run();
}

}  // namespace
}  // namespace uvget::test
