// Retries: what is retried and what is not, Retry-After, hosts that ask for a rest, sinks that
// start over, and the interplay with cancel and deadlines. Asserted from the server's side.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class RetryTest : public LoopTest {
 protected:
  ClientOptions fast(int retries) {
    ClientOptions o;
    o.retries = retries;
    o.retry_wait_ms = 5;
    o.retry_max_wait_ms = 20;
    return o;
  }

  struct Waits {
    std::vector<std::uint64_t> delays;  // on_retry's delay_ms, in order
    // For each wait: the requests the client had sent when a timer due 1 ms before the wait's
    // end ran. Started in on_retry, as the wait is scheduled, that timer runs before the wait's
    // own (libuv keeps due timers in order), so it sees what went out during the wait.
    std::vector<std::uint64_t> sent_just_before_the_end;
  };
  // fetch() that also watches each retry's wait.
  std::shared_ptr<Outcome> fetch_watching_waits(const std::string& url, Waits* waits) {
    return fetch(url, {}, [this, waits](const Error&, int, std::uint64_t delay) {
      waits->delays.push_back(delay);
      at_loop_ms(delay > 0 ? delay - 1 : 0, [this, waits] {
        waits->sent_just_before_the_end.push_back(client().stats().requests_sent);
      });
    });
  }
};

TEST_F(RetryTest, ServiceUnavailableThenOk) {
  std::atomic<int> n{0};
  TestServer server([&n](const RecordedRequest&) {
    if (n++ == 0) return Script().send(http_response(503, "busy"));
    return Script().send(http_response(200, "fine"));
  });
  client(fast(3));
  std::vector<std::pair<int, std::uint64_t>> retries;
  Request req;
  req.url = server.url("/x");
  std::string body;
  req.sink = make_memory_sink(&body);
  Callbacks cbs;
  TransferResult result = not_finished();
  cbs.on_retry = [&](const Error& why, int attempt, std::uint64_t delay) {
    EXPECT_NE(why.message().find("HTTP 503"), std::string::npos) << why.message();
    EXPECT_NE(why.message().find(server.url("/x")), std::string::npos) << why.message();
    retries.emplace_back(attempt, delay);
  };
  cbs.on_done = [&](const TransferResult& r) { result = r; };
  ASSERT_TRUE(client().get(std::move(req), std::move(cbs)));
  run();
  ASSERT_TRUE(result.ok()) << result.error.message();
  EXPECT_EQ(body, "fine");
  EXPECT_EQ(result.attempts, 2);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].first, 2);
  EXPECT_LE(retries[0].second, 5u) << "full jitter within the first wait";
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RetryTest, ABodyCutShortIsFetchedAgainFromZeroIntoTheFile) {
  std::string body = pattern_bytes(300'000, 3);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + body.substr(0, 120'000))
          .pause_ms(30)
          .reset();
    return Script().send(http_response(200, body));
  });
  std::string dir = make_temp_dir("uvget-retry");
  client(fast(3));
  Request req;
  req.sink = make_file_sink(dir + "/f");
  auto o = fetch(server.url("/f"), std::move(req));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.attempts, 2);
  EXPECT_EQ(read_file(dir + "/f"), body) << "never the first attempt's bytes plus the second's";
  EXPECT_FALSE(exists(dir + "/f.part"));
  remove_tree(dir);
}

TEST_F(RetryTest, MemorySinkStartsOverToo) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)
      return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde").close();
    return Script().send(http_response(200, "0123456789"));
  });
  client(fast(1));
  auto o = fetch(server.url("/m"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "0123456789");
  EXPECT_EQ(o->heads, 2) << "on_head again for the new response";
}

TEST_F(RetryTest, OtherClientErrorsAreNeverRetried) {
  TestServer server;  // 404 for everything
  server.route("/gone", Script().send(http_response(410, "gone")));
  client(fast(5));
  auto a = fetch(server.url("/missing"));
  auto b = fetch(server.url("/gone"));
  run();
  EXPECT_EQ(a->result.status, 404);
  EXPECT_EQ(a->result.attempts, 1);
  EXPECT_EQ(b->result.status, 410);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RetryTest, RetriesRunOutWithTheLastError) {
  TestServer server(
      [](const RecordedRequest&) { return Script().send(http_response(500, "broken")); });
  client(fast(2));
  auto o = fetch(server.url("/x"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::http_status);
  EXPECT_EQ(o->result.status, 500);
  EXPECT_EQ(o->result.attempts, 3);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(RetryTest, RequestTimeoutAndTooManyRequestsAreRetried) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    int k = n++;
    if (k == 0) return Script().send(http_response(408, "slow"));
    if (k == 1) return Script().send(http_response(429, "slow down"));
    return Script().send(http_response(200, "ok"));
  });
  client(fast(3));
  auto o = fetch(server.url("/x"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.attempts, 3);
}

TEST_F(RetryTest, RetryAfterSecondsIsHonoured) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0) return Script().send(http_response(429, "later", {{"Retry-After", "1"}}));
    return Script().send(http_response(200, "ok"));
  });
  client(fast(2));
  Waits waits;
  auto o = fetch_watching_waits(server.url("/x"), &waits);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(waits.delays, std::vector<std::uint64_t>{1000}) << "the wait is the server's second";
  EXPECT_EQ(waits.sent_just_before_the_end, std::vector<std::uint64_t>{1})
      << "the retry went out before the wait was over";
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RetryTest, RetryAfterAsAnHttpDate) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0) {
      std::time_t at = std::time(nullptr) + 3;
      char date[64];
      std::tm tm{};
      gmtime_r(&at, &tm);
      std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      return Script().send(http_response(503, "later", {{"Retry-After", date}}));
    }
    return Script().send(http_response(200, "ok"));
  });
  client(fast(2));
  Waits waits;
  auto o = fetch_watching_waits(server.url("/x"), &waits);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  // The date, in whole seconds, is 3 s ahead of the server's clock: the client reads it with 1
  // to 3 s left (without the date it would wait the few ms of the backoff).
  ASSERT_EQ(waits.delays.size(), 1u);
  EXPECT_GE(waits.delays[0], 1000u);
  EXPECT_LE(waits.delays[0], 3000u);
  EXPECT_EQ(waits.sent_just_before_the_end, std::vector<std::uint64_t>{1})
      << "the retry went out before the wait was over";
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RetryTest, RetryAfterOverTheLimitIsNotWaitedFor) {
  TestServer server([](const RecordedRequest&) {
    return Script().send(http_response(503, "later", {{"Retry-After", "3600"}}));
  });
  ClientOptions o = fast(3);
  o.retry_after_max_ms = 1000;
  client(o);
  auto t = fetch(server.url("/x"));
  run();
  EXPECT_EQ(t->result.status, 503);
  EXPECT_NE(t->result.error.message().find("Retry-After"), std::string::npos)
      << t->result.error.message();
  EXPECT_EQ(server.requests().size(), 1u);
}

// One URL in 100 answers 503 with Retry-After: the other 99 go out and are answered during its
// wait (the host is not held for one stray answer), as the client's own count shows at a probe
// due just before the wait ends.
TEST_F(RetryTest, AStray503DelaysOnlyItsOwnUrl) {
  std::atomic<int> n503{0};
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/u50" && n503++ == 0)
      return Script().send(http_response(503, "busy", {{"Retry-After", "2"}}));
    return Script().send(http_response(200, "ok " + r.target));
  });
  ClientOptions o = fast(2);
  o.max_per_host = 4;
  client(o);
  Waits waits;
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < 100; ++i) {
    std::string url = server.url("/u" + std::to_string(i));
    outcomes.push_back(i == 50 ? fetch_watching_waits(url, &waits) : fetch(url));
  }
  run();
  for (auto& out : outcomes) ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(waits.delays, std::vector<std::uint64_t>{2000});
  EXPECT_EQ(waits.sent_just_before_the_end, std::vector<std::uint64_t>{100})
      << "the other URLs waited for the 503's Retry-After";
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 101u);
  EXPECT_EQ(seen.back().target, "/u50") << "its retry came last";
  // The 503 lowered the host's limit, and the answers after it raised it back.
  EXPECT_EQ(outcomes[50]->result.status, 200);
}

// A host whose answers are mostly 503 rests whole: after four 503s in a row (one connection,
// so one at a time), nothing goes out to it until the last one's Retry-After is over.
TEST_F(RetryTest, AHostWhoseAnswersAreMostlyOverloadsRestsWhole) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ < 4) return Script().send(http_response(503, "busy", {{"Retry-After", "1"}}));
    return Script().send(http_response(200, "ok " + r.target));
  });
  ClientOptions o = fast(2);
  o.max_per_host = 1;
  client(o);
  Waits a, b, c, d;
  auto ta = fetch_watching_waits(server.url("/a"), &a);
  auto tb = fetch_watching_waits(server.url("/b"), &b);
  auto tc = fetch_watching_waits(server.url("/c"), &c);
  auto td = fetch_watching_waits(server.url("/d"), &d);
  auto te = fetch(server.url("/e"));
  run();
  for (auto* t : {&ta, &tb, &tc, &td, &te})
    ASSERT_TRUE((*t)->result.ok()) << (*t)->result.error.message();
  // /b and /c went out during /a's wait (one stray 503, then two: not yet most of four).
  EXPECT_EQ(a.sent_just_before_the_end, std::vector<std::uint64_t>{4});
  // The fourth 503 made most of the host's answers overloads: /e waited with the rest.
  EXPECT_EQ(d.sent_just_before_the_end, std::vector<std::uint64_t>{4})
      << "a request went to the host during its rest";
  EXPECT_EQ(server.requests().size(), 9u);
}

// A server that answers 429 whenever more than K connections are open to it: every file lands,
// and once it has said so, the client keeps at most K connections open to it, counted by the
// server at each request.
TEST_F(RetryTest, AServerThatRefusesAboveKConnectionsGetsAtMostK) {
  constexpr int kMax = 3;
  std::mutex mu;
  std::vector<std::pair<int, int>> seen;  // (connections open, status) at each request
  TestServer server;
  server.set_handler([&](const RecordedRequest& r) {
    int open = server.current_connections();
    int status = open > kMax ? 429 : 200;
    {
      std::lock_guard lock(mu);
      seen.emplace_back(open, status);
    }
    return Script().send(http_response(status, status == 200 ? "ok " + r.target : "too many"));
  });
  ClientOptions o = fast(8);
  o.max_per_host = 16;
  client(o);
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < 200; ++i) outcomes.push_back(fetch(server.url("/f" + std::to_string(i))));
  run();
  for (auto& out : outcomes) ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  std::lock_guard lock(mu);
  auto first = std::find_if(seen.begin(), seen.end(), [](auto& s) { return s.second == 429; });
  ASSERT_NE(first, seen.end()) << "the ramp never passed K: the test shows nothing";
  // The answers to the requests that were already in flight come back; from then on none sees
  // more than K connections.
  std::size_t settle = static_cast<std::size_t>(first - seen.begin()) + 16;
  ASSERT_LT(settle, seen.size());
  int peak = 0, refused = 0;
  for (std::size_t i = settle; i < seen.size(); ++i) {
    peak = std::max(peak, seen[i].first);
    refused += seen[i].second == 429;
  }
  EXPECT_LE(peak, kMax);
  EXPECT_EQ(refused, 0);
  int limits = 0;
  for (auto& out : outcomes) limits += out->result.host_limit != 0;
  EXPECT_GT(limits, 0) << "no result says the host's limit changed";
}

Script trickle(std::size_t announced) {
  Script s;
  s.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(announced) + "\r\n\r\n");
  for (int i = 0; i < 100; ++i) s.pause_ms(100).send(std::string(10, 'x'));  // 100 bytes/s
  return s;
}

TEST_F(RetryTest, ATrickleBelowTheLowestSpeedFails) {
  TestServer server;
  server.route("/slow", trickle(100'000));
  ClientOptions o = fast(0);
  o.low_speed_bytes_per_s = 1000;
  o.low_speed_time_ms = 1000;
  client(o);
  auto t = fetch(server.url("/slow"));
  run(10'000);
  // Without the check the trickle would end in a stall after its 1000 bytes, never too_slow.
  EXPECT_EQ(t->result.error.code, Errc::too_slow) << t->result.error.message();
  EXPECT_NE(t->result.error.message().find("1000 bytes/s"), std::string::npos)
      << t->result.error.message();
}

TEST_F(RetryTest, ATooSlowAttemptIsRetried) {
  std::atomic<int> n{0};
  std::string body = pattern_bytes(2'000'000, 4);
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0) return trickle(body.size());
    return Script().send(http_response(200, body));
  });
  ClientOptions o = fast(1);
  o.low_speed_bytes_per_s = 1000;
  o.low_speed_time_ms = 1000;
  client(o);
  auto t = fetch(server.url("/x"));
  run(10'000);
  ASSERT_TRUE(t->result.ok()) << t->result.error.message();
  EXPECT_EQ(t->result.attempts, 2);
  EXPECT_EQ(t->body, body);
}

TEST_F(RetryTest, ConnectFailuresAreRetriedThenReported) {
  client(fast(2));
  auto o = fetch("http://127.0.0.1:1/x");
  run();
  EXPECT_EQ(o->result.error.code, Errc::connect);
  EXPECT_EQ(o->result.attempts, 3);
}

TEST_F(RetryTest, CancelWhileWaitingEndsAtOnce) {
  TestServer server([](const RecordedRequest&) {
    return Script().send(http_response(503, "later", {{"Retry-After", "30"}}));
  });
  client(fast(3));
  Request req;
  req.url = server.url("/x");
  Callbacks cbs;
  TransferResult result = not_finished();
  bool done = false;
  TransferId id{};
  cbs.on_retry = [&](const Error&, int, std::uint64_t) { client().cancel(id); };
  cbs.on_done = [&](const TransferResult& r) {
    done = true;
    result = r;
  };
  auto got = client().get(std::move(req), std::move(cbs));
  ASSERT_TRUE(got);
  id = *got;
  run(5000);  // far less than the 30 s wait
  EXPECT_TRUE(done) << "the cancel waited for the retry";
  EXPECT_EQ(result.error.code, Errc::cancelled) << result.error.message();
  EXPECT_EQ(server.requests().size(), 1u) << "the retry went out after all";
}

TEST_F(RetryTest, TheDeadlineCoversTheWaits) {
  TestServer server([](const RecordedRequest&) {
    return Script().send(http_response(503, "later", {{"Retry-After", "30"}}));
  });
  ClientOptions o = fast(3);
  o.timeout_ms = 300;
  client(o);
  auto t = fetch(server.url("/x"));
  run(5000);  // far less than the 30 s wait
  EXPECT_EQ(t->result.error.code, Errc::timeout) << t->result.error.message();
  EXPECT_NE(t->result.error.message().find("timed out after 300 ms"), std::string::npos)
      << t->result.error.message();
  EXPECT_EQ(server.requests().size(), 1u) << "the retry went out after all";
}

TEST_F(RetryTest, CloseWhileWaitingCancels) {
  TestServer server([](const RecordedRequest&) {
    return Script().send(http_response(503, "later", {{"Retry-After", "30"}}));
  });
  client(fast(3));
  Request req;
  req.url = server.url("/x");
  Callbacks cbs;
  TransferResult result = not_finished();
  bool closed = false;
  // On the loop's next turn, once the 30 s wait is scheduled.
  cbs.on_retry = [&](const Error&, int, std::uint64_t) {
    at_loop_ms(0, [&] { client().close([&] { closed = true; }); });
  };
  bool done = false;
  cbs.on_done = [&](const TransferResult& r) {
    done = true;
    result = r;
  };
  ASSERT_TRUE(client().get(std::move(req), std::move(cbs)));
  run(5000);  // far less than the 30 s wait
  EXPECT_TRUE(closed);
  EXPECT_TRUE(done);
  EXPECT_EQ(result.error.code, Errc::cancelled) << result.error.message();
  EXPECT_EQ(server.requests().size(), 1u);
}

}  // namespace
}  // namespace uvget::test
