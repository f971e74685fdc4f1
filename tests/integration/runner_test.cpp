// The multi-loop Runner: limits across all loops seen from the server, results delivered on the
// host loop, cancellation, and clean shutdown with work in flight. Also run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "support/certs.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class RunnerTest : public LoopTest {
 protected:
  void TearDown() override {
    if (runner_) {
      bool closed = false;
      runner_->close([&] { closed = true; });
      run();
      EXPECT_TRUE(closed);
      runner_.reset();
    }
    LoopTest::TearDown();
  }

  Runner& runner(int loops, ClientOptions o = {}) {
    if (!runner_) {
      auto r = Runner::create(&loop_, RunnerOptions{loops, std::move(o)});
      EXPECT_TRUE(r) << r.error().message();
      runner_ = std::move(*r);
    }
    return *runner_;
  }

  struct Seen {
    std::shared_ptr<Outcome> out;
    TransferId id{};
  };

  Seen get(const std::string& url, Request req = {}) {
    auto out = std::make_shared<Outcome>();
    req.url = url;
    if (!req.sink) req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    auto host = std::this_thread::get_id();
    cbs.on_done = [out, host](const TransferResult& r) {
      EXPECT_EQ(std::this_thread::get_id(), host) << "on_done runs on the host loop's thread";
      EXPECT_FALSE(out->done) << "on_done called twice";
      out->done = true;
      out->result = r;
    };
    auto id = runner_->get(std::move(req), std::move(cbs));
    EXPECT_TRUE(id) << id.error().message();
    return {out, id ? *id : TransferId{}};
  }

  // A download of one file in 4 segments of at least 1 MiB.
  static Request split_into(const std::string& path) {
    Request req;
    req.sink = make_file_sink(path);
    req.split = 4;
    req.min_split_size = 1 << 20;
    req.split_steal_ms = 0;  // requests are counted: no part is cut
    return req;
  }
  std::unique_ptr<Runner> runner_;
};

Script slow_ok(int ms, std::string body) {
  return Script().pause_ms(ms).send(http_response(200, body));
}

// One large file split over two loops, with one connection per host on each loop. The first
// response stops after 1 MiB until a second request has arrived: this loop's only connection is
// still busy with it, so that request is a segment the other loop sent (without one the
// download would never finish).
TEST_F(RunnerTest, ASplitDownloadsSegmentsRunOnTheOtherLoopToo) {
  std::string body = pattern_bytes(8 << 20, 41);
  TestServer server([&](const RecordedRequest& r) {
    if (!requested_range(r)) {
      std::string head = answer_ranges(r, body.size(), "\"r\"").head;
      return Script()
          .send(head + body.substr(0, 1 << 20))
          .await_requests(2)
          .send(body.substr(1 << 20));
    }
    return serve_ranges(r, body, "\"r\"");
  });
  ClientOptions o;
  o.max_per_host = 2;  // 1 + 1 over two loops
  runner(2, o);
  std::string dir = make_temp_dir("uvget-runner-split");
  auto seen = get(server.url("/big"), split_into(dir + "/big"));
  run();
  ASSERT_TRUE(seen.out->result.ok()) << seen.out->result.error.message();
  EXPECT_TRUE(read_file(dir + "/big") == body) << "the file differs from the source";
  EXPECT_FALSE(exists(dir + "/big.part"));
  EXPECT_FALSE(exists(dir + "/big.part.meta"));
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_FALSE(requested_range(requests[0]));
  EXPECT_TRUE(requested_range(requests[1]))
      << "a segment ran on the other loop while the first one was still streaming";
  EXPECT_NE(requests[1].connection_id, requests[0].connection_id);
  EXPECT_EQ(seen.out->result.bytes, body.size());
  remove_tree(dir);
}

TEST_F(RunnerTest, ASplitDownloadFailingOnTheOtherLoopLeavesNothing) {
  std::string body = pattern_bytes(8 << 20, 42);
  TestServer server([&](const RecordedRequest& r) {
    auto range = requested_range(r);
    if (range && range->second && *range->second == body.size() - 1)
      return Script().send(http_response(404, "gone"));
    return serve_ranges(r, body, "\"r\"");
  });
  runner(2);
  std::string dir = make_temp_dir("uvget-runner-split");
  auto seen = get(server.url("/big"), split_into(dir + "/big"));
  run();
  EXPECT_EQ(seen.out->result.error.code, Errc::http_status) << seen.out->result.error.message();
  EXPECT_FALSE(exists(dir + "/big"));
  EXPECT_FALSE(exists(dir + "/big.part"));
  remove_tree(dir);
}

// Segments on the other loop go to a mirror that breaks mid-segment: what each one lacks is
// fetched from the first URL, and the file is whole.
TEST_F(RunnerTest, AMirrorFailingOnTheOtherLoopHandsItsPartBack) {
  std::string body = pattern_bytes(8 << 20, 44);
  TestServer server([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"r\""); });
  TestServer mirror([&](const RecordedRequest& r) {
    auto a = answer_ranges(r, body.size(), "\"m\"");
    return Script().send(a.head + body.substr(a.from, 200'000)).pause_ms(20).reset();
  });
  runner(2);
  std::string dir = make_temp_dir("uvget-runner-split");
  Request req = split_into(dir + "/big");
  req.mirrors = {mirror.url("/big")};
  auto seen = get(server.url("/big"), std::move(req));
  run();
  ASSERT_TRUE(seen.out->result.ok()) << seen.out->result.error.message();
  EXPECT_TRUE(read_file(dir + "/big") == body) << "the file differs from the source";
  EXPECT_FALSE(exists(dir + "/big.part"));
  EXPECT_FALSE(mirror.requests().empty());
  remove_tree(dir);
}

// A slow mirror on the other loop: its part is cut there (the cut is shared across the loops)
// and a free connection fetches the second half; the file is whole.
TEST_F(RunnerTest, ASlowPartOnTheOtherLoopIsCutAndItsHalfTaken) {
  std::string body = pattern_bytes(12 << 20, 45);
  TestServer server([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"r\""); });
  TestServer slow(
      [&](const RecordedRequest& r) { return trickle_ranges(r, body, "\"w\"", 0, 65536, 15); });
  runner(2);
  std::string dir = make_temp_dir("uvget-runner-split");
  Request req = split_into(dir + "/big");
  req.split = 3;
  req.split_steal_ms = 500;
  req.mirrors = {slow.url("/big")};
  auto seen = get(server.url("/big"), std::move(req));
  run();
  ASSERT_TRUE(seen.out->result.ok()) << seen.out->result.error.message();
  EXPECT_TRUE(read_file(dir + "/big") == body) << "the file differs from the source";
  EXPECT_EQ(seen.out->result.bytes, body.size());
  auto slow_parts = slow.requests();
  ASSERT_FALSE(slow_parts.empty());
  auto range = requested_range(slow_parts[0]);
  ASSERT_TRUE(range && range->second);
  bool taken = false;
  for (auto& r : server.requests())
    if (auto got = requested_range(r);
        got && got->second && got->first > range->first && *got->second == *range->second)
      taken = true;
  EXPECT_TRUE(taken) << "no connection took the second half of the slow part";
  remove_tree(dir);
}

TEST_F(RunnerTest, ClosingDuringASplitDownloadOverTwoLoopsEndsEverything) {
  std::string body = pattern_bytes(8 << 20, 43);
  TestServer server([&](const RecordedRequest& r) {
    if (requested_range(r)) {  // segments stall after their head and a few bytes
      auto a = answer_ranges(r, body.size(), "\"r\"");
      return Script().send(a.head + body.substr(a.from, 1000)).stall();
    }
    return serve_ranges(r, body, "\"r\"");
  });
  runner(2);
  std::string dir = make_temp_dir("uvget-runner-split");
  auto seen = get(server.url("/big"), split_into(dir + "/big"));
  run_for(300);
  bool closed = false;
  runner_->close([&] { closed = true; });
  run();
  EXPECT_TRUE(closed);
  EXPECT_TRUE(seen.out->done);
  EXPECT_FALSE(seen.out->result.ok());
  EXPECT_FALSE(exists(dir + "/big"));
  EXPECT_FALSE(exists(dir + "/big.part"));
  runner_.reset();
  remove_tree(dir);
}

TEST_F(RunnerTest, PerHostLimitHoldsForAllLoopsTogether) {
  TestServer server([](const RecordedRequest& r) { return slow_ok(5, "body of " + r.target); });
  ClientOptions o;
  o.max_connections = 64;
  o.max_per_host = 5;  // 3 + 2 over two loops
  runner(2, o);
  ASSERT_EQ(runner_->loops(), 2);
  std::vector<Seen> all;
  for (int i = 0; i < 300; ++i) all.push_back(get(server.url("/f" + std::to_string(i))));
  run();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(all[i].out->result.ok()) << all[i].out->result.error.message();
    EXPECT_EQ(all[i].out->body, "body of /f" + std::to_string(i));
  }
  EXPECT_LE(server.peak_connections(), 5);
  EXPECT_GT(server.peak_connections(), 3) << "both loops should have worked at once";
  EXPECT_LE(server.accepted_connections(), 5) << "connections are kept alive on each loop";
  EXPECT_EQ(server.requests().size(), 300u);
}

TEST_F(RunnerTest, TotalLimitHoldsForAllLoopsTogether) {
  TestServer server([](const RecordedRequest&) { return slow_ok(5, "a"); });
  ClientOptions o;
  o.max_connections = 3;  // 2 + 1 over two loops
  o.max_per_host = 100;
  runner(2, o);
  std::vector<Seen> all;
  for (int i = 0; i < 200; ++i) all.push_back(get(server.url("/" + std::to_string(i))));
  run();
  for (auto& s : all) EXPECT_TRUE(s.out->result.ok()) << s.out->result.error.message();
  EXPECT_LE(server.peak_connections(), 3);
  EXPECT_EQ(server.peak_connections(), 3) << "only both loops together reach the total";
  EXPECT_LE(server.accepted_connections(), 3) << "the connections are reused";
}

TEST_F(RunnerTest, LoopsAreNeverMoreThanTheLimitsAllow) {
  ClientOptions o;
  o.max_connections = 64;
  o.max_per_host = 2;
  runner(8, o);
  EXPECT_EQ(runner_->loops(), 2) << "each loop needs one connection per host at least";
}

TEST_F(RunnerTest, FilesAndStatsMatchOneLoop) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, pattern_bytes(3000 + r.target.size() * 100, 7)));
  });
  std::string dir = make_temp_dir("uvget-runner");
  ClientOptions o;
  o.max_connections = 8;
  o.max_per_host = 8;
  runner(3, o);
  std::vector<Seen> all;
  for (int i = 0; i < 200; ++i) {
    Request req;
    req.sink = make_file_sink(dir + "/f" + std::to_string(i));
    all.push_back(
        get(server.url("/" + std::string(static_cast<std::size_t>(i % 7), 'x')), std::move(req)));
  }
  run();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(all[i].out->result.ok()) << all[i].out->result.error.message();
    std::size_t target = 1 + static_cast<std::size_t>(i % 7);
    EXPECT_EQ(read_file(dir + "/f" + std::to_string(i)), pattern_bytes(3000 + target * 100, 7));
    EXPECT_FALSE(exists(dir + "/f" + std::to_string(i) + ".part"));
  }
  bool closed = false;
  runner_->close([&] { closed = true; });
  run();
  ASSERT_TRUE(closed);
  ClientStats st = runner_->stats();
  EXPECT_EQ(st.transfers_done, 200u);
  EXPECT_EQ(st.transfers_failed, 0u);
  EXPECT_EQ(st.requests_sent, 200u);
  EXPECT_LE(st.connections_opened, 8u);
  EXPECT_EQ(st.open_connections, 0u);
  EXPECT_EQ(static_cast<int>(st.connections_opened), server.accepted_connections());
  remove_tree(dir);
}

TEST_F(RunnerTest, HttpsOverTwoLoopsResumesSessionsOnEach) {
  const TestCerts& certs = shared_test_certs();
  TestServer server([](const RecordedRequest& r) { return slow_ok(2, "tls " + r.target); },
                    TlsServerFiles{certs.good_cert, certs.good_key});
  ClientOptions o;
  o.ca_file = certs.ca_cert;
  o.max_connections = 8;
  o.max_per_host = 8;
  runner(2, o);
  std::vector<Seen> all;
  for (int i = 0; i < 100; ++i) all.push_back(get(server.localhost_url("/" + std::to_string(i))));
  run();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(all[i].out->result.ok()) << all[i].out->result.error.message();
    EXPECT_EQ(all[i].out->body, "tls /" + std::to_string(i));
  }
  EXPECT_LE(server.peak_connections(), 8);
  int full = server.tls_handshakes() - server.tls_resumed_handshakes();
  EXPECT_LE(full, 2) << "one full handshake per loop at most; the rest resume";
  EXPECT_GE(server.tls_resumed_handshakes(), server.tls_handshakes() - 2);
}

TEST_F(RunnerTest, RetriesRunOnTheLoopsAndReportOnTheHost) {
  std::mutex mu;
  std::set<std::string> failed_once;
  TestServer server([&](const RecordedRequest& r) {
    std::lock_guard lock(mu);
    if (failed_once.insert(r.target).second) return Script().send(http_response(503, "busy"));
    return Script().send(http_response(200, "ok " + r.target));
  });
  ClientOptions o;
  o.retries = 2;
  o.retry_wait_ms = 5;
  o.retry_max_wait_ms = 10;
  runner(2, o);
  auto host = std::this_thread::get_id();
  int notes = 0;
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 20; ++i) {
    auto out = std::make_shared<Outcome>();
    Request req;
    req.url = server.url("/" + std::to_string(i));
    req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    cbs.on_retry = [&notes, host](const Error& why, int attempt, std::uint64_t) {
      EXPECT_EQ(std::this_thread::get_id(), host) << "on_retry runs on the host loop's thread";
      EXPECT_EQ(attempt, 2);
      EXPECT_NE(why.message().find("HTTP 503"), std::string::npos);
      ++notes;
    };
    cbs.on_done = [out](const TransferResult& r) { out->result = r; };
    ASSERT_TRUE(runner_->get(std::move(req), std::move(cbs)));
    all.push_back(out);
  }
  run();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
    EXPECT_EQ(all[i]->body, "ok /" + std::to_string(i));
    EXPECT_EQ(all[i]->result.attempts, 2);
  }
  EXPECT_EQ(notes, 20);
}

TEST_F(RunnerTest, BadRequestsFailSynchronously) {
  runner(2);
  Callbacks cbs;
  bool called = false;
  cbs.on_done = [&](const TransferResult&) { called = true; };
  Request req;
  req.url = "ftp://example.test/x";
  auto id = runner_->get(std::move(req), cbs);
  EXPECT_FALSE(id);
  Request bad;
  bad.url = "http://127.0.0.1:9/x";
  bad.headers = {{"X-Bad", "a\r\nb"}};
  EXPECT_FALSE(runner_->get(std::move(bad), cbs));
  run();
  EXPECT_FALSE(called);
}

TEST_F(RunnerTest, FailuresAreReportedLikeOneLoop) {
  TestServer server;
  server.route("/gone", Script().send(http_response(404, "no")));
  runner(2);
  auto gone = get(server.url("/gone"));
  auto refused = get("http://127.0.0.1:1/x");
  run();
  EXPECT_EQ(gone.out->result.error.code, Errc::http_status);
  EXPECT_EQ(gone.out->result.status, 404);
  EXPECT_NE(refused.out->result.error.message().find("http://127.0.0.1:1/x"), std::string::npos)
      << refused.out->result.error.message();
}

TEST_F(RunnerTest, CancelReachesTheLoopThatHasTheTransfer) {
  TestServer server;
  server.route("/stall", Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab").stall());
  server.route("/ok", Script().send(http_response(200, "fine")));
  runner(2);
  auto stalled = get(server.url("/stall"));
  auto ok = get(server.url("/ok"));
  ASSERT_TRUE(server.wait_for_requests(2, 5000));
  run_for(50);
  runner_->cancel(stalled.id);
  run();
  EXPECT_EQ(stalled.out->result.error.code, Errc::cancelled);
  EXPECT_TRUE(ok.out->result.ok());
}

TEST_F(RunnerTest, CloseWithWorkInFlightCancelsEverythingAndJoins) {
  TestServer server([](const RecordedRequest&) {
    return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc").stall();
  });
  std::string dir = make_temp_dir("uvget-runner-close");
  ClientOptions o;
  o.max_connections = 8;
  o.max_per_host = 8;
  runner(2, o);
  std::vector<Seen> all;
  for (int i = 0; i < 100; ++i) {
    Request req;
    req.sink = make_file_sink(dir + "/f" + std::to_string(i));
    all.push_back(get(server.url("/" + std::to_string(i)), std::move(req)));
  }
  ASSERT_TRUE(server.wait_for_requests(8, 5000));
  run_for(20);
  bool closed = false;
  int done_before_close = 0;
  runner_->close([&] {
    closed = true;
    for (auto& s : all) done_before_close += s.out->done;
  });
  run();
  ASSERT_TRUE(closed);
  EXPECT_EQ(done_before_close, 100) << "every on_done comes before on_closed";
  for (auto& s : all) EXPECT_EQ(s.out->result.error.code, Errc::cancelled);
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "no file and no .part left";
  Request late;
  late.url = server.url("/late");
  EXPECT_FALSE(runner_->get(std::move(late), {})) << "a closed runner takes no more work";
  remove_tree(dir);
  EXPECT_TRUE(server.wait_for_current_connections(0, 5000)) << "every connection was closed";
}

TEST_F(RunnerTest, DestroyWithoutCloseJoinsTheThreads) {
  TestServer server([](const RecordedRequest&) {
    return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\na").stall();
  });
  runner(2);
  for (int i = 0; i < 10; ++i) get(server.url("/" + std::to_string(i)));
  ASSERT_TRUE(server.wait_for_requests(10, 5000));
  runner_.reset();  // joins; the loop then closes in TearDown
  EXPECT_TRUE(server.wait_for_current_connections(0, 5000));
}

TEST_F(RunnerTest, DestroyInsideOnDone) {
  TestServer server;
  server.route("/a", Script().send(http_response(200, "a")));
  runner(2);
  Request req;
  req.url = server.url("/a");
  Callbacks cbs;
  bool done = false;
  cbs.on_done = [&](const TransferResult& r) {
    EXPECT_TRUE(r.ok());
    done = true;
    runner_.reset();
  };
  ASSERT_TRUE(runner_->get(std::move(req), std::move(cbs)));
  run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(runner_);
}

TEST_F(RunnerTest, IdleRunnerDoesNotKeepTheHostLoopAlive) {
  TestServer server;
  server.route("/a", Script().send(http_response(200, "a")));
  runner(2);
  auto a = get(server.url("/a"));
  run();  // returns once the result is in, though the workers still run
  EXPECT_TRUE(a.out->result.ok());
}

}  // namespace
}  // namespace uvget::test
