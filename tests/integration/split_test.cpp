// Segmented downloads (Request::split): one file over several connections with Range requests into
// a preallocated .part, byte-identical to the source; a failing segment retried alone; the
// sidecar's finished segments used by a later run; every case where the split must not happen;
// segments spread over mirrors (Request::mirrors), and a mirror that fails handing its part on.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

constexpr std::size_t kSize = 6 << 20;  // 6 MiB: four segments of 1.5 MiB

class SplitTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    body_ = pattern_bytes(kSize, 31);
    dir_ = make_temp_dir("uvget-split");
    path_ = dir_ + "/big";
  }
  void TearDown() override {
    LoopTest::TearDown();
    remove_tree(dir_);
  }
  ClientOptions retrying(int retries) {
    ClientOptions o;
    o.retries = retries;
    o.retry_wait_ms = 5;
    o.retry_max_wait_ms = 20;
    return o;
  }
  std::shared_ptr<Outcome> get_split(const std::string& url, int split, bool resume = false,
                                     std::string checksum = {}, bool unique_name = false) {
    Request req;
    FileSinkOptions fo;
    fo.resume = resume;
    fo.unique_name = unique_name;
    req.sink = make_file_sink(path_, fo);
    req.split = split;
    req.min_split_size = 1 << 20;
    req.split_steal_ms = 0;  // these tests count requests: no part is cut
    req.checksum = std::move(checksum);
    return fetch(url, std::move(req));
  }
  std::shared_ptr<Outcome> get_mirrored(const std::string& url, std::vector<std::string> mirrors,
                                        int split = 4) {
    Request req;
    req.sink = make_file_sink(path_, {});
    req.split = split;
    req.min_split_size = 1 << 20;
    req.mirrors = std::move(mirrors);
    req.split_steal_ms = 0;  // these tests count requests: no part is cut
    req.headers.emplace_back("Authorization", "Bearer for-the-first-origin");
    return fetch(url, std::move(req));
  }
  // The ranges asked for, by segment requests ("bytes=A-B"), in arrival order.
  static std::vector<std::pair<std::uint64_t, std::uint64_t>> segments(const TestServer& s) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    for (auto& r : s.requests())
      if (auto range = requested_range(r); range && range->second)
        out.emplace_back(range->first, *range->second);
    return out;
  }
  void expect_only_the_file() {
    EXPECT_TRUE(read_file(path_) == body_) << "the file differs from the source";
    EXPECT_FALSE(exists(path_ + ".part"));
    EXPECT_FALSE(exists(path_ + ".part.meta"));
  }

  std::string body_, dir_, path_;
};

TEST_F(SplitTest, FourConnectionsGiveTheSameBytes) {
  TestServer server([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s1\""); });
  client();
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u) << "the first request and three segments";
  EXPECT_FALSE(reqs[0].header("Range"));
  auto segs = segments(server);
  ASSERT_EQ(segs.size(), 3u);
  std::set<std::uint64_t> starts;
  for (auto& [first, last] : segs) {
    starts.insert(first);
    EXPECT_GE(last - first + 1, 1u << 20) << "no segment under the smallest piece";
  }
  EXPECT_EQ(starts.size(), 3u);
  EXPECT_EQ(*starts.begin(), kSize / 4) << "the first request keeps the first quarter";
  for (auto& r : reqs)
    if (r.header("Range")) {
      EXPECT_EQ(r.header("If-Range").value_or(""), "\"s1\"");
    }
  EXPECT_GE(server.peak_connections(), 2) << "segments ran at the same time";
  EXPECT_EQ(o->result.bytes, kSize);
  EXPECT_EQ(o->result.status, 200);
}

// unique_name: another download's big.part moves this one to big.1.part, chosen on the
// threadpool while the segments are being set up; every segment writes into big.1.part.
TEST_F(SplitTest, UniqueNameSplitsIntoTheNextFreePart) {
  TestServer server([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s1\""); });
  { std::ofstream(path_ + ".part") << "another download's"; }
  client();
  auto o = get_split(server.url("/big"), 4, false, {}, true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.path, path_ + ".1");
  EXPECT_TRUE(read_file(path_ + ".1") == body_) << "the file differs from the source";
  EXPECT_EQ(read_file(path_ + ".part"), "another download's");
  EXPECT_FALSE(exists(path_ + ".1.part"));
  EXPECT_FALSE(exists(path_ + ".1.part.meta"));
  EXPECT_EQ(segments(server).size(), 3u);
}

TEST_F(SplitTest, AFailingSegmentIsRetriedAlone) {
  std::atomic<int> broken{0};
  TestServer server([&](const RecordedRequest& r) {
    auto range = requested_range(r);
    // The segment at the middle breaks once, after 100 kB.
    if (range && range->first == kSize / 2 && broken++ == 0) {
      auto a = answer_ranges(r, kSize, "\"s1\"");
      return Script().send(a.head + body_.substr(a.from, 100'000)).pause_ms(20).reset();
    }
    return serve_ranges(r, body_, "\"s1\"");
  });
  client(retrying(2));
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  std::map<std::uint64_t, int> asked;
  for (auto& [first, last] : segments(server)) ++asked[first];
  EXPECT_EQ(asked[kSize / 2], 2) << "the broken segment asked for twice";
  for (auto& [first, n] : asked)
    if (first != kSize / 2) {
      EXPECT_EQ(n, 1) << "segment at " << first << " asked for again";
    }
  EXPECT_EQ(server.requests().size(), 5u);
}

// The first response breaks inside its own segment: the rest of that segment is fetched by a
// segment request from exactly where the stream stopped (every byte it got is written).
TEST_F(SplitTest, AFirstStreamBrokenInItsSegmentLeavesNoHole) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) {  // 700 kB: inside the first 1.5 MiB
      return Script()
          .send(answer_ranges(r, kSize, "\"s1\"").head + body_.substr(0, 700'000))
          .pause_ms(20)
          .reset();
    }
    return serve_ranges(r, body_, "\"s1\"");
  });
  client(retrying(1));
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  EXPECT_EQ(o->result.bytes, kSize) << "no byte counted twice";
}

// A first stream slower than the lowest speed hands its segment over instead of retrying the
// whole download.
TEST_F(SplitTest, ASlowFirstStreamHandsItsSegmentOver) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) {
      Script s;
      s.send(answer_ranges(r, kSize, "\"s1\"").head + body_.substr(0, 300'000));
      for (int i = 0; i < 60; ++i) s.pause_ms(100).send(body_.substr(300'000 + i, 1));
      return s;
    }
    return serve_ranges(r, body_, "\"s1\"");
  });
  ClientOptions o = retrying(1);
  o.low_speed_bytes_per_s = 10'000;
  o.low_speed_time_ms = 1000;
  client(o);
  auto out = get_split(server.url("/big"), 4);
  run();
  ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  expect_only_the_file();
  EXPECT_EQ(out->result.attempts, 1) << "the download itself was not retried";
}

// Held bytes that are only in memory (a small first attempt) are not a base for segments: the
// resumed download goes on as one stream, whole and correct.
TEST_F(SplitTest, AResumeOfBytesHeldInMemoryDoesNotSplit) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nETag: \"s1\"\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n" +
                body_.substr(0, 10'000) + "\r\n")
          .pause_ms(20)
          .reset();
    return serve_ranges(r, body_, "\"s1\"");
  });
  client(retrying(2));
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  EXPECT_TRUE(segments(server).empty()) << "no segment requests";
}

TEST_F(SplitTest, ASegmentThatKeepsFailingFailsTheDownloadAndLeavesNoFile) {
  TestServer server([&](const RecordedRequest& r) {
    auto range = requested_range(r);
    if (range && range->first == kSize / 2) return Script().send(http_response(500, "no"));
    return serve_ranges(r, body_, "\"s1\"");
  });
  client(retrying(1));
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_FALSE(o->result.ok());
  EXPECT_EQ(o->result.error.code, Errc::http_status);
  EXPECT_NE(o->result.error.message().find("segment from byte " + std::to_string(kSize / 2)),
            std::string::npos)
      << o->result.error.message();
  EXPECT_NE(o->result.error.message().find("HTTP 500"), std::string::npos);
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
  EXPECT_FALSE(exists(path_ + ".part.meta"));
  EXPECT_EQ(client().stats().active, 0u) << "no segment left behind";
}

TEST_F(SplitTest, ARangeAnsweredWithTheWholeBodyFailsClearly) {
  TestServer server([&](const RecordedRequest& r) {
    auto range = requested_range(r);
    if (range && range->first == kSize / 4)  // this one ignores the range
      return Script().send(http_response(200, body_, {{"Accept-Ranges", "bytes"}}));
    return serve_ranges(r, body_, "\"s1\"");
  });
  client();
  auto o = get_split(server.url("/big"), 4);
  run();
  ASSERT_FALSE(o->result.ok());
  EXPECT_NE(o->result.error.message().find("got HTTP 200"), std::string::npos)
      << o->result.error.message();
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
}

TEST_F(SplitTest, NoSplitWithoutAcceptRangesBelowTheSizeOrWithAChecksum) {
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/plain") return Script().send(http_response(200, body_));
    return serve_ranges(r, body_, "\"s1\"");
  });
  client();
  auto plain = get_split(server.url("/plain"), 4);
  run();
  ASSERT_TRUE(plain->result.ok()) << plain->result.error.message();
  expect_only_the_file();
  std::filesystem::remove(path_);

  Request small;
  small.sink = make_file_sink(path_);
  small.split = 4;
  small.min_split_size = kSize + 1;
  auto big_minimum = fetch(server.url("/ranged"), std::move(small));
  run();
  ASSERT_TRUE(big_minimum->result.ok()) << big_minimum->result.error.message();
  expect_only_the_file();
  std::filesystem::remove(path_);

  auto hashed = get_split(server.url("/ranged"), 4, false, "md5=00000000000000000000000000000000");
  run();
  EXPECT_EQ(hashed->result.error.code, Errc::checksum_mismatch);
  EXPECT_EQ(server.requests().size(), 3u) << "one request each, no segment";
  EXPECT_TRUE(segments(server).empty());
}

TEST_F(SplitTest, ALaterRunFetchesOnlyTheSegmentsNotDone) {
  std::atomic<bool> fail_last{true};
  TestServer server([&](const RecordedRequest& r) {
    auto range = requested_range(r);
    if (fail_last && range && range->second && *range->second == kSize - 1)
      return Script().pause_ms(300).send(http_response(503, "later"));  // after the others
    return serve_ranges(r, body_, "\"s1\"");
  });
  client();  // no retries: the first run fails on its last segment
  auto first = get_split(server.url("/big"), 4, true);
  run();
  ASSERT_FALSE(first->result.ok());
  ASSERT_TRUE(exists(path_ + ".part"));
  EXPECT_EQ(std::filesystem::file_size(path_ + ".part"), kSize) << "preallocated";
  std::string meta = read_file(path_ + ".part.meta");
  EXPECT_NE(meta.find("split"), std::string::npos) << meta;
  EXPECT_NE(meta.find("done 0-"), std::string::npos) << meta;
  std::size_t before = server.requests().size();

  fail_last = false;
  auto second = get_split(server.url("/big"), 4, true);
  run();
  ASSERT_TRUE(second->result.ok()) << second->result.error.message();
  expect_only_the_file();
  auto reqs = server.requests();
  for (std::size_t i = before; i < reqs.size(); ++i) {
    EXPECT_TRUE(requested_range(reqs[i])) << "every request of the second run asks for a range";
    EXPECT_EQ(reqs[i].header("If-Range").value_or(""), "\"s1\"");
  }
  EXPECT_GT(second->result.resumed_from, 0u);
  EXPECT_EQ(second->result.resumed_from + second->result.bytes, kSize);
  EXPECT_LT(second->result.bytes, kSize / 2) << "only what was missing came again";
}

TEST_F(SplitTest, CancelStopsEverySegmentAndLeavesNothing) {
  TestServer server([&](const RecordedRequest& r) {
    auto a = answer_ranges(r, kSize, "\"s1\"");
    return Script().send(a.head + body_.substr(a.from, 50'000)).stall();
  });
  client();
  Request req;
  req.sink = make_file_sink(path_);
  req.split = 4;
  req.min_split_size = 1 << 20;
  req.url = server.url("/big");
  TransferResult result = not_finished();
  Callbacks cbs;
  cbs.on_done = [&](const TransferResult& r) { result = r; };
  auto id = client().get(std::move(req), std::move(cbs));
  ASSERT_TRUE(id);
  run_for(500);
  ASSERT_EQ(server.requests().size(), 4u);
  client().cancel(*id);
  run(5000);
  EXPECT_EQ(result.error.code, Errc::cancelled);
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
  EXPECT_TRUE(server.wait_for_current_connections(0, 5000));
  EXPECT_EQ(client().stats().active, 0u) << "no segment left behind";
}

// Segments go to the URL and its mirrors in turn; a mirror gets no If-Range (its validator is
// its own) and no credentials (another origin); the file is the same bytes.
TEST_F(SplitTest, SegmentsAreSpreadOverTheMirrors) {
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s0\""); });
  TestServer m1([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"m1\""); });
  TestServer m2([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"m2\""); });
  client();
  auto o = get_mirrored(first.url("/big"), {m1.url("/copy"), m2.url("/other/copy")});
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  EXPECT_EQ(o->result.bytes, kSize);
  ASSERT_EQ(segments(m1).size(), 1u);
  ASSERT_EQ(segments(m2).size(), 1u);
  EXPECT_EQ(segments(first).size(), 1u) << "the third segment comes back to the first URL";
  for (const TestServer* m : {&m1, &m2})
    for (auto& r : m->requests()) {
      EXPECT_FALSE(r.header("If-Range")) << "a mirror's validator is not the first server's";
      EXPECT_FALSE(r.header("Authorization")) << "credentials went to another origin";
    }
  EXPECT_EQ(m2.requests()[0].target, "/other/copy");
  for (auto& r : first.requests()) {
    EXPECT_EQ(r.header("Authorization").value_or(""), "Bearer for-the-first-origin");
    if (r.header("Range")) {
      EXPECT_EQ(r.header("If-Range").value_or(""), "\"s0\"");
    }
  }
}

// A mirror that fails its segment (retries spent) gets no more; another URL fetches the part,
// and the download succeeds.
TEST_F(SplitTest, AMirrorThatFailsHandsItsSegmentToAnother) {
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s0\""); });
  TestServer bad([&](const RecordedRequest&) { return Script().send(http_response(500, "no")); });
  TestServer good([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"g\""); });
  client(retrying(1));
  auto o = get_mirrored(first.url("/big"), {bad.url("/big"), good.url("/big")});
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  EXPECT_EQ(bad.requests().size(), 2u) << "one segment, asked twice (one retry), then no more";
  std::size_t asked_elsewhere = segments(first).size() + segments(good).size();
  EXPECT_EQ(asked_elsewhere, 3u) << "the bad mirror's segment went to another URL";
}

// A mirror whose copy has another size fails the size check and is dropped.
TEST_F(SplitTest, AMirrorWithAnotherSizeIsDropped) {
  std::string longer = body_ + "more";
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s0\""); });
  TestServer other([&](const RecordedRequest& r) { return serve_ranges(r, longer, "\"o\""); });
  client(retrying(0));
  auto o = get_mirrored(first.url("/big"), {other.url("/big")});
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  // Two of the three segments went to it at once, before either failed; both came back to
  // the first URL, and no third was sent to it.
  auto to_other = segments(other);
  EXPECT_EQ(to_other.size(), 2u);
  auto to_first = segments(first);
  EXPECT_EQ(to_first.size(), 3u);
  for (auto& seg : to_other)
    EXPECT_NE(std::find(to_first.begin(), to_first.end(), seg), to_first.end())
        << seg.first << " was not asked again of the first URL";
}

// A mirror that breaks in the middle of its segment: the rest is asked for from the first byte
// the file lacks, of another URL.
TEST_F(SplitTest, AMirrorBrokenMidSegmentLeavesOnlyTheRestToFetch) {
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body_, "\"s0\""); });
  TestServer breaks([&](const RecordedRequest& r) {
    auto a = answer_ranges(r, kSize, "\"b\"");
    return Script().send(a.head + body_.substr(a.from, 300'000)).pause_ms(20).reset();
  });
  client();
  auto o = get_mirrored(first.url("/big"), {breaks.url("/big")}, 3);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file();
  auto broken = segments(breaks);
  ASSERT_EQ(broken.size(), 1u);
  std::uint64_t from = broken[0].first, to = broken[0].second + 1;
  bool rest_asked = false;
  for (auto& [a, b] : segments(first))
    if (a > from && a <= from + 300'000 && b + 1 == to) rest_asked = true;
  EXPECT_TRUE(rest_asked) << "the rest of [" << from << ", " << to << ") was not asked for";
}

// Every URL failing fails the download, and leaves no file.
TEST_F(SplitTest, EveryUrlFailingFailsTheDownload) {
  TestServer first([&](const RecordedRequest& r) {
    if (r.header("Range")) return Script().send(http_response(503, "busy"));
    return serve_ranges(r, body_, "\"s0\"");
  });
  TestServer bad([&](const RecordedRequest&) { return Script().send(http_response(404, "no")); });
  client();
  auto o = get_mirrored(first.url("/big"), {bad.url("/big")});
  run();
  ASSERT_FALSE(o->result.ok());
  EXPECT_NE(o->result.error.message().find("other URLs had failed"), std::string::npos)
      << o->result.error.message();
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
  EXPECT_EQ(client().stats().active, 0u);
}

// A slow mirror: the connections that finished take the second half of its part (it is cut
// where they begin, and stops there), so the download does not wait for it to trickle out.
TEST_F(SplitTest, FastConnectionsTakeHalfOfASlowMirrorsPart) {
  std::string body = pattern_bytes(12 << 20, 77);
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"s0\""); });
  TestServer fast([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"f\""); });
  TestServer slow(
      [&](const RecordedRequest& r) { return trickle_ranges(r, body, "\"w\"", 0, 65536, 15); });
  client();
  Request req;
  req.sink = make_file_sink(path_, {});
  req.split = 3;
  req.min_split_size = 1 << 20;
  req.mirrors = {fast.url("/big"), slow.url("/big")};
  auto o = fetch(first.url("/big"), std::move(req));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(read_file(path_) == body) << "the file differs from the source";
  EXPECT_FALSE(exists(path_ + ".part"));
  auto slow_parts = segments(slow);
  ASSERT_EQ(slow_parts.size(), 1u);
  std::uint64_t from = slow_parts[0].first, to = slow_parts[0].second + 1;
  bool taken = false;
  for (const TestServer* s : {&first, &fast})
    for (auto& [a, b] : segments(*s))
      if (a > from && a < to && b + 1 == to) taken = true;
  EXPECT_TRUE(taken) << "no connection took the second half of [" << from << ", " << to << ")";
  EXPECT_EQ(o->result.bytes, body.size());
}

// A mirror fast at first that slows down after the other parts are done: nothing is worth
// taking when they end, but a look a little later sees its new pace and takes half of the rest.
TEST_F(SplitTest, APartThatSlowsDownLaterIsStillCut) {
  std::string body = pattern_bytes(12 << 20, 78);
  TestServer first([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"s0\""); });
  TestServer tiring([&](const RecordedRequest& r) {  // three quarters of its part at once
    return trickle_ranges(r, body, "\"t\"", (4 << 20) * 3 / 4, 32768, 50);
  });
  client();
  Request req;
  req.sink = make_file_sink(path_, {});
  req.split = 3;
  req.min_split_size = 1 << 20;
  req.mirrors = {tiring.url("/big")};
  auto o = fetch(first.url("/big"), std::move(req));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(read_file(path_) == body) << "the file differs from the source";
  auto parts = segments(tiring);
  ASSERT_EQ(parts.size(), 1u);
  std::uint64_t from = parts[0].first, to = parts[0].second + 1;
  bool taken = false;
  for (auto& [a, b] : segments(first))
    if (a > from + (to - from) * 3 / 4 && b + 1 == to) taken = true;
  EXPECT_TRUE(taken) << "nobody took the slow end of [" << from << ", " << to << ")";
  EXPECT_EQ(o->result.bytes, body.size());
}

}  // namespace
}  // namespace uvget::test
