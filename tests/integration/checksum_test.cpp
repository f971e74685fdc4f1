// Checksums: the body is hashed as it streams; a mismatch fails the transfer and leaves no file.
#include <gtest/gtest.h>
#include <mbedtls/md.h>

#include <atomic>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class ChecksumTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    body_ = pattern_bytes(700'000, 8);
    server_.route("/f", Script().send(http_response(200, body_)));
    dir_ = make_temp_dir("uvget-checksum");
  }
  void TearDown() override {
    LoopTest::TearDown();
    remove_tree(dir_);
  }
  std::shared_ptr<Outcome> get_file(const std::string& checksum, const std::string& name) {
    Request req;
    req.checksum = checksum;
    req.sink = make_file_sink(dir_ + "/" + name);
    return fetch(server_.url("/f"), std::move(req));
  }
  TestServer server_;
  std::string body_, dir_;
};

TEST_F(ChecksumTest, AMatchingSha256KeepsTheFile) {
  auto o = get_file("sha-256=" + digest_hex(MBEDTLS_MD_SHA256, body_), "good");
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(read_file(dir_ + "/good"), body_);
}

TEST_F(ChecksumTest, AMismatchFailsAndLeavesNoFile) {
  std::string wrong = digest_hex(MBEDTLS_MD_SHA256, body_ + "x");
  auto o = get_file("SHA256=" + wrong, "bad");
  run();
  EXPECT_EQ(o->result.error.code, Errc::checksum_mismatch);
  std::string msg = o->result.error.message();
  EXPECT_NE(msg.find("expected " + wrong), std::string::npos) << msg;
  EXPECT_NE(msg.find("got " + digest_hex(MBEDTLS_MD_SHA256, body_)), std::string::npos) << msg;
  EXPECT_NE(msg.find(server_.url("/f")), std::string::npos) << msg;
  EXPECT_FALSE(exists(dir_ + "/bad"));
  EXPECT_FALSE(exists(dir_ + "/bad.part"));
}

TEST_F(ChecksumTest, Sha1AndMd5Too) {
  Request a, b;
  a.checksum = "sha-1=" + digest_hex(MBEDTLS_MD_SHA1, body_);
  b.checksum = "md5=" + digest_hex(MBEDTLS_MD_MD5, body_);
  auto oa = fetch(server_.url("/f"), std::move(a));
  auto ob = fetch(server_.url("/f"), std::move(b));
  run();
  EXPECT_TRUE(oa->result.ok()) << oa->result.error.message();
  EXPECT_TRUE(ob->result.ok()) << ob->result.error.message();
}

TEST_F(ChecksumTest, MalformedChecksumsAreRefusedByGet) {
  for (std::string bad : std::vector<std::string>{"sha-256", "crc32=00000000", "sha-256=abc",
                                                  "md5=" + std::string(32, 'z'),
                                                  "=" + digest_hex(MBEDTLS_MD_MD5, body_)}) {
    Request req;
    req.url = server_.url("/f");
    req.checksum = bad;
    auto id = client().get(std::move(req), {});
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().code, Errc::bad_request) << bad;
    EXPECT_NE(id.error().message().find("checksum"), std::string::npos) << id.error().message();
  }
}

TEST_F(ChecksumTest, ARetriedBodyIsHashedFromItsFirstByte) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 700000\r\n\r\n" + body_.substr(0, 50'000))
          .close();
    return Script().send(http_response(200, body_));
  });
  ClientOptions o;
  o.retries = 1;
  o.retry_wait_ms = 1;
  client(o);
  Request req;
  req.checksum = "sha-256=" + digest_hex(MBEDTLS_MD_SHA256, body_);
  req.sink = make_file_sink(dir_ + "/retried");
  auto t = fetch(server.url("/f"), std::move(req));
  run();
  ASSERT_TRUE(t->result.ok()) << t->result.error.message();
  EXPECT_EQ(t->result.attempts, 2);
  EXPECT_EQ(read_file(dir_ + "/retried"), body_);
}

}  // namespace
}  // namespace uvget::test
