// The host owns the loop: callbacks never run early, cancel and close leave nothing behind.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using LifecycleTest = LoopTest;

TEST_F(LifecycleTest, OnDoneNeverRunsBeforeGetReturns) {
  bool returned = false, called_early = false, called = false;
  Request r;
  r.url = "http://127.0.0.1:1/x";  // fails as fast as anything can
  Callbacks cbs;
  cbs.on_done = [&](const TransferResult&) {
    called = true;
    if (!returned) called_early = true;
  };
  ASSERT_TRUE(client().get(std::move(r), std::move(cbs)));
  returned = true;
  run();
  EXPECT_TRUE(called);
  EXPECT_FALSE(called_early);
}

TEST_F(LifecycleTest, CloseWithTransfersInFlightCancelsThemAndFreesTheLoop) {
  TestServer server;
  server.route("/stall",
               Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc").stall());
  std::string dir = make_temp_dir("uvget-life");
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 10; ++i) {
    Request r;
    r.sink = make_file_sink(dir + "/f" + std::to_string(i));
    all.push_back(fetch(server.url("/stall"), std::move(r)));
  }
  run_for(300);  // the requests go out and the partial responses arrive
  EXPECT_EQ(server.requests().size(), 10u);
  bool closed = false;
  client().close([&] { closed = true; });
  run();
  EXPECT_TRUE(closed);
  for (auto& o : all) {
    ASSERT_TRUE(o->done);
    EXPECT_EQ(o->result.error.code, Errc::cancelled);
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(exists(dir + "/f" + std::to_string(i)));
    EXPECT_FALSE(exists(dir + "/f" + std::to_string(i) + ".part"));
  }
  client_.reset();
  EXPECT_EQ(uv_loop_close(&loop_), 0);
  ASSERT_EQ(uv_loop_init(&loop_), 0);  // TearDown closes it again
  remove_tree(dir);
}

TEST_F(LifecycleTest, CancelFailsOnlyThatTransfer) {
  TestServer server;
  server.route("/stall", Script().stall());
  server.route("/ok", Script().pause_ms(100).send(http_response(200, "fine")));
  auto stalled = std::make_shared<Outcome>();
  Request r;
  r.url = server.url("/stall");
  Callbacks cbs;
  cbs.on_done = [stalled](const TransferResult& res) {
    stalled->done = true;
    stalled->result = res;
  };
  auto id = client().get(std::move(r), std::move(cbs));
  ASSERT_TRUE(id);
  auto ok = fetch(server.url("/ok"));
  run_for(50);
  EXPECT_TRUE(server.wait_for_requests(2, 2000));
  client().cancel(*id);
  run();
  EXPECT_EQ(stalled->result.error.code, Errc::cancelled);
  EXPECT_TRUE(ok->result.ok()) << ok->result.error.message();
}

TEST_F(LifecycleTest, IdleKeepAliveConnectionsDoNotKeepTheLoopRunning) {
  TestServer server([](const RecordedRequest&) { return Script().send(http_response(200, "k")); });
  auto o = fetch(server.url("/a"));
  run(5000);  // returns once the transfer is done although a connection stays open
  ASSERT_TRUE(o->result.ok());
  EXPECT_EQ(client().stats().open_connections, 1u);
  auto o2 = fetch(server.url("/b"));
  run(5000);
  EXPECT_TRUE(o2->result.ok());
  EXPECT_EQ(server.accepted_connections(), 1);
}

TEST_F(LifecycleTest, DestroyingTheClientWithoutCloseStillFreesTheLoop) {
  TestServer server;
  server.route("/stall", Script().stall());
  bool done = false;
  Request r;
  r.url = server.url("/stall");
  Callbacks cbs;
  cbs.on_done = [&](const TransferResult& res) {
    done = true;
    EXPECT_EQ(res.error.code, Errc::cancelled);
  };
  ASSERT_TRUE(client().get(std::move(r), std::move(cbs)));
  run_for(100);
  EXPECT_TRUE(server.wait_for_requests(1, 2000));
  client_.reset();
  run();
  EXPECT_TRUE(done);
}

TEST_F(LifecycleTest, GetAfterCloseIsRefused) {
  bool closed = false;
  client().close([&] { closed = true; });
  Request r;
  r.url = "http://127.0.0.1:1/";
  auto id = client().get(std::move(r), {});
  EXPECT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::client_closed);
  run();
  EXPECT_TRUE(closed);
}

TEST_F(LifecycleTest, ClientCanBeDestroyedInsideItsOwnCallbacks) {
  TestServer server([](const RecordedRequest&) { return Script().send(http_response(200, "x")); });
  Request r;
  r.url = server.url("/a");
  Callbacks cbs;
  cbs.on_done = [this](const TransferResult& res) {
    EXPECT_TRUE(res.ok());
    client_->close([this] { client_.reset(); });
  };
  ASSERT_TRUE(client().get(std::move(r), std::move(cbs)));
  run();
  EXPECT_EQ(client_, nullptr);
}

}  // namespace
}  // namespace uvget::test
