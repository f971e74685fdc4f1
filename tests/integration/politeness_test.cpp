// Per-host politeness: request rates and waits per origin (on one loop and across loops), seen
// from the client's own count at probes on its loop and from the server's arrival times.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>

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

// A server that notes when each request came, by its own clock.
struct Stamps {
  std::mutex mu;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> seen;
  TestServer::Handler handler() {
    return [this](const RecordedRequest& r) {
      {
        std::lock_guard lock(mu);
        seen.emplace_back(r.target, std::chrono::steady_clock::now());
      }
      return Script().send(http_response(200, "body of " + r.target));
    };
  }
  // The shortest gap between two requests that came one after the other, in ms.
  double shortest_gap_ms() {
    std::lock_guard lock(mu);
    double least = 1e9;
    for (std::size_t i = 1; i < seen.size(); ++i)
      least = std::min(
          least,
          std::chrono::duration<double, std::milli>(seen[i].second - seen[i - 1].second).count());
    return least;
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

// The rate holds across loops: the Runner keeps each origin on one loop when pacing is on, so
// two loops do not each send at the full rate. Checked from the server's clock, with half the
// gap as slack for scheduling noise (two loops sending at once would show gaps near 0).
TEST_F(PolitenessTest, PacingHoldsAcrossLoops) {
  Stamps stamps;
  TestServer server(stamps.handler());
  ClientOptions o;
  o.wait_ms = 150;
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
  EXPECT_EQ(server.requests().size(), 5u);
  EXPECT_GE(stamps.shortest_gap_ms(), 75.0) << "two requests to the host came together";
  runner->close([] {});
  run();
}

}  // namespace
}  // namespace uvget::test
