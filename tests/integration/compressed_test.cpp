// --compressed as a user runs it: the real binary against the scripted server and nginx. Every
// coding lands decoded byte for byte; a body it cannot decode, or one cut short, fails with its
// kind and leaves no file; without --compressed a body is kept as it came.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/command.hpp"
#include "support/compress.hpp"
#include "support/loop_fixture.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class CompressedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("UVGET_BIN");
    ASSERT_NE(b, nullptr) << "UVGET_BIN is not set (run through meson test)";
    bin_ = b;
    dir_ = make_temp_dir("uvget-compressed");
  }
  void TearDown() override { remove_tree(dir_); }
  CommandResult uvget(std::vector<std::string> args) {
    args.insert(args.begin(), bin_);
    return run_command(args, {}, 60000);
  }
  // Nothing but `name` in the directory: no .part, no sidecar, no numbered copy.
  void expect_only(const std::string& name) {
    auto r = run_command({"ls", "-A", dir_});
    EXPECT_EQ(r.out, name.empty() ? "" : name + "\n");
  }
  std::string bin_, dir_;
};

// A text body that compresses, with random stretches that do not, over several reads.
std::string body_of(std::size_t n) {
  std::string s;
  while (s.size() < n) s += "row " + std::to_string(s.size()) + ": " + pattern_bytes(40, s.size());
  s.resize(n);
  return s;
}

TEST_F(CompressedTest, EveryCodingLandsDecodedAndTheRequestAsksForThemAll) {
  std::string body = body_of(3'000'000);
  TestServer server;
  std::vector<std::string> codings = {"gzip", "deflate", "br", "zstd"};
  for (const auto& c : codings)
    server.route("/" + c + ".txt",
                 Script().send(http_response(200, encode(c, body), {{"Content-Encoding", c}})));
  // Chunked, and a list of two codings (gzip applied first, then br).
  std::string g = gzip(body);
  server.route("/chunked.txt",
               Script().send(chunked_response(200, {g.substr(0, 1000), g.substr(1000)},
                                              {{"Content-Encoding", "gzip"}})));
  server.route("/two.txt",
               Script().send(http_response(200, brotli(g), {{"Content-Encoding", "gzip, br"}})));
  std::vector<std::string> args = {"--compressed", "-q", "-d", dir_, "--json", dir_ + "/r.jsonl"};
  for (const auto& c : codings) args.push_back(server.url("/" + c + ".txt"));
  args.push_back(server.url("/chunked.txt"));
  args.push_back(server.url("/two.txt"));
  auto r = uvget(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& name :
       {"gzip.txt", "deflate.txt", "br.txt", "zstd.txt", "chunked.txt", "two.txt"}) {
    std::string got = read_file(dir_ + "/" + name);
    EXPECT_EQ(got.size(), body.size()) << name;
    EXPECT_TRUE(got == body) << name << ": the bytes differ";
  }
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 6u);
  for (const auto& q : reqs)
    EXPECT_EQ(q.header("Accept-Encoding").value_or("(none)"), "gzip, deflate, br, zstd");
  // The records count decoded bytes.
  std::string records = read_file(dir_ + "/r.jsonl");
  std::size_t n = 0;
  for (std::size_t at = 0;
       (at = records.find("\"bytes\":" + std::to_string(body.size()), at)) != std::string::npos;
       ++at)
    ++n;
  EXPECT_EQ(n, 6u) << records;
}

TEST_F(CompressedTest, AChecksumIsOfTheDecodedBody) {
  std::string body = body_of(200'000);
  TestServer server;
  server.route("/a.txt",
               Script().send(http_response(200, gzip(body), {{"Content-Encoding", "gzip"}})));
  auto good = uvget({"--compressed", "-q", "-d", dir_, "--checksum", "sha-256=" + sha256_hex(body),
                     server.url("/a.txt")});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_TRUE(read_file(dir_ + "/a.txt") == body);
  ::unlink((dir_ + "/a.txt").c_str());
  auto bad = uvget({"--compressed", "-q", "-d", dir_, "--checksum",
                    "sha-256=" + sha256_hex(gzip(body)), server.url("/a.txt")});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  expect_only("");
}

TEST_F(CompressedTest, WithoutTheOptionABodyIsKeptAsItCame) {
  std::string body = body_of(50'000), g = gzip(body);
  TestServer server;
  server.route("/a.txt", Script().send(http_response(200, g, {{"Content-Encoding", "gzip"}})));
  auto r = uvget({"-q", "-d", dir_, "-H", "Accept-Encoding: gzip", server.url("/a.txt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(dir_ + "/a.txt") == g) << "the gzip was changed";
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("Accept-Encoding").value_or(""), "gzip");
  // The user's own Accept-Encoding with --compressed is sent as given, and what comes decoded.
  auto own = uvget({"-q", "--compressed", "-o", dir_ + "/b.txt", "-H", "Accept-Encoding: gzip",
                    server.url("/a.txt")});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  EXPECT_TRUE(read_file(dir_ + "/b.txt") == body);
  reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].header("Accept-Encoding").value_or(""), "gzip");
}

TEST_F(CompressedTest, ACompressedBodyCutShortIsAnErrorAndLeavesNoFile) {
  std::string body = body_of(400'000);
  TestServer server;
  for (std::string c : {"gzip", "br", "zstd"}) {
    std::string enc = encode(c, body);
    // A valid HTTP message whose compressed data stops early (its length says so).
    server.route("/" + c + ".txt", Script().send(http_response(200, enc.substr(0, enc.size() / 2),
                                                               {{"Content-Encoding", c}})));
  }
  for (std::string c : {"gzip", "br", "zstd"}) {
    auto r = uvget({"--compressed", "-q", "--retries", "1", "--retry-wait", "0", "-d", dir_,
                    "--json", dir_ + "/r.jsonl", server.url("/" + c + ".txt")});
    EXPECT_EQ(r.exit_code, 1) << c << ": " << r.err;
    EXPECT_NE(r.err.find(server.url("/" + c + ".txt") + ": the " + c +
                         " body stops before the end of its compressed data"),
              std::string::npos)
        << r.err;
    std::string rec = read_file(dir_ + "/r.jsonl");
    EXPECT_NE(rec.find("\"kind\":\"size_mismatch\""), std::string::npos) << rec;
    ::unlink((dir_ + "/r.jsonl").c_str());
    expect_only("");
  }
  // Retried like any body cut short: two requests for each.
  EXPECT_EQ(server.requests().size(), 6u);
}

TEST_F(CompressedTest, CorruptDataAndUnknownCodingsFailWithKindEncoding) {
  std::string body = body_of(100'000), g = gzip(body);
  g[g.size() / 2] = static_cast<char>(g[g.size() / 2] ^ 0x55);
  TestServer server;
  server.route("/corrupt.txt",
               Script().send(http_response(200, g, {{"Content-Encoding", "gzip"}})));
  server.route("/unknown.txt",
               Script().send(http_response(200, body, {{"Content-Encoding", "compress"}})));
  for (std::string target : {"/corrupt.txt", "/unknown.txt"}) {
    auto r =
        uvget({"--compressed", "-q", "-d", dir_, "--json", dir_ + "/r.jsonl", server.url(target)});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(server.url(target) + ": "), std::string::npos) << r.err;
    std::string rec = read_file(dir_ + "/r.jsonl");
    EXPECT_NE(rec.find("\"kind\":\"encoding\""), std::string::npos) << rec;
    ::unlink((dir_ + "/r.jsonl").c_str());
    expect_only("");
  }
  // Not retried: the same data would come again.
  EXPECT_EQ(server.requests().size(), 2u);
  auto unknown = uvget({"--compressed", "-q", "-d", dir_, server.url("/unknown.txt")});
  EXPECT_NE(unknown.err.find("Content-Encoding 'compress'"), std::string::npos) << unknown.err;
}

TEST_F(CompressedTest, AHugeExpansionStreamsToDisk) {
  // 256 MiB of zeros in a few hundred KiB of gzip: written out as it decodes (the sink's
  // backpressure holds the rest of the input), never held whole.
  std::string zeros(256u << 20, '\0');
  std::string g = gzip(zeros);
  zeros.clear();
  zeros.shrink_to_fit();
  TestServer server;
  server.route("/zeros.bin", Script().send(http_response(200, g, {{"Content-Encoding", "gzip"}})));
  auto r = run_command({"/usr/bin/time", "-f", "maxrss_kb=%M", bin_, "--compressed", "-q", "-d",
                        dir_, server.url("/zeros.bin")},
                       {}, 120000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/zeros.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 256 << 20);
  auto at = r.err.find("maxrss_kb=");
  ASSERT_NE(at, std::string::npos) << r.err;
  long kb = std::atol(r.err.c_str() + at + 10);
  // Far under the decoded size: what is held stays near the sink's buffers. (Sanitizer builds
  // add their own shadow memory, but not hundreds of MiB for this.)
  EXPECT_LT(kb, 128 * 1024) << "peak RSS " << kb << " KiB";
}

// Held bytes are decoded ones: a 206 of an encoded body cannot continue them, so the client
// asks again for the whole body instead of appending gzip bytes to plain text.
TEST_F(CompressedTest, AnEncodedRangeDoesNotContinueDecodedBytes) {
  std::string body = body_of(600'000);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    int i = n++;
    if (i == 0)  // the first run: half the body as it is, then nothing
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 600000\r\nETag: \"c1\"\r\n\r\n" +
                body.substr(0, 300'000))
          .stall();
    std::string g = gzip(body);
    if (r.header("Range"))  // a range of the gzip form, which the held bytes are not
      return Script().send(http_response(
          206, g.substr(10),
          {{"Content-Encoding", "gzip"},
           {"ETag", "\"c1\""},
           {"Content-Range",
            "bytes 10-" + std::to_string(g.size() - 1) + "/" + std::to_string(g.size())}}));
    return Script().send(http_response(200, g, {{"Content-Encoding", "gzip"}, {"ETag", "\"c1\""}}));
  });
  std::string url = server.url("/c.txt");
  auto killed =
      run_command({"timeout", "-s", "KILL", "1", bin_, "--compressed", "-c", "-d", dir_, url});
  EXPECT_NE(killed.exit_code, 0);
  ASSERT_GT(std::filesystem::file_size(dir_ + "/c.txt.part"), 0u) << "nothing held to continue";
  auto again = uvget({"--compressed", "-c", "-q", "-d", dir_, url});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(read_file(dir_ + "/c.txt") == body) << "gzip bytes were appended to plain text";
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_TRUE(reqs[1].header("Range")) << "the held bytes were offered first";
  EXPECT_FALSE(reqs[2].header("Range")) << "then the whole body";
}

TEST_F(CompressedTest, NginxGzipIsDecoded) {
  ASSERT_TRUE(Nginx::available()) << "nginx is not installed (scripts/deps test installs it)";
  std::string root = dir_ + "/www", logs = make_temp_dir("uvget-nginx-log");
  ::mkdir(root.c_str(), 0755);
  std::string body;
  while (body.size() < 1'000'000) body += "line " + std::to_string(body.size()) + " of a page\n";
  { std::ofstream(root + "/page.txt", std::ios::binary) << body; }
  Nginx nginx(root,
              "gzip on; gzip_types *; gzip_min_length 100; access_log " + logs + "/access.log;");
  ASSERT_TRUE(nginx.ok()) << nginx.error();
  std::string out = make_temp_dir("uvget-compressed-out");
  auto r = uvget({"--compressed", "-q", "-d", out, nginx.url("/page.txt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(out + "/page.txt") == body);
  // nginx sent it compressed: the body bytes it logged are far fewer than the file's.
  std::string log = read_file(logs + "/access.log");
  auto status = log.find("\" 200 ");
  ASSERT_NE(status, std::string::npos) << log;
  long sent = std::atol(log.c_str() + status + 6);
  EXPECT_GT(sent, 0) << log;
  EXPECT_LT(sent, static_cast<long>(body.size() / 2)) << log;
  remove_tree(out);
  remove_tree(logs);
}

}  // namespace
}  // namespace uvget::test
