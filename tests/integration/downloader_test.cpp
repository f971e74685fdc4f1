// Client and Runner are both a Downloader: code written against the interface drives either the
// same way (the command line holds one). Downloads, a cancel and a close, through the interface.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using DownloaderTest = LoopTest;

struct Downloads {
  std::vector<TransferResult> results;
  std::vector<std::string> bodies = std::vector<std::string>(3);
  bool closed = false;
};

// Three downloads, the last cancelled at once, then a close once all three have reported.
void drive(Downloader& d, const TestServer& server, Downloads& run) {
  std::vector<TransferId> ids;
  for (int i = 0; i < 3; ++i) {
    Request req;
    req.url = server.url(i == 2 ? "/never" : "/f" + std::to_string(i));
    req.sink = make_memory_sink(&run.bodies[static_cast<std::size_t>(i)]);
    Callbacks cbs;
    cbs.on_done = [&run, &d](const TransferResult& r) {
      run.results.push_back(r);
      if (run.results.size() == 3) d.close([&run] { run.closed = true; });
    };
    auto id = d.get(std::move(req), std::move(cbs));
    ASSERT_TRUE(id) << id.error().message();
    ids.push_back(*id);
  }
  d.cancel(ids[2]);
}

TEST_F(DownloaderTest, AClientAndARunnerAreDrivenAlikeThroughTheInterface) {
  TestServer server([](const RecordedRequest& r) {
    if (r.target == "/never") return Script().stall();
    return Script().send(http_response(200, "body of " + r.target));
  });
  for (int loops : {0, 2}) {
    std::unique_ptr<Downloader> d;
    if (loops == 0) {
      auto c = Client::create(&loop_);
      ASSERT_TRUE(c) << c.error().message();
      d = std::move(*c);
    } else {
      auto r = Runner::create(&loop_, RunnerOptions{loops, {}});
      ASSERT_TRUE(r) << r.error().message();
      d = std::move(*r);
    }
    Downloads got;
    drive(*d, server, got);
    this->run();
    EXPECT_TRUE(got.closed) << loops;
    ASSERT_EQ(got.results.size(), 3u) << loops;
    int ok = 0, cancelled = 0;
    for (const auto& r : got.results) {
      if (r.ok()) ++ok;
      if (r.error.code == Errc::cancelled) ++cancelled;
    }
    EXPECT_EQ(ok, 2) << loops;
    EXPECT_EQ(cancelled, 1) << loops;
    EXPECT_EQ(got.bodies[0], "body of /f0");
    EXPECT_EQ(got.bodies[1], "body of /f1");
    EXPECT_EQ(d->stats().transfers_done, 2u) << loops;
    d.reset();
    this->run();
  }
}

}  // namespace
}  // namespace uvget::test
