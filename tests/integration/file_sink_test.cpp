// Sinks: backpressure through a user-defined sink, memory limits, large files on disk.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "sink/body_buffers.hpp"
#include "sink/split_file.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using SinkTest = LoopTest;

// A sink that says "stop" after every 64 KiB and drains on a timer: the client must stop
// reading each time, so the bytes held by the sink stay bounded.
class SlowSink final : public Sink {
 public:
  explicit SlowSink(std::string* out, std::size_t* max_held) : out_(out), max_held_(max_held) {}
  ~SlowSink() override {
    if (timer_)
      uv_close(reinterpret_cast<uv_handle_t*>(timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  Error open(uv_loop_s* loop, const Response&, Events ev) override {
    ev_ = std::move(ev);
    timer_ = new uv_timer_t;
    uv_timer_init(loop, timer_);
    timer_->data = this;
    return {};
  }
  bool write(std::span<const std::byte> b) override {
    held_ += b.size();
    *max_held_ = std::max(*max_held_, held_);
    out_->append(reinterpret_cast<const char*>(b.data()), b.size());
    if (held_ < 64 * 1024) return true;
    ++pauses;
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<SlowSink*>(t->data);
          self->held_ = 0;
          self->ev_.drained();
        },
        2, 0);
    return false;
  }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }
  int pauses = 0;

 private:
  std::string* out_;
  std::size_t* max_held_;
  std::size_t held_ = 0;
  Events ev_;
  uv_timer_t* timer_ = nullptr;
};

TEST_F(SinkTest, UserSinkBackpressurePausesReading) {
  TestServer server;
  std::string body = pattern_bytes(4 * 1024 * 1024, 9);
  server.route("/big", Script().send(http_response(200, body)));
  std::string got;
  std::size_t max_held = 0;
  Request r;
  auto sink = std::make_unique<SlowSink>(&got, &max_held);
  r.sink = std::move(sink);
  auto o = fetch(server.url("/big"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(got, body);
  // Held bytes are bounded by the pause threshold plus what one read can bring.
  EXPECT_LT(max_held, 64u * 1024 + 512 * 1024);
}

// A sink that says how much it takes (room()) is never handed more than that from one read
// (16 KiB at the least): what it holds stays at its bound, not its bound plus a whole read.
class RoomSink final : public Sink {
 public:
  RoomSink(std::string* out, std::size_t* largest) : out_(out), largest_(largest) {}
  Error open(uv_loop_s*, const Response&, Events) override { return {}; }
  bool write(std::span<const std::byte> b) override {
    *largest_ = std::max(*largest_, b.size());
    out_->append(reinterpret_cast<const char*>(b.data()), b.size());
    return true;
  }
  std::size_t room() const override { return 20 * 1024; }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }

 private:
  std::string* out_;
  std::size_t* largest_;
};

TEST_F(SinkTest, ReadsForASinkAreCutToItsRoom) {
  TestServer server;
  std::string body = pattern_bytes(4 * 1024 * 1024, 19);
  server.route("/big", Script().send(http_response(200, body)));
  std::string got;
  std::size_t largest = 0;
  Request r;
  r.sink = std::make_unique<RoomSink>(&got, &largest);
  auto o = fetch(server.url("/big"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(got == body);
  EXPECT_GT(largest, 0u);
  EXPECT_LE(largest, 20u * 1024);
}

TEST_F(SinkTest, FileSinkWithSmallWaterMarksStillWritesEveryByte) {
  // Water marks far below one read force the pause/drain cycle on almost every read; marks of
  // one byte pause reading at every write, and every completed write must resume it.
  struct Marks {
    std::size_t high, low;
  };
  for (Marks m : {Marks{16 * 1024, 4 * 1024}, Marks{1, 1}}) {
    TestServer server;
    std::string body = pattern_bytes(m.high == 1 ? 1024 * 1024 : 3 * 1024 * 1024, 11);
    server.route("/big", Script().send(http_response(200, body)));
    std::string dir = make_temp_dir("uvget-sink");
    FileSinkOptions fo;
    fo.high_water = m.high;
    fo.low_water = m.low;
    Request r;
    r.sink = make_file_sink(dir + "/big", fo);
    auto o = fetch(server.url("/big"), std::move(r));
    run();
    ASSERT_TRUE(o->result.ok()) << m.high << ": " << o->result.error.message();
    EXPECT_TRUE(read_file(dir + "/big") == body) << m.high;
    remove_tree(dir);
  }
}

// A sink that streamed on one thread and is destroyed on another does not disturb the second
// thread's count of streaming sinks: a new sink there still takes a whole high-water mark.
TEST_F(SinkTest, SinkDestroyedOnAnotherThreadLeavesThisThreadsBudgetAlone) {
  std::string dir = make_temp_dir("uvget-sink");
  Response head;
  head.status = 200;
  std::unique_ptr<Sink> sink = make_file_sink(dir + "/t");
  ASSERT_FALSE(sink->open(&loop_, head, {}));
  const std::string chunk(100 * 1024, 'y');
  std::thread([&] { sink->write(std::as_bytes(std::span(chunk.data(), chunk.size()))); }).join();
  bool aborted = false;
  sink->abort(Error(Errc::cancelled, "test"), [&] { aborted = true; });
  run();
  EXPECT_TRUE(aborted);
  sink.reset();  // here, not on the thread that counted it
  auto fresh = make_file_sink(dir + "/u");
  EXPECT_EQ(fresh->room(), 256u * 1024);
  fresh.reset();
  remove_tree(dir);
}

TEST_F(SinkTest, MemorySinkLimitFailsTheTransfer) {
  TestServer server;
  server.route("/big", Script().send(http_response(200, pattern_bytes(10'000))));
  server.route("/chunked",
               Script().send(chunked_response(200, {pattern_bytes(600), pattern_bytes(600)})));
  std::string a, b;
  Request r1, r2;
  r1.sink = make_memory_sink(&a, 1000);
  r2.sink = make_memory_sink(&b, 1000);
  auto o1 = fetch(server.url("/big"), std::move(r1));
  auto o2 = fetch(server.url("/chunked"), std::move(r2));
  run();
  EXPECT_EQ(o1->result.error.code, Errc::body_too_large) << o1->result.error.message();
  EXPECT_EQ(o2->result.error.code, Errc::body_too_large) << o2->result.error.message();
}

TEST_F(SinkTest, ManySmallFilesLandWithTheirOwnBytes) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(
        200, pattern_bytes(4096, static_cast<uint32_t>(r.target.size() * 7919 + r.target.back()))));
  });
  std::string dir = make_temp_dir("uvget-sink");
  ClientOptions o;
  o.max_connections = 8;
  client(o);
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 300; ++i) {
    Request r;
    r.sink = make_file_sink(dir + "/f" + std::to_string(i));
    all.push_back(fetch(server.url("/f" + std::to_string(i)), std::move(r)));
  }
  run();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
    std::string target = "/f" + std::to_string(i);
    EXPECT_EQ(read_file(dir + "/f" + std::to_string(i)),
              pattern_bytes(4096, static_cast<uint32_t>(target.size() * 7919 + target.back())));
  }
  remove_tree(dir);
}

// Medium files one after another over two connections: each streamed body's buffers go back to
// a pool when its sink ends and the next sink takes them. Bodies of falling sizes, arriving in
// pieces (so a buffer is taken while it already holds bytes), must each land with exactly
// their own bytes: nothing of an earlier, longer body, nothing lost in the hand-over.
TEST_F(SinkTest, MediumFilesInTurnLandWithTheirOwnBytes) {
  constexpr int kFiles = 16;
  auto body_of = [](int i) {
    return pattern_bytes(900'000 - static_cast<std::size_t>(i) * 37'000, 100 + i);
  };
  TestServer server([&](const RecordedRequest& r) {
    std::string body = body_of(std::stoi(r.target.substr(2)));
    Script s;
    // 60,000 bytes first: held in memory, under the small-file size, when the next piece comes.
    s.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body.substr(0, 60'000))
        .pause_ms(2);
    for (std::size_t off = 60'000; off < body.size(); off += 16 * 1024)
      s.send(body.substr(off, 16 * 1024)).pause_ms(1);
    return s;
  });
  std::string dir = make_temp_dir("uvget-sink");
  ClientOptions o;
  o.max_connections = 2;
  client(o);
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < kFiles; ++i) {
    Request r;
    r.sink = make_file_sink(dir + "/m" + std::to_string(i));
    all.push_back(fetch(server.url("/m" + std::to_string(i)), std::move(r)));
  }
  run();
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
    EXPECT_TRUE(read_file(dir + "/m" + std::to_string(i)) == body_of(i)) << "file " << i;
  }
  // The last sinks' buffers wait in the pool for the next body; closing the client frees them.
  EXPECT_GT(pooled_body_bytes(), 0u);
  client_->close([] {});
  run();
  EXPECT_EQ(pooled_body_bytes(), 0u);
  remove_tree(dir);
}

// Bodies streamed at once share a memory budget (32 MiB a loop): one alone is held up to its
// high-water mark (256 KiB) before reading pauses; with 300 streaming, each pauses at about
// 32 MiB / 300, so memory stays near the budget instead of growing with the connections.
TEST_F(SinkTest, ManyStreamedBodiesShareAMemoryBudget) {
  std::string dir = make_temp_dir("uvget-sink");
  Response head;
  head.status = 200;  // no Content-Length: nothing is reserved on disk
  const std::string chunk(16 * 1024, 'x');
  auto bytes = std::as_bytes(std::span(chunk.data(), chunk.size()));
  auto accepted = [&](Sink& sink) {  // bytes taken until write() asks the reader to pause
    std::size_t n = 0;
    while (n < (8u << 20)) {
      n += chunk.size();
      if (!sink.write(bytes)) break;
    }
    return n;
  };
  constexpr int kSinks = 300;
  std::vector<std::unique_ptr<Sink>> sinks;
  for (int i = 0; i < kSinks; ++i) {
    sinks.push_back(make_file_sink(dir + "/b" + std::to_string(i)));
    ASSERT_FALSE(sinks.back()->open(&loop_, head, {}));
  }
  EXPECT_EQ(sinks[0]->room(), 256u * 1024);  // what it takes before pausing, as the client reads
  std::size_t first = accepted(*sinks[0]);
  EXPECT_EQ(sinks[0]->room(), 0u);
  EXPECT_GE(first, 256u * 1024);
  EXPECT_LE(first, 256u * 1024 + chunk.size());
  std::size_t last = 0;
  for (int i = 1; i < kSinks; ++i) last = accepted(*sinks[i]);
  EXPECT_GE(last, (32u << 20) / kSinks);
  EXPECT_LE(last, (32u << 20) / kSinks + chunk.size());
  int aborted = 0;
  for (auto& sink : sinks) sink->abort(Error(Errc::cancelled, "test"), [&] { ++aborted; });
  run();
  EXPECT_EQ(aborted, kSinks);
  sinks.clear();
  EXPECT_FALSE(exists(dir + "/b0.part")) << "an aborted body leaves nothing";
  remove_tree(dir);
}

// The segments of a split download share that budget too, and say their room as a whole
// file's sink does: 300 segments at once each pause at about 32 MiB / 300.
TEST_F(SinkTest, SegmentsShareTheMemoryBudget) {
  std::string dir = make_temp_dir("uvget-sink");
  constexpr int kSegments = 300;
  constexpr std::uint64_t kEach = 1 << 20;
  Response head;
  head.status = 200;
  auto file = make_file_sink(dir + "/big");
  auto* split = dynamic_cast<SplitFile*>(file.get());
  ASSERT_NE(split, nullptr);
  ASSERT_FALSE(split->open_split(&loop_, head, kSegments * kEach, false, {}));
  const std::string chunk(16 * 1024, 'x');
  auto bytes = std::as_bytes(std::span(chunk.data(), chunk.size()));
  std::vector<std::unique_ptr<Sink>> segments;
  for (int i = 0; i < kSegments; ++i) {
    std::uint64_t from = static_cast<std::uint64_t>(i) * kEach;
    segments.push_back(split->segment({from, from + kEach}, false, nullptr));
    ASSERT_FALSE(segments.back()->open(&loop_, head, {}));
  }
  EXPECT_EQ(segments[0]->room(), 256u * 1024) << "alone: its high-water mark";
  std::size_t last = 0;
  for (auto& seg : segments) {
    last = 0;
    while (last < kEach) {
      last += chunk.size();
      if (!seg->write(bytes)) break;
    }
  }
  EXPECT_EQ(segments.back()->room(), 0u);
  EXPECT_LE(last, std::max<std::size_t>((32u << 20) / kSegments, 64u << 10) + chunk.size());
  EXPECT_LT(last, 256u * 1024) << "held less than a segment alone would";
  int ended = 0;
  for (auto& seg : segments) seg->abort(Error(Errc::cancelled, "test"), [&] { ++ended; });
  run();
  file->abort(Error(Errc::cancelled, "test"), [&] { ++ended; });
  run();
  EXPECT_EQ(ended, kSegments + 1);
  segments.clear();
  remove_tree(dir);
}

TEST_F(SinkTest, ExistingFileIsReplacedOnlyOnSuccess) {
  TestServer server;
  server.route("/good", Script().send(http_response(200, "new content")));
  server.route("/bad",
               Script().send("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npartial").close());
  std::string dir = make_temp_dir("uvget-sink");
  { std::ofstream(dir + "/a") << "old a"; }
  { std::ofstream(dir + "/b") << "old b"; }
  Request r1, r2;
  r1.sink = make_file_sink(dir + "/a");
  r2.sink = make_file_sink(dir + "/b");
  auto o1 = fetch(server.url("/good"), std::move(r1));
  auto o2 = fetch(server.url("/bad"), std::move(r2));
  run();
  EXPECT_TRUE(o1->result.ok());
  EXPECT_FALSE(o2->result.ok());
  EXPECT_EQ(read_file(dir + "/a"), "new content");
  EXPECT_EQ(read_file(dir + "/b"), "old b") << "a failed download must not touch the old file";
  remove_tree(dir);
}

// unique_name: a file that appears under NAME while the body streams (another program, another
// download) is never replaced; the body takes NAME.1 and the result says so. Checked for a small
// body (one job: open, write, close, rename) and a large one (.part opened early).
TEST_F(SinkTest, UniqueNameNeverReplacesAFileThatAppearedMeanwhile) {
  TestServer server;
  std::string small = pattern_bytes(4096, 3), large = pattern_bytes(1 << 20, 4);
  server.route("/small", Script().send(http_response(200, small)));
  server.route("/large",
               Script()
                   .send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(large.size()) +
                         "\r\n\r\n" + large.substr(0, 100'000))
                   .pause_ms(100)
                   .send(large.substr(100'000)));
  std::string dir = make_temp_dir("uvget-sink");
  std::map<std::string, TransferResult> results;
  for (std::string name : {"small", "large"}) {
    Request r;
    r.url = server.url("/" + name);
    FileSinkOptions fo;
    fo.unique_name = true;
    r.sink = make_file_sink(dir + "/" + name, fo);
    Callbacks cbs;
    // The head arrived, nothing is renamed yet: another writer takes the name now.
    cbs.on_head = [dir, name](const Response&) {
      std::ofstream(dir + "/" + name) << "another program's " << name;
    };
    cbs.on_done = [&results, name](const TransferResult& res) { results[name] = res; };
    ASSERT_TRUE(client().get(std::move(r), std::move(cbs)));
  }
  run();
  for (std::string name : {"small", "large"}) {
    const TransferResult& res = results[name];
    ASSERT_TRUE(res.ok()) << name << ": " << res.error.message();
    EXPECT_EQ(res.path, dir + "/" + name + ".1");
    EXPECT_EQ(read_file(dir + "/" + name), "another program's " + name);
    EXPECT_TRUE(read_file(dir + "/" + name + ".1") == (name == "small" ? small : large)) << name;
    EXPECT_FALSE(exists(dir + "/" + name + ".part"));
    EXPECT_FALSE(exists(dir + "/" + name + ".1.part"));
  }
  remove_tree(dir);
}

// unique_name: NAME.part of another download (or an earlier run) is neither truncated nor
// removed; this body goes to NAME.1.part and then NAME.1. A sink without unique_name reports
// the name it was given.
TEST_F(SinkTest, UniqueNameLeavesAnotherDownloadsPartAlone) {
  TestServer server;
  std::string small = pattern_bytes(1000, 5), large = pattern_bytes(300'000, 6);
  server.route("/small", Script().send(http_response(200, small)));
  server.route("/large", Script().send(http_response(200, large)));
  server.route("/plain", Script().send(http_response(200, "plain")));
  std::string dir = make_temp_dir("uvget-sink");
  { std::ofstream(dir + "/small.part") << "half of small"; }
  { std::ofstream(dir + "/large.part") << "half of large"; }
  FileSinkOptions fo;
  fo.unique_name = true;
  Request r1, r2, r3;
  r1.sink = make_file_sink(dir + "/small", fo);
  r2.sink = make_file_sink(dir + "/large", fo);
  r3.sink = make_file_sink(dir + "/plain");
  auto o1 = fetch(server.url("/small"), std::move(r1));
  auto o2 = fetch(server.url("/large"), std::move(r2));
  auto o3 = fetch(server.url("/plain"), std::move(r3));
  run();
  ASSERT_TRUE(o1->result.ok()) << o1->result.error.message();
  ASSERT_TRUE(o2->result.ok()) << o2->result.error.message();
  ASSERT_TRUE(o3->result.ok()) << o3->result.error.message();
  EXPECT_EQ(read_file(dir + "/small.part"), "half of small");
  EXPECT_EQ(read_file(dir + "/large.part"), "half of large");
  EXPECT_FALSE(exists(dir + "/small")) << "NAME is left for whoever owns NAME.part";
  EXPECT_EQ(o1->result.path, dir + "/small.1");
  EXPECT_EQ(o2->result.path, dir + "/large.1");
  EXPECT_EQ(o3->result.path, dir + "/plain");
  EXPECT_TRUE(read_file(dir + "/small.1") == small);
  EXPECT_TRUE(read_file(dir + "/large.1") == large);
  EXPECT_FALSE(exists(dir + "/large.1.part"));
  EXPECT_FALSE(exists(dir + "/large.1.part.meta"));
  remove_tree(dir);
}

// unique_name and a retry that starts the file over: the sink truncates its own .part, it does
// not take the next name and leave the first .part behind.
TEST_F(SinkTest, UniqueNameRetryReusesItsOwnPart) {
  std::string body = pattern_bytes(500'000, 7);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)  // no validator: the retry starts over
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                body.substr(0, 200'000))
          .reset();
    return Script().send(http_response(200, body));
  });
  ClientOptions co;
  co.retries = 1;
  co.retry_wait_ms = 1;
  client(co);
  std::string dir = make_temp_dir("uvget-sink");
  FileSinkOptions fo;
  fo.unique_name = true;
  Request r;
  r.sink = make_file_sink(dir + "/out", fo);
  auto o = fetch(server.url("/out"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.attempts, 2);
  EXPECT_EQ(o->result.path, dir + "/out");
  EXPECT_TRUE(read_file(dir + "/out") == body);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"out"});
  remove_tree(dir);
}

TEST_F(SinkTest, PlantedSymlinkAtPartPathIsNotFollowed) {
  TestServer server;
  server.route("/x", Script().send(http_response(200, pattern_bytes(100'000))));
  std::string dir = make_temp_dir("uvget-sink");
  { std::ofstream(dir + "/victim") << "precious"; }
  std::filesystem::create_symlink(dir + "/victim", dir + "/out.part");
  Request r;
  r.sink = make_file_sink(dir + "/out");
  auto o = fetch(server.url("/x"), std::move(r));
  run();
  EXPECT_EQ(o->result.error.code, Errc::file_io) << o->result.error.message();
  EXPECT_EQ(read_file(dir + "/victim"), "precious");
  remove_tree(dir);
}

// A file sink replaces regular files only: a symbolic link at its name is refused (the link and
// what it points at stay as they were) unless write_through_symlink, and then the body lands
// where it points, small (one job) or streamed.
TEST_F(SinkTest, ASymlinkAtTheNameIsRefusedUnlessWrittenThrough) {
  TestServer server;
  std::string large = pattern_bytes(300'000, 8);
  server.route("/small", Script().send(http_response(200, "small")));
  server.route("/large", Script().send(http_response(200, large)));
  std::string dir = make_temp_dir("uvget-sink");
  { std::ofstream(dir + "/victim") << "precious"; }
  std::filesystem::create_symlink(dir + "/victim", dir + "/out");
  std::vector<std::shared_ptr<LoopTest::Outcome>> refused, through;
  for (auto target : {"/small", "/large"}) {
    Request r;
    r.sink = make_file_sink(dir + "/out");
    refused.push_back(fetch(server.url(target), std::move(r)));
  }
  run();
  for (auto& o : refused) {
    EXPECT_EQ(o->result.error.code, Errc::file_io);
    EXPECT_NE(o->result.error.message().find("symbolic link"), std::string::npos)
        << o->result.error.message();
  }
  EXPECT_EQ(read_file(dir + "/victim"), "precious");
  EXPECT_TRUE(std::filesystem::is_symlink(dir + "/out"));
  for (auto [target, name] : {std::pair{"/small", "/out"}, std::pair{"/large", "/out2"}}) {
    if (std::string(name) != "/out") std::filesystem::create_symlink("victim2", dir + name);
    FileSinkOptions fo;
    fo.write_through_symlink = true;
    Request r;
    r.sink = make_file_sink(dir + name, fo);
    through.push_back(fetch(server.url(target), std::move(r)));
    run();
  }
  for (auto& o : through) EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(read_file(dir + "/victim"), "small");
  EXPECT_TRUE(read_file(dir + "/victim2") == large);
  EXPECT_TRUE(std::filesystem::is_symlink(dir + "/out"));
  EXPECT_TRUE(std::filesystem::is_symlink(dir + "/out2"));
  remove_tree(dir);
}

}  // namespace
}  // namespace uvget::test

namespace uvget::test {
namespace {

TEST_F(SinkTest, LargeFilesWithVariousWaterMarksKeepEveryByte) {
  std::string dir = make_temp_dir("uvget-marks");
  std::vector<std::string> bodies;
  TestServer server;
  for (int i = 0; i < 8; ++i) {
    bodies.push_back(pattern_bytes(1'000'000 + static_cast<std::size_t>(i) * 333'333, i));
    server.route("/" + std::to_string(i), Script().send(http_response(200, bodies.back())));
  }
  client();
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 8; ++i) {
    Request req;
    FileSinkOptions fo;
    fo.high_water = 64 * 1024 * static_cast<std::size_t>(1 + i % 3);  // different room each
    fo.low_water = 16 * 1024;
    req.sink = make_file_sink(dir + "/f" + std::to_string(i), fo);
    all.push_back(fetch(server.url("/" + std::to_string(i)), std::move(req)));
  }
  run();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
    EXPECT_EQ(read_file(dir + "/f" + std::to_string(i)), bodies[static_cast<std::size_t>(i)]);
  }
  remove_tree(dir);
}

}  // namespace
}  // namespace uvget::test
