// Sinks: backpressure through a user-defined sink, memory limits, large files on disk.
#include <gtest/gtest.h>

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

TEST_F(SinkTest, FileSinkWithSmallWaterMarksStillWritesEveryByte) {
  // Water marks far below one read force the pause/drain cycle on almost every read.
  TestServer server;
  std::string body = pattern_bytes(3 * 1024 * 1024, 11);
  server.route("/big", Script().send(http_response(200, body)));
  std::string dir = make_temp_dir("uvget-sink");
  FileSinkOptions fo;
  fo.high_water = 16 * 1024;
  fo.low_water = 4 * 1024;
  Request r;
  r.sink = make_file_sink(dir + "/big", fo);
  auto o = fetch(server.url("/big"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(read_file(dir + "/big") == body);
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
