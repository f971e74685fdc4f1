// The fault matrix: each broken or hostile server behaviour, run through the command line, with
// its documented outcome (docs/fault-matrix.md): exit status, the cause in the one-line error
// (which also names the URL), no final file and no .part left, each run ending on its own.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "support/command.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

struct Fault {
  const char* name;
  std::function<Script()> script;  // what the server does for every request
  int exit_status;                 // 1: the download failed; 0: it succeeded
  const char* cause;               // in the error line (failures), or the file's content
};

std::string many_headers(int n) {
  std::string h = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < n; ++i) h += "X-H" + std::to_string(i) + ": v\r\n";
  return h + "Content-Length: 2\r\n\r\nok";
}

const std::vector<Fault>& faults() {
  static const std::vector<Fault> all = {
      {"TruncatedContentLengthBody",
       [] { return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort").close(); },
       1, "closed"},
      {"TruncatedChunkedBody",
       [] {
         return Script()
             .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
             .close();
       },
       1, "closed"},
      {"InvalidChunkSize",
       [] {
         return Script().send(
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
       },
       1, "CHUNK_SIZE"},
      {"ChunkSizeOverflowing64Bits",
       [] {
         return Script().send(
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nx");
       },
       1, "Chunk size overflow"},
      {"ResetMidBody",
       [] {
         return Script()
             .send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x'))
             .pause_ms(20)
             .reset();
       },
       1, "reset"},
      {"StallBeforeHeaders", [] { return Script().stall(); }, 1, "no data for"},
      {"StallMidBody",
       [] { return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc").stall(); },
       1, "no data for"},
      {"EndlessHeaderLine",
       [] {
         return Script().send("HTTP/1.1 200 OK\r\nX-Endless: " + std::string(200'000, 'a')).stall();
       },
       1, "head"},
      {"TenThousandHeaders", [] { return Script().send(many_headers(10'000)); }, 1, "headers"},
      {"DuplicateConflictingContentLength",
       [] {
         return Script().send(
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
       },
       1, "Content-Length"},
      {"ContentLengthWithTransferEncoding",
       [] {
         return Script().send(
             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: "
             "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
       },
       1, "Content-Length"},
      {"RedirectLoop",
       [] {
         return Script().send("HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
       },
       1, "redirects"},
      {"LocationWithANonHttpScheme",
       [] {
         return Script().send(
             "HTTP/1.1 301 Moved\r\nLocation: ftp://elsewhere.test/x\r\nContent-Length: 0\r\n\r\n");
       },
       1, "scheme"},
      {"EmptyLocation",
       [] {
         return Script().send("HTTP/1.1 301 Moved\r\nLocation: \r\nContent-Length: 0\r\n\r\n");
       },
       1, "without a Location"},
      {"GarbageStatusLine", [] { return Script().send("HTTP/1.1 abc OK\r\n\r\n").close(); }, 1,
       "invalid"},
      {"Http09Response", [] { return Script().send("just some bytes, no status line\n").close(); },
       1, "invalid"},
      {"ContentLengthLargerThanBodyOnKeepAlive",
       [] { return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"); }, 1,
       "no data for"},
      {"InterimResponsesBeforeTheResponse",
       [] {
         return Script().send(
             "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
       },
       0, "final"},
  };
  return all;
}

void PrintTo(const Fault& f, std::ostream* os) {
  *os << f.name;
}

class FaultMatrix : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    const char* b = std::getenv("UVGET_BIN");
    ASSERT_NE(b, nullptr) << "UVGET_BIN is not set (run through meson test)";
    bin_ = b;
    dir_ = make_temp_dir("uvget-faults");
  }
  void TearDown() override { remove_tree(dir_); }
  CommandResult uvget(std::vector<std::string> urls) {
    std::vector<std::string> argv = {
        bin_, "--retries", "0", "--idle-timeout", "1", "--max-redirects", "3", "-d", dir_};
    argv.insert(argv.end(), urls.begin(), urls.end());
    return run_command(argv, "", 20'000);
  }
  std::string bin_, dir_;
};

TEST_P(FaultMatrix, HasItsDocumentedOutcome) {
  const Fault& f = GetParam();
  TestServer server([&](const RecordedRequest&) { return f.script(); });
  auto started = std::chrono::steady_clock::now();
  auto r = uvget({server.url("/file")});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // A stall ends by the 1 s idle timeout (its cause says so), never by run_command's kill.
  EXPECT_FALSE(r.timed_out) << "killed after 20 s";
  EXPECT_EQ(r.exit_code, f.exit_status) << r.err;
  std::printf("%s: exit %d, %.2f s: %s", f.name, r.exit_code, secs, r.err.c_str());
  if (f.exit_status == 0) {
    EXPECT_EQ(read_file(dir_ + "/file"), f.cause);
  } else {
    EXPECT_NE(r.err.find(server.url("/file") + ": "), std::string::npos)
        << "names the URL: " << r.err;
    EXPECT_NE(r.err.find(f.cause), std::string::npos) << "names the cause: " << r.err;
    EXPECT_FALSE(exists(dir_ + "/file")) << "no final file";
    EXPECT_FALSE(exists(dir_ + "/file.part")) << "no .part";
  }
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultMatrix, ::testing::ValuesIn(faults()),
                         [](const auto& p) { return std::string(p.param.name); });

// A chunk-size line of endless leading zeros moves no body byte: the lowest speed ends it.
TEST_F(FaultMatrix, EndlessLeadingZerosInAChunkSizeFailAsTooSlow) {
  TestServer server([](const RecordedRequest&) {
    Script s;
    s.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 40; ++i) s.send(std::string(16 * 1024, '0')).pause_ms(100);
    return s;
  });
  auto r = run_command({bin_, "--retries", "0", "--min-speed", "1000", "--min-speed-time", "1",
                        "-d", dir_, server.url("/file")},
                       "", 20'000);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("slower than 1000 bytes/s"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(dir_ + "/file"));
  EXPECT_FALSE(exists(dir_ + "/file.part"));
}

// Two downloads over one kept-alive connection when the server misbehaves between them.
class FaultMatrixKeepAlive : public FaultMatrix {};

TEST_F(FaultMatrixKeepAlive, AConnectionClosedRightAfterAResponseIsNotReusedBlindly) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target)).close();
  });
  auto r = uvget({server.url("/a"), server.url("/b")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/a"), "body of /a");
  EXPECT_EQ(read_file(dir_ + "/b"), "body of /b");
}

TEST_F(FaultMatrixKeepAlive, AResponseSentBeforeItsRequestIsNeverTakenForIt) {
  // With the answer to /a, the server also sends an answer nobody asked for yet.
  TestServer server([](const RecordedRequest& r) {
    if (r.target == "/a")
      return Script().send(http_response(200, "body of /a") + http_response(200, "unasked"));
    return Script().send(http_response(200, "body of " + r.target));
  });
  auto r = run_command(
      {bin_, "--retries", "0", "-j", "1", "-d", dir_, server.url("/a"), server.url("/b")}, "",
      20'000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/a"), "body of /a");
  EXPECT_EQ(read_file(dir_ + "/b"), "body of /b") << "never the unasked response";
}

}  // namespace
}  // namespace uvget::test
