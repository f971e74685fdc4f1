// Resume: a retry continues the .part with Range/If-Range, and a file sink with
// FileSinkOptions::resume continues what an earlier run (or another program) left. Each rule is
// checked against a server that breaks it: range ignored, ETag changed, a wrong Content-Range, 416.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mbedtls/md.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

// "bytes=N-" -> N
std::optional<std::uint64_t> range_start(const RecordedRequest& r) {
  auto range = requested_range(r);
  if (!range || range->second) return std::nullopt;
  return range->first;
}

Script serve(const RecordedRequest& r, const std::string& body, const std::string& etag) {
  return serve_ranges(r, body, etag);
}

// The first `n` bytes of a 200 response, then a reset: a connection dropped mid-body.
Script dropped(const std::string& body, std::size_t n, const Headers& extra) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (auto& [k, v] : extra) head += k + ": " + v + "\r\n";
  return Script().send(head + "\r\n" + body.substr(0, n)).pause_ms(30).reset();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class ResumeTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    body_ = pattern_bytes(400'000, 11);
    dir_ = make_temp_dir("uvget-resume");
    path_ = dir_ + "/f";
  }
  void TearDown() override {
    LoopTest::TearDown();
    remove_tree(dir_);
  }
  ClientOptions retrying() {
    ClientOptions o;
    o.retries = 3;
    o.retry_wait_ms = 5;
    o.retry_max_wait_ms = 20;
    return o;
  }
  std::shared_ptr<Outcome> get_file(const std::string& url, bool resume = false,
                                    std::string checksum = {}) {
    Request req;
    FileSinkOptions fo;
    fo.resume = resume;
    req.sink = make_file_sink(path_, fo);
    req.checksum = std::move(checksum);
    return fetch(url, std::move(req));
  }
  void expect_only_the_file(const std::string& content) {
    EXPECT_EQ(read_file(path_), content);
    EXPECT_FALSE(exists(path_ + ".part"));
    EXPECT_FALSE(exists(path_ + ".part.meta"));
  }

  std::string body_, dir_, path_;
};

TEST_F(ResumeTest, ARetryAsksForTheRestOnly) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    return serve(r, body_, "\"v1\"");
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto from = range_start(reqs[1]);
  ASSERT_TRUE(from) << reqs[1].raw;
  EXPECT_GT(*from, 0u);
  EXPECT_LE(*from, 150'000u);
  EXPECT_EQ(reqs[1].header("If-Range").value_or(""), "\"v1\"");
  EXPECT_EQ(o->result.status, 206);
  EXPECT_EQ(o->result.resumed_from, *from);
  EXPECT_EQ(o->result.bytes, body_.size() - *from) << "only the rest came again";
  EXPECT_EQ(o->result.attempts, 2);
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, ALastModifiedServesAsTheValidatorWithoutAnETag) {
  const std::string date = "Wed, 21 Oct 2026 07:28:00 GMT";
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) return dropped(body_, 100'000, {{"Last-Modified", date}, {"ETag", "W/\"weak\""}});
    return serve(r, body_, "unused");
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].header("If-Range").value_or(""), date) << "a weak ETag is never a validator";
}

TEST_F(ResumeTest, ARangeIgnoredStartsTheFileOver) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    return Script().send(http_response(200, body_, {{"ETag", "\"v1\""}}));
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_TRUE(range_start(server.requests().at(1)));
  EXPECT_EQ(o->result.resumed_from, 0u);
  EXPECT_EQ(o->result.bytes, body_.size());
  expect_only_the_file(body_);  // never the partial bytes plus a whole body
}

TEST_F(ResumeTest, AChangedETagStartsTheFileOverWithTheNewVersion) {
  std::string v2 = pattern_bytes(300'000, 12);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    return serve(r, v2, "\"v2\"");  // If-Range "v1" does not match: 200 with v2
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 200);
  expect_only_the_file(v2);
}

TEST_F(ResumeTest, AWrongContentRangeStartIsNeverAppended) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    int k = n++;
    if (k == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    if (k == 1) {
      auto from = range_start(r).value_or(0);
      std::uint64_t wrong = from > 10 ? from - 10 : from + 10;
      return Script().send(
          http_response(206, body_.substr(wrong),
                        {{"ETag", "\"v1\""},
                         {"Content-Range", "bytes " + std::to_string(wrong) + "-" +
                                               std::to_string(body_.size() - 1) + "/" +
                                               std::to_string(body_.size())}}));
    }
    return serve(r, body_, "\"v1\"");
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_FALSE(range_start(reqs[2])) << "after a bad range, the whole body is asked for";
  EXPECT_EQ(o->result.attempts, 2) << "the range mix-up is not counted as a failed attempt";
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, A206ThatStopsShortOfTheEndIsNotAppended) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    int k = n++;
    if (k == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    if (k == 1) {
      auto from = range_start(r).value_or(0);
      return Script().send(http_response(
          206, body_.substr(from, 1000),
          {{"Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(from + 999) +
                                 "/" + std::to_string(body_.size())}}));
    }
    return serve(r, body_, "\"v1\"");
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, NoValidatorAndNoLengthMeansStartingOver) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n30000\r\n" +
                body_.substr(0, 0x30000) + "\r\n")
          .pause_ms(30)
          .reset();
    return Script().send(http_response(200, body_));
  });
  client(retrying());
  auto o = get_file(server.url("/f"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_FALSE(range_start(server.requests().at(1))) << "nothing to check a range against";
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, AChecksumCoversTheWholeResumedBody) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) return dropped(body_, 150'000, {{"ETag", "\"v1\""}});
    return serve(r, body_, "\"v1\"");
  });
  client(retrying());
  auto o = get_file(server.url("/f"), false, "sha-256=" + sha256_hex(body_));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_GT(o->result.resumed_from, 0u);
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, ContinuesAPartLeftByAnEarlierRun) {
  write_file(path_ + ".part", body_.substr(0, 123'456));
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"v1\"\nlength 400000\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("Range").value_or(""), "bytes=123456-");
  EXPECT_EQ(reqs[0].header("If-Range").value_or(""), "\"v1\"");
  EXPECT_EQ(o->result.resumed_from, 123'456u);
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, AnEarlierRunsPartOfAnotherVersionIsReplaced) {
  write_file(path_ + ".part", std::string(123'456, 'x'));
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"old\"\nlength 999999\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.resumed_from, 0u);
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, A416ForACompletePartFinishesIt) {
  write_file(path_ + ".part", body_);
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"v1\"\nlength 400000\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 416);
  EXPECT_EQ(o->result.bytes, 0u);
  EXPECT_EQ(o->result.resumed_from, body_.size());
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, A416ForAnotherLengthStartsOver) {
  write_file(path_ + ".part", std::string(500'000, 'x'));  // longer than the resource
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].header("Range").value_or(""), "bytes=500000-");
  EXPECT_FALSE(reqs[1].header("Range"));
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, ContinuesAPartialFileOfAnotherProgramBySize) {
  write_file(path_, body_.substr(0, 50'000));  // e.g. an interrupted wget, no sidecar
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("Range").value_or(""), "bytes=50000-");
  EXPECT_FALSE(reqs[0].header("If-Range")) << "nothing known to validate with";
  EXPECT_EQ(o->result.resumed_from, 50'000u);
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, LeavesACompleteFileAlone) {
  write_file(path_, body_);
  struct stat before {};
  ASSERT_EQ(::stat(path_.c_str(), &before), 0);
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 416);
  EXPECT_EQ(o->result.resumed_from, body_.size());
  struct stat after {};
  ASSERT_EQ(::stat(path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the same file, not rewritten";
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, AForeignFileIsReplacedOnlyByACompleteDownload) {
  write_file(path_, "someone else's beginning");
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0) return Script().send(http_response(500, "down"));  // not retried here
    return Script().send(http_response(200, body_));
  });
  client();
  auto failed = get_file(server.url("/f"), true);
  run();
  EXPECT_EQ(failed->result.error.code, Errc::http_status);
  EXPECT_EQ(read_file(path_), "someone else's beginning") << "a failure loses nothing";
  auto o = get_file(server.url("/f"), true);  // range ignored: 200, the whole body
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, AFailureKeepsThePartAndItsSidecarForTheNextRun) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0) return dropped(body_, 200'000, {{"ETag", "\"v1\""}});
    return serve(r, body_, "\"v1\"");
  });
  client();  // no retries: the first run fails
  auto first = get_file(server.url("/f"), true);
  run();
  ASSERT_FALSE(first->result.ok());
  ASSERT_TRUE(exists(path_ + ".part"));
  EXPECT_NE(read_file(path_ + ".part.meta").find("validator \"v1\""), std::string::npos);
  EXPECT_FALSE(exists(path_));
  auto held = std::filesystem::file_size(path_ + ".part");
  EXPECT_GT(held, 0u);
  auto second = get_file(server.url("/f"), true);
  run();
  ASSERT_TRUE(second->result.ok()) << second->result.error.message();
  EXPECT_EQ(second->result.resumed_from, held);
  expect_only_the_file(body_);
}

// With a checksum, an earlier run's .part is read back and hashed first, so only the rest is
// fetched and the digest still covers every byte.
TEST_F(ResumeTest, ARunWithAChecksumContinuesAnEarlierPart) {
  write_file(path_ + ".part", body_.substr(0, 300'000));  // more than one read of the replay
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"v1\"\nlength 400000\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true, "sha-256=" + sha256_hex(body_));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].header("Range").value_or(""), "bytes=300000-");
  EXPECT_EQ(o->result.resumed_from, 300'000u);
  EXPECT_EQ(o->result.bytes, 100'000u);
  expect_only_the_file(body_);
}

// The same for another program's partial file, continued by its size.
TEST_F(ResumeTest, ARunWithAChecksumContinuesAForeignPartialFile) {
  write_file(path_, body_.substr(0, 50'000));
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true, "md5=" + digest_hex(MBEDTLS_MD_MD5, body_));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(server.requests().at(0).header("Range").value_or(""), "bytes=50000-");
  EXPECT_EQ(o->result.resumed_from, 50'000u);
  expect_only_the_file(body_);
}

// Another program's partial NAME, continued, then the whole fails its checksum: NAME is given
// back exactly as it was found (a wrong or outdated checksum never destroys someone's file).
TEST_F(ResumeTest, AForeignFileThatFailsTheChecksumIsGivenBackAsItWas) {
  std::string theirs = body_.substr(0, 50'000);
  write_file(path_, theirs);
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  auto o = get_file(server.url("/f"), true, "sha-256=" + sha256_hex("something else"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::checksum_mismatch) << o->result.error.message();
  EXPECT_EQ(server.requests().at(0).header("Range").value_or(""), "bytes=50000-");
  EXPECT_TRUE(read_file(path_) == theirs) << read_file(path_).size() << " bytes";
  EXPECT_FALSE(exists(path_ + ".part"));
  EXPECT_FALSE(exists(path_ + ".part.meta"));
}

// A sink that passes everything to another one, counting the bytes its replay_held() hands to
// the hash (on the threadpool).
class CountingReplaySink : public Sink {
 public:
  CountingReplaySink(std::unique_ptr<Sink> inner, std::shared_ptr<std::atomic<std::uint64_t>> n)
      : inner_(std::move(inner)), replayed_(std::move(n)) {}
  Error open(uv_loop_s* loop, const Response& head, Events events) override {
    return inner_->open(loop, head, std::move(events));
  }
  bool write(std::span<const std::byte> data) override { return inner_->write(data); }
  void finish(std::function<void(Error)> done) override { inner_->finish(std::move(done)); }
  void abort(const Error& why, std::function<void()> done) override {
    inner_->abort(why, std::move(done));
  }
  bool restart(std::function<void()> done) override { return inner_->restart(std::move(done)); }
  void prepare(uv_loop_s* loop, std::function<void()> done) override {
    inner_->prepare(loop, std::move(done));
  }
  Held held() const override { return inner_->held(); }
  std::string location() const override { return inner_->location(); }
  Error open_continued(uv_loop_s* loop, const Response& head, Events events) override {
    return inner_->open_continued(loop, head, std::move(events));
  }
  bool suspend(std::function<void()> done) override { return inner_->suspend(std::move(done)); }
  bool replay_held(std::function<void(std::span<const std::byte>)> update,
                   std::function<void(Error)> done) override {
    return inner_->replay_held(
        [update = std::move(update), n = replayed_](std::span<const std::byte> bytes) {
          *n += bytes.size();
          update(bytes);
        },
        std::move(done));
  }
  std::size_t room() const override { return inner_->room(); }

 private:
  std::unique_ptr<Sink> inner_;
  std::shared_ptr<std::atomic<std::uint64_t>> replayed_;
};

// Hashing what an earlier run left stops when the transfer does: a 1 GiB .part does not hold
// a timeout (or Ctrl-C) until every byte of it is read.
TEST_F(ResumeTest, ReadingBackALargePartStopsWhenTheTransferDoes) {
  {
    std::ofstream(path_ + ".part");
    ASSERT_EQ(::truncate((path_ + ".part").c_str(), 1LL << 30), 0);  // sparse: made at once
  }
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"v1\"\nlength 2147483648\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  Request req;
  FileSinkOptions fo;
  fo.resume = true;
  auto replayed = std::make_shared<std::atomic<std::uint64_t>>(0);
  req.sink = std::make_unique<CountingReplaySink>(make_file_sink(path_, fo), replayed);
  req.checksum = "sha-256=" + sha256_hex(body_);
  req.timeout_ms = 50;
  auto o = fetch(server.url("/f"), std::move(req));
  run();  // until the threadpool's work is over too
  EXPECT_EQ(o->result.error.code, Errc::timeout) << o->result.error.message();
  // Hashing the whole GiB takes seconds (more under sanitizers); the timeout comes after 50 ms,
  // and stopping takes one read.
  EXPECT_LT(replayed->load(), std::uint64_t{1} << 30) << "the whole .part was read back";
  EXPECT_TRUE(server.requests().empty());
  EXPECT_TRUE(exists(path_ + ".part")) << "-c keeps what it has";
}

// A .part whose bytes are wrong: the continued body fails its checksum, and the .part and its
// sidecar go (kept, every later run would fail the same way); the next run fetches it whole.
TEST_F(ResumeTest, ACorruptEarlierPartFailsItsChecksumAndIsNotKept) {
  std::string bad = body_.substr(0, 100'000);
  bad[500] ^= 1;
  write_file(path_ + ".part", bad);
  write_file(path_ + ".part.meta", "uvget-partial 1\nvalidator \"v1\"\nlength 400000\n");
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  std::string sum = "sha-256=" + sha256_hex(body_);
  auto o = get_file(server.url("/f"), true, sum);
  run();
  EXPECT_EQ(o->result.error.code, Errc::checksum_mismatch) << o->result.error.message();
  EXPECT_EQ(server.requests().at(0).header("Range").value_or(""), "bytes=100000-");
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
  EXPECT_FALSE(exists(path_ + ".part.meta"));
  auto again = get_file(server.url("/f"), true, sum);
  run();
  ASSERT_TRUE(again->result.ok()) << again->result.error.message();
  EXPECT_FALSE(server.requests().at(1).header("Range"));
  expect_only_the_file(body_);
}

TEST_F(ResumeTest, A206ToAPlainRequestIsAnError) {
  TestServer server([&](const RecordedRequest&) {
    return Script().send(
        http_response(206, body_.substr(0, 1000), {{"Content-Range", "bytes 0-999/400000"}}));
  });
  client();
  auto o = get_file(server.url("/f"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::http_status);
  EXPECT_FALSE(exists(path_));
  EXPECT_FALSE(exists(path_ + ".part"));
}

TEST_F(ResumeTest, TheCallersOwnRangeIsLeftAlone) {
  TestServer server([&](const RecordedRequest& r) { return serve(r, body_, "\"v1\""); });
  client();
  Request req;
  req.headers = {{"Range", "bytes=100-"}};
  req.fail_on_http_error = false;
  auto o = fetch(server.url("/f"), std::move(req));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->result.status, 206);
  EXPECT_EQ(o->body, body_.substr(100));
}

// name_for_head with resume: the .part to continue is found by the URL its sidecar names,
// under the name an earlier response chose; a .part of another URL, or one somebody holds
// locked, is never touched, and without a leftover the body is named from its head afresh.
TEST_F(ResumeTest, ANameFromTheHeadIsContinuedByTheUrlItsSidecarNames) {
  auto named = [&](const RecordedRequest& r, const std::string& name) {
    auto a = answer_ranges(r, body_.size(), "\"v1\"");
    a.head.insert(a.head.size() - 2, "Content-Disposition: attachment; filename=" + name + "\r\n");
    return Script().send(a.head + body_.substr(a.from, a.to - a.from));
  };
  TestServer server([&](const RecordedRequest& r) { return named(r, "now.bin"); });
  std::string url = server.url("/f"), other = server.url("/other");
  auto sidecar = [](const std::string& source) {
    return "uvget-partial 1\nvalidator \"v1\"\nlength 400000\nurl " + source + "\n";
  };
  write_file(dir_ + "/chosen.bin.part", body_.substr(0, 150'000));
  write_file(dir_ + "/chosen.bin.part.meta", sidecar(url));
  write_file(dir_ + "/a-other.bin.part", "of another URL");
  write_file(dir_ + "/a-other.bin.part.meta", sidecar(other));
  write_file(dir_ + "/chosen.bin", "a file that took the name meanwhile");
  auto with_head_name = [&](const std::string& source) {
    FileSinkOptions fo;
    fo.resume = true;
    fo.source = source;
    fo.name_for_head = [](const Response& head) {
      std::string cd(head.header("Content-Disposition").value_or(""));
      return cd.substr(cd.find('=') + 1);
    };
    Request req;
    req.sink = make_file_sink(dir_ + "/from-url", fo);
    return fetch(source, std::move(req));
  };
  client();
  auto o = with_head_name(url);
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  // Continued under the name chosen first; a file that took that name is kept (a name from a
  // header never replaces one), so the body gets the next free one.
  EXPECT_EQ(o->result.path, dir_ + "/chosen.bin.1");
  EXPECT_TRUE(read_file(dir_ + "/chosen.bin.1") == body_);
  EXPECT_EQ(read_file(dir_ + "/chosen.bin"), "a file that took the name meanwhile");
  EXPECT_EQ(o->result.resumed_from, 150'000u);
  EXPECT_EQ(server.requests().at(0).header("Range").value_or(""), "bytes=150000-");
  EXPECT_FALSE(exists(dir_ + "/now.bin"));
  EXPECT_EQ(read_file(dir_ + "/a-other.bin.part"), "of another URL");

  // The same URL's .part, held locked by a program writing it: left alone, a fresh download.
  write_file(dir_ + "/busy.bin.part", body_.substr(0, 1000));
  write_file(dir_ + "/busy.bin.part.meta", sidecar(url));
  int fd = ::open((dir_ + "/busy.bin.part").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto fresh = with_head_name(url);
  run();
  ::close(fd);
  ASSERT_TRUE(fresh->result.ok()) << fresh->result.error.message();
  EXPECT_EQ(fresh->result.path, dir_ + "/now.bin");
  EXPECT_EQ(fresh->result.resumed_from, 0u);
  EXPECT_TRUE(read_file(dir_ + "/now.bin") == body_);
  EXPECT_EQ(read_file(dir_ + "/busy.bin.part"), body_.substr(0, 1000));
  EXPECT_FALSE(server.requests().back().header("Range"));
}

}  // namespace
}  // namespace uvget::test
