// End to end against a real server: nginx on loopback, started and stopped by the test.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class NginxTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
    root_ = make_temp_dir("uvget-www");
    out_ = make_temp_dir("uvget-out");
    for (int i = 0; i < 1000; ++i)
      std::ofstream(root_ + "/f" + std::to_string(i), std::ios::binary) << pattern_bytes(4096, i);
    std::ofstream(root_ + "/big", std::ios::binary) << pattern_bytes(20 * 1024 * 1024, 77);
    nginx_ = std::make_unique<Nginx>(root_, "location = /moved { return 301 /f1; }");
    ASSERT_TRUE(nginx_->ok()) << nginx_->error();
  }
  void TearDown() override {
    LoopTest::TearDown();
    nginx_.reset();
    if (!root_.empty()) remove_tree(root_);
    if (!out_.empty()) remove_tree(out_);
  }
  std::string root_, out_;
  std::unique_ptr<Nginx> nginx_;
};

TEST_F(NginxTest, ThousandFilesOverEightConnectionsAreByteIdentical) {
  ClientOptions o;
  o.max_connections = 8;
  o.max_per_host = 8;
  client(o);
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 1000; ++i) {
    Request r;
    r.sink = make_file_sink(out_ + "/f" + std::to_string(i));
    all.push_back(fetch(nginx_->url("/f" + std::to_string(i)), std::move(r)));
  }
  run();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
    ASSERT_EQ(read_file(out_ + "/f" + std::to_string(i)), pattern_bytes(4096, i)) << i;
  }
  auto st = client().stats();
  EXPECT_LE(st.connections_opened, 8u);
  EXPECT_EQ(st.requests_sent, 1000u);
  EXPECT_EQ(st.transfers_done, 1000u);
}

TEST_F(NginxTest, LargeFileIsByteIdentical) {
  Request r;
  r.sink = make_file_sink(out_ + "/big");
  auto o = fetch(nginx_->url("/big"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.bytes, 20u * 1024 * 1024);
  EXPECT_TRUE(read_file(out_ + "/big") == read_file(root_ + "/big"));
}

TEST_F(NginxTest, RedirectAndNotFound) {
  auto moved = fetch(nginx_->url("/moved"));
  auto missing = fetch(nginx_->url("/nope"));
  run();
  ASSERT_TRUE(moved->result.ok()) << moved->result.error.message();
  EXPECT_EQ(moved->body, pattern_bytes(4096, 1));
  EXPECT_EQ(missing->result.error.code, Errc::http_status);
  EXPECT_EQ(missing->result.status, 404);
}

TEST_F(NginxTest, HeadGivesNoBody) {
  Request r;
  r.method = Method::head;
  auto o = fetch(nginx_->url("/f5"), std::move(r));
  auto after = fetch(nginx_->url("/f6"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.bytes, 0u);
  EXPECT_EQ(after->body, pattern_bytes(4096, 6));
}

}  // namespace
}  // namespace uvget::test
