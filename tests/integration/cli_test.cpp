// The uvget binary as a user runs it: exit codes, files on disk, messages, signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <mbedtls/md.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstring>
#include <mutex>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/certs.hpp"
#include "support/command.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

struct ProcessResult {
  int status = -1;  // exit code, or 128 + signal
  std::string out, err;
};

// Runs `bin args...` with `input` on stdin; sends `signal_after` (if set) after `delay_ms`.
// `file_size_limit` > 0: the child runs under RLIMIT_FSIZE (writes past it fail with EFBIG, as
// on a full disk, with SIGXFSZ ignored).
ProcessResult run_bin(const std::string& bin, const std::vector<std::string>& args,
                      const std::string& input = "", int signal_after = 0, int delay_ms = 0,
                      rlim_t file_size_limit = 0) {
  std::string dir = make_temp_dir("uvget-cli-io");
  std::string in = dir + "/in", out = dir + "/out", err = dir + "/err";
  { std::ofstream(in, std::ios::binary) << input; }
  pid_t pid = fork();
  if (pid == 0) {
    if (file_size_limit > 0) {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{file_size_limit, file_size_limit};
      setrlimit(RLIMIT_FSIZE, &lim);
    }
    int i = ::open(in.c_str(), O_RDONLY), o = ::open(out.c_str(), O_WRONLY | O_CREAT, 0644),
        e = ::open(err.c_str(), O_WRONLY | O_CREAT, 0644);
    dup2(i, 0);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  if (signal_after) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, signal_after);
  }
  // Nothing may hang: give up after 60 s.
  int st = 0;
  for (int waited = 0; waited < 60'000; waited += 10) {
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (waited + 10 >= 60'000) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      ADD_FAILURE() << "uvget did not finish within 60 s";
    }
  }
  ProcessResult r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_file(out);
  r.err = read_file(err);
  remove_tree(dir);
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("UVGET_BIN");
    ASSERT_NE(b, nullptr) << "UVGET_BIN is not set (run through meson test)";
    bin_ = b;
    dir_ = make_temp_dir("uvget-cli");
  }
  void TearDown() override { remove_tree(dir_); }
  ProcessResult uvget(std::vector<std::string> args, const std::string& input = "") {
    return run_bin(bin_, args, input);
  }
  std::string bin_, dir_;
};

TEST_F(CliTest, NoUrlIsAUsageError) {
  auto r = uvget({});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no URL"), std::string::npos) << r.err;
}

TEST_F(CliTest, UnknownOptionAndBadValueAreUsageErrors) {
  EXPECT_EQ(uvget({"--no-such-option", "http://127.0.0.1:1/"}).status, 2);
  EXPECT_EQ(uvget({"-j", "0", "http://127.0.0.1:1/"}).status, 2);
  EXPECT_EQ(uvget({"-j", "many", "http://127.0.0.1:1/"}).status, 2);
  auto r = uvget({"--conect-timeout", "5", "http://127.0.0.1:1/"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "uvget: unknown option '--conect-timeout' (did you mean --connect-timeout?)\n");
}

// Grouped by purpose, within 100 columns, defaults in words, no parser notation, examples.
TEST_F(CliTest, HelpIsGroupedWithin100ColumnsWithDefaultsAndExamples) {
  auto r = uvget({"--help"});
  EXPECT_EQ(r.status, 0);
  for (auto opt : {"--input-file", "--dir", "--connections", "--per-host", "--discard",
                   "--connect-timeout", "--idle-timeout", "--max-redirects", "--header"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  for (auto group : {"\nInput:\n", "\nOutput:\n", "\nConnections:\n", "\nHTTP:\n", "\nTLS:\n",
                     "\nDisplay:\n", "\nExamples:\n"})
    EXPECT_NE(r.out.find(group), std::string::npos) << group;
  EXPECT_NE(r.out.find("connections in all (default 64)"), std::string::npos);
  for (auto notation : {"INT", "TEXT:", "in [", "REQUIRED", "FLOAT"})
    EXPECT_EQ(r.out.find(notation), std::string::npos) << notation;
  std::istringstream lines(r.out);
  int examples = -1;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 100u) << line;
    if (line == "Examples:")
      examples = 0;
    else if (examples >= 0 && line.starts_with("  uvget "))
      ++examples;
  }
  EXPECT_EQ(examples, 3);
}

// -o with -d: a relative -o lands in the directory; --create-dirs makes -o's parents.
TEST_F(CliTest, OutputUnderADirectoryAndCreatedParents) {
  TestServer server;
  server.route("/f", Script().send(http_response(200, "body")));
  auto r = uvget({"-q", "-d", dir_ + "/d", "-o", "named", server.url("/f")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/d/named"), "body");
  r = uvget({"-q", "-o", dir_ + "/deep/er/file", server.url("/f")});
  EXPECT_EQ(r.status, 1) << "no parent, no --create-dirs";
  EXPECT_NE(r.err.find(dir_ + "/deep/er/file"), std::string::npos) << r.err;
  r = uvget({"-q", "--create-dirs", "-o", dir_ + "/deep/er/file", server.url("/f")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/deep/er/file"), "body");
}

TEST_F(CliTest, ManPageNamesEveryOptionOfHelp) {
  const char* src = std::getenv("UVGET_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::string man = read_file(std::string(src) + "/docs/uvget.1");
  ASSERT_FALSE(man.empty());
  std::string roff;  // the man page writes "-" as "\-"
  for (std::size_t i = 0; i < man.size(); ++i) {
    if (man[i] == '\\' && i + 1 < man.size() && man[i + 1] == '-') continue;
    roff.push_back(man[i]);
  }
  auto help = uvget({"--help"}).out;
  std::size_t count = 0;
  for (std::size_t at = help.find("--"); at != std::string::npos; at = help.find("--", at + 2)) {
    std::size_t end = at + 2;
    while (end < help.size() &&
           (std::isalnum(static_cast<unsigned char>(help[end])) || help[end] == '-'))
      ++end;
    std::string opt = help.substr(at, end - at);
    if (opt.size() <= 2) continue;
    ++count;
    EXPECT_NE(roff.find(opt), std::string::npos) << opt << " is missing from docs/uvget.1";
  }
  EXPECT_GT(count, 20u);
}

TEST_F(CliTest, DownloadsIntoTheDirectoryAndExitsZero) {
  TestServer server;
  std::string a = pattern_bytes(5000, 1), b = pattern_bytes(300'000, 2);
  server.route("/x/a.bin", Script().send(http_response(200, a)));
  server.route("/b.txt?version=2", Script().send(http_response(200, b)));
  auto r = uvget({"-d", dir_ + "/sub", server.url("/x/a.bin"), server.url("/b.txt?version=2")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/sub/a.bin"), a);
  EXPECT_EQ(read_file(dir_ + "/sub/b.txt"), b);
  EXPECT_NE(r.err.find("2 files ok, 0 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(a.size() + b.size()) + " bytes"), std::string::npos) << r.err;
}

// -H takes exactly one value each time, wherever it stands among the URLs: the URLs after it are
// URLs, not more headers (it once took them as header lines and fetched nothing after it).
TEST_F(CliTest, HeaderOptionsTakeOneValueWhereverTheyStand) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  auto header_lines = [](const RecordedRequest& r) {
    std::vector<std::string> names;
    for (auto& [name, value] : r.headers)
      if (name.starts_with("X-")) names.push_back(name + ": " + value);
    return names;
  };
  auto r = uvget({"-o", "-", "-H", "X-Test: 1", server.url("/echo")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/echo");
  r = uvget({"-o", "-", "--header=X-Test: 2", server.url("/eq")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/eq");
  r = uvget({"-d", dir_, "-H", "X-A: 1", server.url("/first"), "--header", "X-B: 2",
             server.url("/second"), "-H", "X-C: 3", server.url("/third"), "--header=X-D: 4"});
  EXPECT_EQ(r.status, 0) << r.err;
  for (auto name : {"first", "second", "third"})
    EXPECT_EQ(read_file(dir_ + "/" + name), std::string("/") + name) << name;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(header_lines(reqs[0]), (std::vector<std::string>{"X-Test: 1"}));
  EXPECT_EQ(header_lines(reqs[1]), (std::vector<std::string>{"X-Test: 2"}));
  for (std::size_t i = 2; i < reqs.size(); ++i) {
    EXPECT_EQ(header_lines(reqs[i]),
              (std::vector<std::string>{"X-A: 1", "X-B: 2", "X-C: 3", "X-D: 4"}))
        << reqs[i].raw;
    EXPECT_EQ(reqs[i].raw.find("http:"), std::string::npos) << "a URL became a header line";
  }
}

// A password in a URL is never printed or recorded: "alice:***@" everywhere uvget names the URL.
TEST_F(CliTest, CredentialsInAUrlAreMaskedOnStderrAndInTheRecords) {
  TestServer server;
  server.route("/ok", Script().send(http_response(200, "fine")));
  std::string port = std::to_string(server.port());
  std::string secret_ok = "http://alice:s3cr3t@127.0.0.1:" + port + "/ok";
  std::string secret_bad = "http://bob:hunter2@127.0.0.1:" + port + "/missing";
  auto r = uvget({"-d", dir_, "-v", "--retries", "0", "--json", dir_ + "/records.jsonl", secret_ok,
                  secret_bad});
  EXPECT_EQ(r.status, 1) << r.err;
  std::string records = read_file(dir_ + "/records.jsonl");
  for (const std::string& where : {r.err, records}) {
    EXPECT_EQ(where.find("s3cr3t"), std::string::npos) << where;
    EXPECT_EQ(where.find("hunter2"), std::string::npos) << where;
  }
  EXPECT_NE(r.err.find("http://bob:***@127.0.0.1:" + port + "/missing: HTTP 404"),
            std::string::npos)
      << r.err;
  EXPECT_NE(records.find("http://alice:***@127.0.0.1:" + port + "/ok"), std::string::npos)
      << records;
  EXPECT_NE(r.err.find("1 file ok, 1 failed"), std::string::npos) << "singular: " << r.err;
}

// A 503 lowers the host's connection limit: -v says so, and the URL's record carries the new
// limit; the files all land and the exit status is 0.
TEST_F(CliTest, AHostLimitThatChangedIsShownByVerboseAndTheRecord) {
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/a" && n++ == 0) return Script().send(http_response(503, "busy"));
    return Script().send(http_response(200, "body of " + r.target));
  });
  auto r = uvget({"-d", dir_, "-v", "--progress", "none", "--per-host", "4", "--retry-wait", "0.01",
                  "--json", dir_ + "/records.jsonl", server.url("/a"), server.url("/b")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/a"), "body of /a");
  EXPECT_EQ(read_file(dir_ + "/b"), "body of /b");
  std::string origin = server.url("");
  EXPECT_NE(r.err.find(origin + ": connection limit now "), std::string::npos) << r.err;
  std::string records = read_file(dir_ + "/records.jsonl");
  EXPECT_NE(records.find("\"host_limit\":"), std::string::npos) << records;
}

// --robots: a refused URL is never requested, fails (exit 1) with kind robots and is counted;
// --robots-skip-ok makes the same run exit 0.
TEST_F(CliTest, RobotsRefusesUrlsAndSkipOkMakesThatFine) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  server.route("/robots.txt",
               Script().send(http_response(200, "User-agent: *\nDisallow: /private\n")));
  auto r = uvget({"-d", dir_, "--robots", "--progress", "none", "--json", dir_ + "/records.jsonl",
                  server.url("/public"), server.url("/private/x")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(read_file(dir_ + "/public"), "body of /public");
  EXPECT_FALSE(exists(dir_ + "/x"));
  EXPECT_NE(r.err.find(server.url("/private/x") + ": disallowed by"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 URL refused by robots.txt"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir_ + "/records.jsonl").find("\"kind\":\"robots\""), std::string::npos);
  int asked = 0;
  for (auto& q : server.requests()) asked += q.target == "/private/x";
  EXPECT_EQ(asked, 0) << "a refused URL was requested";

  auto skip = uvget({"-d", dir_ + "/2", "--robots-skip-ok", "--progress", "none",
                     server.url("/public"), server.url("/private/x")});
  EXPECT_EQ(skip.status, 0) << skip.err;
  EXPECT_NE(skip.err.find("1 file ok, 0 failed"), std::string::npos) << skip.err;
  EXPECT_NE(skip.err.find("not counted as failed"), std::string::npos) << skip.err;
}

// --skip-done: a re-run with an earlier run's records requests only what is not done (a file
// deleted, a file of the wrong size, a URL that failed), counts the rest as done, and with
// --json to the same file converges on one record per URL.
TEST_F(CliTest, SkipDoneRequestsOnlyWhatIsNotDone) {
  std::atomic<bool> broken{true};
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/f3" && broken) return Script().send(http_response(500, "not now"));
    return Script().send(http_response(200, "body of " + r.target));
  });
  std::string list, records = dir_ + "/records.jsonl";
  for (int i = 0; i < 6; ++i) list += server.url("/f" + std::to_string(i)) + "\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  std::vector<std::string> args = {"-d",         dir_ + "/out", "--retries",   "0",
                                   "--progress", "none",        "--skip-done", records,
                                   "--json",     records,       "-i",          dir_ + "/list.txt"};
  auto first = uvget(args);  // no records yet: a missing file is an empty one
  EXPECT_EQ(first.status, 1) << first.err;
  EXPECT_EQ(server.requests().size(), 6u);
  std::filesystem::remove(dir_ + "/out/f1");
  { std::ofstream(dir_ + "/out/f2", std::ios::trunc) << "changed"; }
  broken = false;
  auto second = uvget(args);
  EXPECT_EQ(second.status, 0) << second.err;
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 9u);
  std::set<std::string> again;
  for (std::size_t i = 6; i < seen.size(); ++i) again.insert(seen[i].target);
  EXPECT_EQ(again, (std::set<std::string>{"/f1", "/f2", "/f3"}));
  EXPECT_NE(second.err.find("6 files ok, 0 failed"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("3 files already done by"), std::string::npos) << second.err;
  EXPECT_EQ(read_file(dir_ + "/out/f1"), "body of /f1");
  EXPECT_EQ(read_file(dir_ + "/out/f3"), "body of /f3");
  // f2 was there with the wrong size: fetched again under a new name, the old file untouched.
  EXPECT_EQ(read_file(dir_ + "/out/f2"), "changed");
  // One record per URL, three of them skipped; a third run makes no request at all.
  std::string text = read_file(records);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  std::size_t skipped = 0;
  for (std::size_t at = text.find("\"skipped\":true"); at != std::string::npos;
       at = text.find("\"skipped\":true", at + 1))
    ++skipped;
  EXPECT_EQ(skipped, 3u);
  auto third = uvget(args);
  EXPECT_EQ(third.status, 0) << third.err;
  EXPECT_EQ(server.requests().size(), 9u) << "a run of a list that is all done made requests";
  EXPECT_NE(third.err.find("6 files already done"), std::string::npos) << third.err;
}

// The files of a long list are checked off the loop in several batches: only the files that
// are gone are asked for again, and the skipped ones are recorded in list order.
TEST_F(CliTest, SkipDoneOverManyBatchesAsksOnlyForWhatIsGone) {
  TestServer server([&](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  const int n = 700;  // more than the first batches (64, 128, 256) together
  std::string list, records = dir_ + "/records.jsonl", again = dir_ + "/again.jsonl";
  for (int i = 0; i < n; ++i) list += server.url("/f" + std::to_string(i)) + "\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto first = uvget({"-d", dir_ + "/out", "-j", "8", "--progress", "none", "--json", records, "-i",
                      dir_ + "/list.txt"});
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(server.requests().size(), static_cast<std::size_t>(n));
  std::set<std::string> gone;
  for (int i = 0; i < n; i += 7) {
    std::filesystem::remove(dir_ + "/out/f" + std::to_string(i));
    gone.insert("/f" + std::to_string(i));
  }
  // A bad entry first: its failure record must not colour the skipped records after it.
  { std::ofstream(dir_ + "/list2.txt") << server.url("/bad") << "\n  colour=blue\n" << list; }
  auto second = uvget({"-d", dir_ + "/out", "-j", "8", "--progress", "none", "--skip-done", records,
                       "--json", again, "-i", dir_ + "/list2.txt"});
  EXPECT_EQ(second.status, 1) << second.err;
  auto seen = server.requests();
  std::set<std::string> asked;
  for (std::size_t i = n; i < seen.size(); ++i) asked.insert(seen[i].target);
  EXPECT_EQ(seen.size(), n + gone.size());
  EXPECT_EQ(asked, gone);
  std::string failed = read_file(again);
  failed = failed.substr(0, failed.find('\n'));
  EXPECT_NE(failed.find("/bad"), std::string::npos) << failed;
  EXPECT_EQ(failed.find("\"status\":200"), std::string::npos) << failed;
  for (const std::string& t : gone) EXPECT_EQ(read_file(dir_ + "/out" + t), "body of " + t);
  // The skipped records come in list order.
  std::istringstream text(read_file(again));
  int last = -1, skipped = 0;
  for (std::string line; std::getline(text, line);) {
    if (line.find("\"skipped\":true") == std::string::npos) continue;
    EXPECT_NE(line.find("\"error\":null}"), std::string::npos) << line;
    EXPECT_NE(line.find("\"status\":200"), std::string::npos) << line;
    std::size_t at = line.find("/f") + 2;
    int i = std::stoi(line.substr(at));
    EXPECT_GT(i, last) << line;
    EXPECT_NE(i % 7, 0) << line;
    last = i;
    ++skipped;
  }
  EXPECT_EQ(skipped, n - static_cast<int>(gone.size()));
}

// --max-filesize: a Content-Length over it is refused before any byte is written, a body
// without one is stopped as it passes it; neither leaves a file, and neither is retried.
TEST_F(CliTest, MaxFilesizeRefusesLargeBodiesAndLeavesNoFile) {
  std::string big(5000, 'b');
  TestServer server;
  server.route("/small", Script().send(http_response(200, std::string(900, 's'))));
  server.route("/announced", Script().send(http_response(200, big)));
  server.route("/chunked",
               Script().send(chunked_response(200, {big.substr(0, 800), big.substr(800)})));
  server.route("/until-close",
               Script().send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").send(big).close());
  auto r = uvget({"-d", dir_, "--progress", "none", "--max-filesize", "1K", "--retries", "3",
                  "--json", dir_ + "/records.jsonl", server.url("/small"), server.url("/announced"),
                  server.url("/chunked"), server.url("/until-close")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(read_file(dir_ + "/small"), std::string(900, 's'));
  for (const char* name : {"announced", "chunked", "until-close"}) {
    EXPECT_FALSE(exists(dir_ + "/" + name)) << name;
    EXPECT_FALSE(exists(dir_ + "/" + name + ".part")) << name;
  }
  EXPECT_NE(
      r.err.find(server.url("/announced") + ": the body is 5000 bytes, over the limit of 1024"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(server.url("/chunked") + ": the body passed 1024 bytes"), std::string::npos)
      << r.err;
  int asked = 0;
  for (auto& q : server.requests()) asked += q.target != "/small";
  EXPECT_EQ(asked, 3) << "a refused file was retried";
  EXPECT_NE(read_file(dir_ + "/records.jsonl").find("\"kind\":\"too_large\""), std::string::npos);
}

// -x lays files out as host/path under -d: hostile segments stay inside it, --cut-dirs and
// --no-host-directories trim the layout, and a symbolic link planted in the layout is not
// followed (that URL fails, nothing is written where it points).
TEST_F(CliTest, ForceDirectoriesKeepsEveryFileUnderTheDirectory) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  std::string host = "127.0.0.1:" + std::to_string(server.port());
  std::string out = dir_ + "/out";
  auto r = uvget({"-d", out, "-x", "--progress", "none", server.url("/a/b/c.txt"),
                  server.url("/%2e%2e/%2e%2e/escape.txt"), server.url("/d%2F..%2F..%2Fx/f.txt"),
                  server.url("/" + std::string(300, 'L') + "/long.txt")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(out + "/" + host + "/a/b/c.txt"), "body of /a/b/c.txt");
  EXPECT_TRUE(exists(out + "/" + host + "/__/__/escape.txt"));
  EXPECT_TRUE(exists(out + "/" + host + "/d_.._.._x/f.txt"));
  EXPECT_TRUE(exists(out + "/" + host + "/" + std::string(200, 'L') + "/long.txt"));
  EXPECT_FALSE(exists(dir_ + "/escape.txt"));
  EXPECT_FALSE(exists(dir_ + "/x"));
  // Every file is somewhere under -d.
  std::size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 4u);

  auto cut = uvget({"-d", dir_ + "/cut", "-x", "--no-host-directories", "--cut-dirs", "1",
                    "--progress", "none", server.url("/a/b/c.txt")});
  EXPECT_EQ(cut.status, 0) << cut.err;
  EXPECT_EQ(read_file(dir_ + "/cut/b/c.txt"), "body of /a/b/c.txt");

  // A link where a directory of the layout goes: refused, the target untouched.
  std::string elsewhere = dir_ + "/elsewhere";
  std::filesystem::create_directories(elsewhere);
  std::filesystem::create_directories(dir_ + "/trap/" + host);
  std::filesystem::create_directory_symlink(elsewhere, dir_ + "/trap/" + host + "/a");
  auto trap = uvget({"-d", dir_ + "/trap", "-x", "--progress", "none", server.url("/a/b/c.txt"),
                     server.url("/ok.txt")});
  EXPECT_EQ(trap.status, 1) << trap.err;
  EXPECT_NE(trap.err.find(server.url("/a/b/c.txt") + ": '"), std::string::npos) << trap.err;
  EXPECT_NE(trap.err.find("not followed"), std::string::npos) << trap.err;
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere));
  EXPECT_EQ(read_file(dir_ + "/trap/" + host + "/ok.txt"), "body of /ok.txt");
}

TEST_F(CliTest, NameFromTellsUrlsApartByQueryOrHash) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  auto q = uvget({"-d", dir_ + "/q", "--name-from", "path+query", "--progress", "none",
                  server.url("/download?id=1"), server.url("/download?id=2")});
  EXPECT_EQ(q.status, 0) << q.err;
  EXPECT_EQ(read_file(dir_ + "/q/download?id=1"), "body of /download?id=1");
  EXPECT_EQ(read_file(dir_ + "/q/download?id=2"), "body of /download?id=2");
  auto h = uvget({"-d", dir_ + "/h", "--name-from", "hash", "--progress", "none",
                  server.url("/img/a.jpg?s=1"), server.url("/img/a.jpg?s=2")});
  EXPECT_EQ(h.status, 0) << h.err;
  std::set<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/h"))
    names.insert(e.path().filename().string());
  ASSERT_EQ(names.size(), 2u);
  for (auto& n : names) {
    EXPECT_EQ(n.size(), 36u) << n;
    EXPECT_EQ(n.substr(32), ".jpg") << n;
  }
  EXPECT_EQ(uvget({"--name-from", "md5", "http://127.0.0.1:1/"}).status, 2);
}

// The list's own form (as aria2c's): mirrors after tabs tried in turn, indented out=, dir=,
// checksum= and header= lines, and bad lines reported with their number while the rest go on.
TEST_F(CliTest, ListEntriesCarryMirrorsAndOptions) {
  std::string body = "the file's bytes";
  TestServer dead([](const RecordedRequest&) { return Script().send(http_response(503, "no")); });
  TestServer gone([](const RecordedRequest&) { return Script().reset(); });
  TestServer good([&](const RecordedRequest& r) {
    if (r.target == "/h" && (!r.header("X-Token") || *r.header("X-Token") != "a=b"))
      return Script().send(http_response(403, "no token"));
    return Script().send(http_response(200, r.target == "/f.iso" ? body : "body of " + r.target));
  });
  std::string list = dead.url("/f.iso") + "\t" + gone.url("/f.iso") + "\t" + good.url("/f.iso") +
                     "\n" + "  out=renamed.iso\n" + "  checksum=sha-256=" + sha256_hex(body) +
                     "\n" + good.url("/d") + "\n" + "\tdir=sub/../deeper\n" + good.url("/h") +
                     "\n" + "  header=X-Token: a=b\n" + good.url("/bad") + "\n" +
                     "  colour=blue\n" + "  out=../../escape\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto r = uvget({"-d", dir_ + "/out", "--retries", "0", "--progress", "none", "--json",
                  dir_ + "/records.jsonl", "-i", dir_ + "/list.txt"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(read_file(dir_ + "/out/renamed.iso"), body);
  EXPECT_EQ(dead.requests().size(), 1u);
  EXPECT_EQ(gone.requests().size(), 1u);
  EXPECT_EQ(good.requests().size(), 3u) << "the bad entry was requested";
  EXPECT_EQ(read_file(dir_ + "/out/sub/__/deeper/d"), "body of /d");
  EXPECT_EQ(read_file(dir_ + "/out/h"), "body of /h");
  EXPECT_NE(r.err.find("line 9: unknown option 'colour'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(trying " + good.url("/f.iso") + ")"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(dir_ + "/escape"));
  std::string records = read_file(dir_ + "/records.jsonl");
  EXPECT_NE(records.find("\"url\":\"" + dead.url("/f.iso") + "\",\"final_url\":\"" +
                         good.url("/f.iso") + "\""),
            std::string::npos)
      << "the entry is recorded under its own URL, with the mirror that served it: " << records;

  // An entry whose option line starts the list file's second 64 KiB read still gets it.
  std::string url_line = good.url("/d") + "\n";
  std::string filler = "#" + std::string(64 * 1024 - url_line.size() - 2, 'x') + "\n";
  { std::ofstream(dir_ + "/long.txt") << filler << url_line << "  out=split-option\n"; }
  auto split = uvget({"-d", dir_ + "/out2", "--progress", "none", "-i", dir_ + "/long.txt"});
  EXPECT_EQ(split.status, 0) << split.err;
  EXPECT_EQ(read_file(dir_ + "/out2/split-option"), "body of /d");
}

// --split with an entry's mirrors: the segments go to the URL and its mirrors in turn, and the
// file is the same bytes. Credentials in an entry's header= lines never reach a mirror on
// another origin, whether it takes segments or the whole file.
TEST_F(CliTest, SplitSegmentsComeFromTheEntrysMirrors) {
  std::string body = pattern_bytes(4 << 20, 5);  // three segments of 1 MiB or more
  auto serve = [&](const char* etag) {
    return [&body, etag](const RecordedRequest& r) { return serve_ranges(r, body, etag); };
  };
  TestServer a(serve("\"a\"")), b(serve("\"b\"")), c(serve("\"c\""));
  TestServer dead([](const RecordedRequest&) { return Script().send(http_response(503, "no")); });
  TestServer fallback(serve("\"f\""));
  std::string list = a.url("/big") + "\t" + b.url("/big") + "\t" + c.url("/big") + "\n" +
                     "  header=Authorization: Bearer for-a\n  header=X-Trace: 7\n" +
                     dead.url("/other") + "\t" + fallback.url("/other") + "\n" +
                     "  header=Cookie: session=for-dead\n  header=X-Trace: 8\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto r = uvget({"-d", dir_ + "/out", "--retries", "0", "--progress", "none", "--split", "3",
                  "--min-split-size", "1M", "-i", dir_ + "/list.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(read_file(dir_ + "/out/big") == body) << "the split file differs";
  EXPECT_TRUE(read_file(dir_ + "/out/other") == body);
  std::size_t ranged_b = 0, ranged_c = 0;
  for (auto& q : b.requests()) ranged_b += q.header("Range").has_value();
  for (auto& q : c.requests()) ranged_c += q.header("Range").has_value();
  EXPECT_EQ(ranged_b, 1u);
  EXPECT_EQ(ranged_c, 1u);
  for (const TestServer* m : {&b, &c})
    for (auto& q : m->requests()) {
      EXPECT_FALSE(q.header("Authorization")) << "a mirror was sent the entry's credentials";
      EXPECT_EQ(q.header("X-Trace").value_or(""), "7");
    }
  EXPECT_EQ(a.requests().at(0).header("Authorization").value_or(""), "Bearer for-a");
  ASSERT_FALSE(fallback.requests().empty());
  EXPECT_EQ(dead.requests().at(0).header("Cookie").value_or(""), "session=for-dead");
  for (auto& q : fallback.requests()) {
    EXPECT_FALSE(q.header("Cookie")) << "the fallback mirror was sent the entry's cookie";
    EXPECT_EQ(q.header("X-Trace").value_or(""), "8");
  }
}

// -J: the file gets the name Content-Disposition gives, never a path, and a taken name gets
// the usual suffix; without the header the URL names it.
TEST_F(CliTest, ContentDispositionNamesTheFileSafely) {
  TestServer server;
  server.route("/dl?id=1",
               Script().send(http_response(
                   200, "one", {{"Content-Disposition", "attachment; filename=\"report.pdf\""}})));
  server.route("/dl?id=2",
               Script().send(http_response(
                   200, "two", {{"Content-Disposition", "attachment; filename=\"report.pdf\""}})));
  server.route("/evil",
               Script().send(http_response(
                   200, "evil",
                   {{"Content-Disposition", "attachment; filename*=UTF-8''..%2F..%2Fescape.sh"}})));
  server.route("/plain.txt", Script().send(http_response(200, "plain")));
  auto r =
      uvget({"-d", dir_ + "/out", "-J", "-j", "1", "--progress", "none", server.url("/dl?id=1"),
             server.url("/dl?id=2"), server.url("/evil"), server.url("/plain.txt")});
  EXPECT_EQ(r.status, 0) << r.err;
  // Both kept: the one whose file was placed first has the name (the sinks place them on the
  // threadpool, so not necessarily in list order), the other NAME.1.
  EXPECT_EQ((std::set<std::string>{read_file(dir_ + "/out/report.pdf"),
                                   read_file(dir_ + "/out/report.pdf.1")}),
            (std::set<std::string>{"one", "two"}));
  EXPECT_EQ(read_file(dir_ + "/out/escape.sh"), "evil");
  EXPECT_EQ(read_file(dir_ + "/out/plain.txt"), "plain");
  EXPECT_FALSE(exists(dir_ + "/escape.sh"));
  EXPECT_FALSE(exists(dir_ + "/out/dl"));
  for (std::vector<std::string> other : {std::vector<std::string>{"--overwrite"}, {"-o", "x"}}) {
    other.push_back("-J");
    other.push_back(server.url("/plain.txt"));
    auto refused = uvget(other);
    EXPECT_EQ(refused.status, 2) << other[0];
    EXPECT_NE(refused.err.find("-J names files from the response: not with " + other[0]),
              std::string::npos)
        << refused.err;
  }
}

// -J with -c: an interrupted download continues under the name its first response chose,
// even when the server names it differently now, asking only for the rest.
TEST_F(CliTest, ContentDispositionWithContinueKeepsTheNameChosenFirst) {
  std::string body = pattern_bytes(300'000, 9);
  std::atomic<int> run{1};
  TestServer server([&](const RecordedRequest& r) {
    auto a = answer_ranges(r, body.size(), "\"v1\"");
    std::string name = "report-" + std::to_string(run.load()) + ".pdf";
    a.head.insert(a.head.size() - 2, "Content-Disposition: attachment; filename=" + name + "\r\n");
    if (run == 1 && r.target == "/dl")  // the first run breaks after 100 kB
      return Script().send(a.head + body.substr(a.from, 100'000)).pause_ms(20).reset();
    return Script().send(a.head + body.substr(a.from, a.to - a.from));
  });
  std::vector<std::string> args = {
      "-d", dir_ + "/out", "-J", "-c", "--retries", "0", "--progress", "none", server.url("/dl")};
  auto first = uvget(args);
  EXPECT_EQ(first.status, 1) << first.err;
  EXPECT_TRUE(exists(dir_ + "/out/report-1.pdf.part")) << "the interrupted file was not kept";
  EXPECT_FALSE(exists(dir_ + "/out/report-1.pdf"));
  run = 2;
  auto second = uvget(args);
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_TRUE(read_file(dir_ + "/out/report-1.pdf") == body) << "the continued file differs";
  EXPECT_FALSE(exists(dir_ + "/out/report-2.pdf")) << "the second name was used";
  EXPECT_FALSE(exists(dir_ + "/out/report-1.pdf.part"));
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  auto range = requested_range(seen[1]);
  ASSERT_TRUE(range) << "the second run asked for the whole file again";
  EXPECT_GT(range->first, 0u);
  EXPECT_LE(range->first, 100'000u);
  EXPECT_EQ(seen[1].header("If-Range").value_or(""), "\"v1\"");
  // A URL with nothing left behind starts afresh under its response's name, beside the file.
  auto third =
      uvget({"-d", dir_ + "/out", "-J", "-c", "--progress", "none", server.url("/dl?again")});
  EXPECT_EQ(third.status, 0) << third.err;
  EXPECT_TRUE(read_file(dir_ + "/out/report-2.pdf") == body);
  EXPECT_TRUE(read_file(dir_ + "/out/report-1.pdf") == body);
}

// --if-changed asks again with the recorded ETag and Last-Modified: a 304 keeps the file, a
// changed file replaces it in place. -N asks by the file's own time.
TEST_F(CliTest, IfChangedAndTimestampingAskOnlyForWhatChanged) {
  std::atomic<int> version{1};
  const std::string lm = "Tue, 01 Dec 2026 10:00:00 GMT";
  TestServer server([&](const RecordedRequest& r) {
    std::string etag = r.target == "/b" ? "\"v" + std::to_string(version) + "\"" : "\"a1\"";
    auto inm = r.header("If-None-Match");
    auto ims = r.header("If-Modified-Since");
    if ((inm && *inm == etag) || (r.target == "/n" && ims && *ims == lm))
      return Script().send(http_response(304, ""));
    return Script().send(http_response(200, "body of " + r.target + " v" + std::to_string(version),
                                       {{"ETag", etag}, {"Last-Modified", lm}}));
  });
  std::string rec = dir_ + "/rec.jsonl", rec2 = dir_ + "/rec2.jsonl";
  auto first = uvget({"-d", dir_ + "/out", "--progress", "none", "--json", rec, server.url("/a"),
                      server.url("/b")});
  EXPECT_EQ(first.status, 0) << first.err;
  EXPECT_NE(read_file(rec).find("\"etag\":\"\\\"a1\\\"\""), std::string::npos) << read_file(rec);
  version = 2;
  auto second = uvget({"-d", dir_ + "/out", "--progress", "none", "--if-changed", rec, "--json",
                       rec2, server.url("/a"), server.url("/b")});
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(read_file(dir_ + "/out/a"), "body of /a v1") << "a 304 kept the file";
  EXPECT_EQ(read_file(dir_ + "/out/b"), "body of /b v2") << "a changed file replaced in place";
  EXPECT_FALSE(exists(dir_ + "/out/b.1"));
  EXPECT_NE(second.err.find("1 file not changed"), std::string::npos) << second.err;
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[2].header("If-None-Match").value_or(""),
            seen[2].target == "/a" ? "\"a1\"" : "\"v1\"");
  EXPECT_EQ(seen[3].header("If-None-Match").value_or(""),
            seen[3].target == "/a" ? "\"a1\"" : "\"v1\"");
  std::string again = read_file(rec2);
  EXPECT_NE(again.find("\"status\":304"), std::string::npos) << again;

  // -N: the first run sets the file's time to Last-Modified; the next asks by it and keeps it.
  auto n1 = uvget({"-d", dir_ + "/n", "-N", "--progress", "none", server.url("/n")});
  EXPECT_EQ(n1.status, 0) << n1.err;
  auto n2 = uvget({"-d", dir_ + "/n", "-N", "--progress", "none", server.url("/n")});
  EXPECT_EQ(n2.status, 0) << n2.err;
  EXPECT_EQ(server.requests().back().header("If-Modified-Since").value_or(""), lm);
  EXPECT_EQ(read_file(dir_ + "/n/n"), "body of /n v2");
  EXPECT_FALSE(exists(dir_ + "/n/n.1"));
}

TEST_F(CliTest, AFailureExitsOneAndNamesTheUrlAndCause) {
  TestServer server;
  server.route("/good", Script().send(http_response(200, "good")));
  auto r = uvget({"-d", dir_, server.url("/good"), server.url("/missing")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(server.url("/missing") + ": HTTP 404"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir_ + "/good"), "good");
  EXPECT_FALSE(exists(dir_ + "/missing"));
  EXPECT_FALSE(exists(dir_ + "/missing.part"));
}

TEST_F(CliTest, InputListSkipsCommentsAndReportsBadLines) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  std::string list = "# a comment\n\n" + server.url("/one") + "\nnot a url\n  " +
                     server.url("/two") + "  \r\nftp://x/y\n" +
                     server.url("/three");  // no final newline
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto r = uvget({"-d", dir_ + "/out", "-i", dir_ + "/list.txt"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("line 4:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 6:"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir_ + "/out/one"), "/one");
  EXPECT_EQ(read_file(dir_ + "/out/two"), "/two");
  EXPECT_EQ(read_file(dir_ + "/out/three"), "/three");
}

TEST_F(CliTest, StdinListIsRead) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  std::string list;
  for (int i = 0; i < 50; ++i) list += server.url("/s" + std::to_string(i)) + "\n";
  auto r = uvget({"-d", dir_, "-i", "-", "-q"}, list);
  EXPECT_EQ(r.status, 0) << r.err;
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(read_file(dir_ + "/s" + std::to_string(i)), "/s" + std::to_string(i));
  EXPECT_EQ(r.err, "") << "-q prints nothing on success";
}

// Also with --loops 2: the list is streamed to the loops as it arrives.
void stdin_downloads_start_before_the_list_ends(const std::string& bin, const std::string& dir,
                                                const std::string& extra) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  std::string cmd = bin + " -q -d " + dir + " -i -" + extra;
  FILE* in = ::popen(cmd.c_str(), "w");
  ASSERT_NE(in, nullptr);
  std::fprintf(in, "%s\n", server.url("/first").c_str());
  std::fflush(in);
  // The list is still open: the first download must already be under way.
  EXPECT_TRUE(server.wait_for_requests(1, 5000)) << "nothing was fetched before EOF on stdin";
  std::fprintf(in, "%s\n", server.url("/second").c_str());
  int st = ::pclose(in);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_EQ(read_file(dir + "/first"), "/first");
  EXPECT_EQ(read_file(dir + "/second"), "/second");
}

TEST_F(CliTest, StdinDownloadsStartBeforeTheListEnds) {
  stdin_downloads_start_before_the_list_ends(bin_, dir_, "");
}

TEST_F(CliTest, LoopsStreamStdinBeforeTheListEnds) {
  stdin_downloads_start_before_the_list_ends(bin_, dir_, " --loops 2");
}

// The value of "key":"..." in a --json record (no escapes in what the tests look up).
std::string json_field(const std::string& line, const std::string& key) {
  std::string k = "\"" + key + "\":\"";
  auto at = line.find(k);
  if (at == std::string::npos) return "";
  at += k.size();
  return line.substr(at, line.find('"', at) - at);
}

TEST_F(CliTest, SameNameTwiceGetsANumericSuffix) {
  TestServer server;
  server.route("/a/file", Script().send(http_response(200, "first")));
  server.route("/b/file", Script().send(http_response(200, "second")));
  { std::ofstream(dir_ + "/file") << "already here"; }
  { std::ofstream(dir_ + "/file.1.part") << "another download's"; }
  auto r = uvget({"-d", dir_, "-j", "1", "--json", dir_ + "/report.json", "--progress", "lines",
                  server.url("/a/file"), server.url("/b/file")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/file"), "already here");
  EXPECT_EQ(read_file(dir_ + "/file.1.part"), "another download's");
  // file.2 and file.3, in the order the two files were written; each record names its own.
  std::set<std::string> got{read_file(dir_ + "/file.2"), read_file(dir_ + "/file.3")};
  EXPECT_EQ(got, (std::set<std::string>{"first", "second"}));
  std::istringstream json(read_file(dir_ + "/report.json"));
  int records = 0;
  for (std::string line; std::getline(json, line); ++records) {
    std::string path = json_field(line, "path"), url = json_field(line, "url");
    EXPECT_EQ(read_file(path), url.ends_with("/a/file") ? "first" : "second") << line;
    EXPECT_NE(r.err.find(url + " -> " + path + " "), std::string::npos) << r.err;
  }
  EXPECT_EQ(records, 2);
  EXPECT_NE(r.err.find("2 names were already taken, so their files got a numbered name"),
            std::string::npos)
      << "a re-run that doubles files says so: " << r.err;
}

// Thousands of URLs that end in one name: each gets its own NAME.N, every number once, and
// naming stays O(1) a file (it used to probe NAME.1, NAME.2, ... from 1 each time).
TEST_F(CliTest, AChainOf10000ClashingNamesGetsEveryNumberOnce) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  constexpr int kFiles = 10000;  // the issue's chain
  std::string list;
  for (int i = 0; i < kFiles; ++i) list += server.url("/d" + std::to_string(i) + "/same") + "\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto r = uvget({"-q", "-d", dir_ + "/out", "-i", dir_ + "/list.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::set<std::string> names, bodies;
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/out")) {
    names.insert(e.path().filename().string());
    bodies.insert(read_file(e.path().string()));
  }
  std::set<std::string> want_names{"same"}, want_bodies;
  for (int i = 0; i < kFiles; ++i) {
    if (i > 0) want_names.insert("same." + std::to_string(i));
    want_bodies.insert("/d" + std::to_string(i) + "/same");
  }
  EXPECT_TRUE(names == want_names) << names.size() << " names";
  EXPECT_TRUE(bodies == want_bodies) << "each file holds its own URL's body";
}

TEST_F(CliTest, OverwriteAndOutputReplaceTheFile) {
  TestServer server;
  server.route("/file", Script().send(http_response(200, "new")));
  { std::ofstream(dir_ + "/file") << "old"; }
  { std::ofstream(dir_ + "/named") << "old"; }
  EXPECT_EQ(uvget({"-d", dir_, "--overwrite", server.url("/file")}).status, 0);
  EXPECT_EQ(uvget({"-o", dir_ + "/named", server.url("/file")}).status, 0);
  EXPECT_EQ(read_file(dir_ + "/file"), "new");
  EXPECT_EQ(read_file(dir_ + "/named"), "new");
  EXPECT_FALSE(exists(dir_ + "/file.1"));
  EXPECT_FALSE(exists(dir_ + "/named.1"));
}

// Only regular files are ever replaced. -o at a device, a FIFO or a socket writes straight into
// it (curl, wget and aria2c do), with no .part and no rename: it once renamed a .part over
// /dev/null. The device here is made with mknod in the test's own directory (as root), never the
// system's.
TEST_F(CliTest, OutputToACharacterDeviceWritesIntoItAndLeavesItADevice) {
  TestServer server;
  server.route("/small", Script().send(http_response(200, "small body")));
  server.route("/large", Script().send(http_response(200, pattern_bytes(300'000, 4))));
  std::string dev = dir_ + "/null";
  ASSERT_EQ(::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0)
      << "cannot make a character device (the test needs root): " << std::strerror(errno);
  for (auto target : {"/small", "/large"}) {
    auto r = uvget({"-q", "-o", dev, server.url(target)});
    EXPECT_EQ(r.status, 0) << target << ": " << r.err;
    struct stat st {};
    ASSERT_EQ(::lstat(dev.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << target << ": the device was replaced";
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    EXPECT_EQ(names, std::vector<std::string>{"null"}) << target << ": something beside it";
  }
}

// Reads a FIFO opened read-write (so it never sees EOF early) until `want` bytes or 20 s.
std::string read_fifo(int fd, std::size_t want) {
  std::string got;
  char buf[65536];
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < want && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

TEST_F(CliTest, OutputToAFifoStreamsIntoItAndANoReaderFifoFailsClearly) {
  TestServer server;
  std::string large = pattern_bytes(300'000, 5);
  server.route("/small", Script().send(http_response(200, "through the pipe")));
  server.route("/large", Script().send(http_response(200, large)));
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0) << std::strerror(errno);
  {
    auto r = uvget({"-o", fifo, server.url("/small")});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(server.url("/small") + ": cannot open '" + fifo + "': nothing reads"),
              std::string::npos)
        << r.err;
  }
  int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);  // the reader: us
  ASSERT_GE(fd, 0) << std::strerror(errno);
  for (auto [target, body] : {std::pair<std::string, std::string>{"/small", "through the pipe"},
                              std::pair<std::string, std::string>{"/large", large}}) {
    std::string got;
    std::thread reader([&, want = body.size()] { got = read_fifo(fd, want); });
    auto r = uvget({"-q", "-o", fifo, server.url(target)});
    reader.join();
    EXPECT_EQ(r.status, 0) << target << ": " << r.err;
    EXPECT_EQ(got.size(), body.size()) << target;
    EXPECT_TRUE(got == body) << target << ": the bytes differ";
    char extra;
    EXPECT_EQ(::read(fd, &extra, 1), -1) << target << ": more bytes than the body";
    struct stat st {};
    ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << target << ": the FIFO was replaced";
    EXPECT_FALSE(exists(fifo + ".part"));
  }
  ::close(fd);
}

// -o LINK writes where the link points (a relative link, and a dangling one that creates its
// target) and leaves the link as it was. A name that came from a URL is never followed: with
// --overwrite a symbolic link there is refused, and without it the body takes NAME.1.
TEST_F(CliTest, OutputThroughASymlinkButNeverANameFromAUrl) {
  TestServer server;
  server.route("/body", Script().send(http_response(200, "new bytes")));
  server.route("/large", Script().send(http_response(200, pattern_bytes(200'000, 6))));
  { std::ofstream(dir_ + "/target") << "old"; }
  ASSERT_EQ(::symlink("target", (dir_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("made-by-uvget", (dir_ + "/dangling").c_str()), 0);
  auto r = uvget({"-q", "-o", dir_ + "/link", server.url("/body")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/target"), "new bytes");
  r = uvget({"-q", "-o", dir_ + "/dangling", server.url("/large")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/made-by-uvget"), pattern_bytes(200'000, 6));
  for (auto [link, to] : {std::pair{"/link", "target"}, std::pair{"/dangling", "made-by-uvget"}}) {
    std::error_code ec;
    EXPECT_TRUE(std::filesystem::is_symlink(dir_ + link)) << link;
    EXPECT_EQ(std::filesystem::read_symlink(dir_ + link, ec), to) << link;
  }

  std::string out = dir_ + "/out";
  std::filesystem::create_directory(out);
  { std::ofstream(dir_ + "/secret") << "keep me"; }
  ASSERT_EQ(::symlink((dir_ + "/secret").c_str(), (out + "/body").c_str()), 0);
  r = uvget({"-d", out, "--overwrite", server.url("/body")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("symbolic link (not followed)"), std::string::npos) << r.err;
  r = uvget({"-q", "-d", out, server.url("/body")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(out + "/body.1"), "new bytes");
  EXPECT_EQ(read_file(dir_ + "/secret"), "keep me");
  EXPECT_TRUE(std::filesystem::is_symlink(out + "/body"));
}

// -R: the file's modification time is the server's Last-Modified, for a small body (written in
// one go) and a large one (streamed); without -R it is now.
TEST_F(CliTest, RemoteTimeSetsTheFilesModificationTime) {
  TestServer server;
  Headers lm = {{"Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  server.route("/small", Script().send(http_response(200, "small", lm)));
  server.route("/large", Script().send(http_response(200, pattern_bytes(300'000, 3), lm)));
  auto r = uvget({"-q", "-R", "-d", dir_ + "/r", server.url("/small"), server.url("/large")});
  EXPECT_EQ(r.status, 0) << r.err;
  r = uvget({"-q", "-d", dir_ + "/now", server.url("/small")});
  EXPECT_EQ(r.status, 0) << r.err;
  auto mtime = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mtime;
  };
  EXPECT_EQ(mtime(dir_ + "/r/small"), 1445412480);
  EXPECT_EQ(mtime(dir_ + "/r/large"), 1445412480);
  EXPECT_GT(mtime(dir_ + "/now/small"), 1445412480 + 86400);
}

TEST_F(CliTest, TraversalAttemptsStayInsideTheDirectory) {
  TestServer server(
      [](const RecordedRequest&) { return Script().send(http_response(200, "evil")); });
  std::string inner = dir_ + "/inner";
  auto r = uvget({"-d", inner, server.url("/..%2f..%2fescaped"), server.url("/%2e%2e"),
                  server.url("/a%5c..%5cb"), server.url("/.hidden"), server.url("/x%00y")});
  EXPECT_EQ(r.status, 0) << r.err;
  std::size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    ++n;
    EXPECT_EQ(e.path().filename(), "inner") << "a file escaped: " << e.path();
  }
  EXPECT_EQ(n, 1u);
  std::size_t inside = 0;
  for (auto& e : std::filesystem::directory_iterator(inner)) {
    ++inside;
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  }
  EXPECT_EQ(inside, 5u);
}

TEST_F(CliTest, DiscardWritesNothing) {
  TestServer server([](const RecordedRequest&) {
    return Script().send(http_response(200, pattern_bytes(1000)));
  });
  auto r = uvget({"-d", dir_ + "/none", "--discard", server.url("/a"), server.url("/b")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(exists(dir_ + "/none"));
  EXPECT_NE(r.err.find("2000 bytes"), std::string::npos) << r.err;
}

TEST_F(CliTest, OutputToStdout) {
  TestServer server;
  server.route("/o", Script().send(http_response(200, "to stdout")));
  auto r = uvget({"-q", "-o", "-", server.url("/o")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "to stdout");
}

// Ctrl-C: every URL of the list has exactly one record, so that a retry built from the records
// misses none: the ones done, the ones cancelled in flight and the ones never started.
TEST_F(CliTest, InterruptLeavesARecordForEveryUrlOfTheList) {
  TestServer server([](const RecordedRequest& r) {
    if (r.target.starts_with("/ok")) return Script().send(http_response(200, "done"));
    return Script().stall();
  });
  std::string list;
  std::vector<std::string> urls;
  for (int i = 0; i < 2; ++i) urls.push_back(server.url("/ok" + std::to_string(i)));
  for (int i = 0; i < 298; ++i) urls.push_back(server.url("/stall" + std::to_string(i)));
  for (auto& u : urls) list += u + "\n";
  { std::ofstream(dir_ + "/list.txt") << list; }
  auto r = run_bin(
      bin_,
      {"-d", dir_ + "/out", "-j", "4", "--json", dir_ + "/records.jsonl", "-i", dir_ + "/list.txt"},
      "", SIGINT, 800);
  EXPECT_EQ(r.status, 130) << r.err;
  std::istringstream records(read_file(dir_ + "/records.jsonl"));
  std::map<std::string, int> seen, kinds;
  for (std::string line; std::getline(records, line);) {
    ++seen[json_field(line, "url")];
    std::string kind =
        line.find("\"error\":null") != std::string::npos ? "ok" : json_field(line, "kind");
    ++kinds[kind];
  }
  EXPECT_EQ(seen.size(), urls.size());
  for (auto& u : urls) EXPECT_EQ(seen[u], 1) << u;
  EXPECT_EQ(kinds["ok"], 2);
  EXPECT_GE(kinds["cancelled"], 1) << "the stalled downloads in flight";
  EXPECT_EQ(kinds["ok"] + kinds["cancelled"] + kinds["not_started"], 300);
  EXPECT_NE(r.err.find("not started"), std::string::npos) << r.err;
}

TEST_F(CliTest, InterruptStopsLeavesNoFinalFileAndExits130) {
  TestServer server;
  server.route("/slow", Script()
                            .send("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" +
                                  pattern_bytes(200'000))
                            .stall());
  auto r = run_bin(bin_, {"-d", dir_, server.url("/slow")}, "", SIGINT, 500);
  EXPECT_EQ(r.status, 130) << r.err;
  EXPECT_FALSE(exists(dir_ + "/slow"));
  ASSERT_TRUE(exists(dir_ + "/slow.part")) << "an interrupted download keeps its .part";
  EXPECT_EQ(read_file(dir_ + "/slow.part"), pattern_bytes(200'000));
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
}

// A body small enough to be still all in memory when Ctrl-C comes is kept as NAME.part too,
// with its sidecar, so that -c continues it; and a plain re-run (no -c) knows that leftover as
// its own: it starts over in it and the file gets its name, not NAME.1.
TEST_F(CliTest, AnInterruptedSmallBodyIsKeptAndAReRunTakesItsPartBack) {
  std::string body = pattern_bytes(30'000, 5);
  std::atomic<bool> stall{true};
  TestServer server([&](const RecordedRequest& r) {
    if (stall)
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 30000\r\nETag: \"s1\"\r\n\r\n" +
                body.substr(0, 20'000))
          .stall();
    if (auto range = r.header("Range"); range && r.header("If-Range") == "\"s1\"") {
      std::uint64_t from = std::stoull(std::string(range->substr(6)));
      return Script().send(
          http_response(206, body.substr(from),
                        {{"ETag", "\"s1\""},
                         {"Content-Range", "bytes " + std::to_string(from) + "-29999/30000"}}));
    }
    return Script().send(http_response(200, body, {{"ETag", "\"s1\""}}));
  });
  std::string url = server.url("/b1.dat");
  auto interrupted = [&] {
    stall = true;
    auto r = run_bin(bin_, {"-d", dir_, url}, "", SIGINT, 700);
    EXPECT_EQ(r.status, 130) << r.err;
    ASSERT_TRUE(exists(dir_ + "/b1.dat.part")) << "the 20,000 bytes in memory were dropped";
    EXPECT_EQ(read_file(dir_ + "/b1.dat.part"), body.substr(0, 20'000));
    std::string meta = read_file(dir_ + "/b1.dat.part.meta");
    EXPECT_NE(meta.find("url " + url + "\n"), std::string::npos) << meta;
    stall = false;
  };
  interrupted();
  // With -c: only the rest is asked for.
  auto resumed = uvget({"-c", "-d", dir_, url});
  EXPECT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_TRUE(read_file(dir_ + "/b1.dat") == body);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].header("Range").value_or(""), "bytes=20000-");
  ::unlink((dir_ + "/b1.dat").c_str());

  // Without -c: the leftover is ours, so the body starts over in it and lands as b1.dat.
  interrupted();
  auto again = uvget({"-d", dir_, url});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(read_file(dir_ + "/b1.dat") == body);
  EXPECT_FALSE(exists(dir_ + "/b1.dat.1"));
  EXPECT_FALSE(exists(dir_ + "/b1.dat.part"));
  EXPECT_FALSE(exists(dir_ + "/b1.dat.part.meta"));
  reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_FALSE(reqs[3].header("Range")) << "started over: no -c";
}

// The same for a large body killed outright while streaming into its .part.
TEST_F(CliTest, AKilledRunsPartIsTakenBackByAPlainReRun) {
  std::string body = pattern_bytes(1'000'000, 8);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest&) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + body.substr(0, 300'000))
          .stall();
    return Script().send(http_response(200, body));
  });
  auto killed = run_bin(bin_, {"-d", dir_, server.url("/big")}, "", SIGKILL, 700);
  EXPECT_EQ(killed.status, 128 + SIGKILL);
  ASSERT_TRUE(exists(dir_ + "/big.part"));
  auto again = uvget({"-d", dir_, server.url("/big")});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(read_file(dir_ + "/big") == body);
  EXPECT_FALSE(exists(dir_ + "/big.1"));
  EXPECT_FALSE(exists(dir_ + "/big.part"));
  EXPECT_FALSE(exists(dir_ + "/big.part.meta"));
}

// A .part that is not an earlier run's of the same URL is never taken: another program's
// (no sidecar), another URL's, and one whose writer still runs (its pid is alive). Each time
// the body goes to NAME.1 and the .part stays exactly as it was.
TEST_F(CliTest, AStrangersPartIsNeverTaken) {
  TestServer server;
  server.route("/c.dat", Script().send(http_response(200, "the body")));
  std::string url = server.url("/c.dat");
  std::string part = dir_ + "/c.dat.part", meta = part + ".meta";
  auto header = std::string("uvget-partial 1\nlength 8\n");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"no sidecar", ""},
      {"another URL", header + "url " + server.url("/other.dat") + "\npid 999999999\n"},
      {"a live writer", header + "url " + url + "\npid " + std::to_string(::getpid()) + "\n"},
  };
  for (auto& [what, sidecar] : cases) {
    { std::ofstream(part, std::ios::binary) << "someone else's"; }
    if (!sidecar.empty()) std::ofstream(meta, std::ios::binary) << sidecar;
    auto r = uvget({"-q", "-d", dir_, url});
    EXPECT_EQ(r.status, 0) << what << ": " << r.err;
    EXPECT_EQ(read_file(dir_ + "/c.dat.1"), "the body") << what;
    EXPECT_EQ(read_file(part), "someone else's") << what;
    EXPECT_FALSE(exists(dir_ + "/c.dat")) << what;
    ::unlink((dir_ + "/c.dat.1").c_str());
    ::unlink(part.c_str());
    ::unlink(meta.c_str());
  }
}

// SIGKILL mid-download, then -c: the second run asks for the rest only and the bytes match.
// With a checksum the second run hashes the .part first, and still asks for the rest only.
class CliContinueTest : public CliTest {
 protected:
  void killed_then_continued(bool with_checksum);
};

void CliContinueTest::killed_then_continued(bool with_checksum) {
  std::string body = pattern_bytes(1'000'000, 21);
  std::atomic<int> n{0};
  TestServer server([&](const RecordedRequest& r) {
    if (n++ == 0)
      return Script()
          .send("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nETag: \"e1\"\r\n\r\n" +
                body.substr(0, 300'000))
          .stall();
    auto range = r.header("Range");
    if (!range || r.header("If-Range").value_or("") != "\"e1\"")
      return Script().send(http_response(200, body, {{"ETag", "\"e1\""}}));
    std::uint64_t from = std::stoull(std::string(range->substr(6)));
    return Script().send(
        http_response(206, body.substr(from),
                      {{"ETag", "\"e1\""},
                       {"Content-Range", "bytes " + std::to_string(from) + "-999999/1000000"}}));
  });
  auto killed = run_bin(bin_, {"-d", dir_, server.url("/big")}, "", SIGKILL, 700);
  EXPECT_EQ(killed.status, 128 + SIGKILL);
  ASSERT_TRUE(exists(dir_ + "/big.part"));
  EXPECT_FALSE(exists(dir_ + "/big"));
  auto held = std::filesystem::file_size(dir_ + "/big.part");
  ASSERT_GT(held, 0u);
  EXPECT_EQ(read_file(dir_ + "/big.part"), body.substr(0, held));

  std::vector<std::string> args{"-c", "-d", dir_, "--json", "-", server.url("/big")};
  if (with_checksum) {
    args.push_back("--checksum");
    args.push_back("sha-256=" + sha256_hex(body));
  }
  auto again = uvget(args);
  EXPECT_EQ(again.status, 0) << again.err;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].header("Range").value_or(""), "bytes=" + std::to_string(held) + "-");
  EXPECT_EQ(read_file(dir_ + "/big"), body);
  EXPECT_FALSE(exists(dir_ + "/big.part"));
  EXPECT_FALSE(exists(dir_ + "/big.part.meta"));
  EXPECT_NE(again.out.find("\"resumed_from\":" + std::to_string(held)), std::string::npos)
      << again.out;
}

TEST_F(CliContinueTest, KilledThenContinuedGivesTheSameBytes) {
  killed_then_continued(false);
}

TEST_F(CliContinueTest, KilledThenContinuedWithAChecksumFetchesOnlyTheRest) {
  killed_then_continued(true);
}

// A split download killed outright (no chance to record anything as it ends) has still told
// its sidecar what each segment wrote so far: the next run with -c fetches about the rest only.
TEST_F(CliTest, AKilledSplitDownloadKeepsTheProgressOfEverySegment) {
  constexpr std::size_t kSize = 48 << 20, kSent = 11 << 20;  // four segments of 12 MiB
  std::string body = pattern_bytes(kSize, 29);
  std::atomic<bool> stall{true};
  TestServer server([&](const RecordedRequest& r) {
    RangedAnswer a = answer_ranges(r, body.size(), "\"k1\"");
    if (stall)  // the first run: each answer stops 1 MiB short of its segment's end
      return Script()
          .send(a.head + body.substr(a.from, std::min<std::size_t>(kSent, a.to - a.from)))
          .stall();
    return Script().send(a.head + body.substr(a.from, a.to - a.from));
  });
  auto killed = run_bin(bin_, {"-s", "4", "--min-split-size", "1M", "-d", dir_, server.url("/big")},
                        "", SIGKILL, 3000);
  EXPECT_EQ(killed.status, 128 + SIGKILL);
  std::string meta = read_file(dir_ + "/big.part.meta");
  ASSERT_NE(meta.find("split"), std::string::npos) << meta;
  std::size_t done_lines = 0;
  for (std::size_t at = 0; (at = meta.find("\ndone ", at)) != std::string::npos; ++at) ++done_lines;
  EXPECT_EQ(done_lines, 4u) << "a done range per segment:\n" << meta;

  stall = false;
  auto again = uvget(
      {"-c", "-s", "4", "--min-split-size", "1M", "-d", dir_, "--json", "-", server.url("/big")});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(read_file(dir_ + "/big") == body);
  // Each segment recorded at least 8 MiB of its 11: what is fetched again is under 16 MiB.
  auto at = again.out.find("\"bytes\":");
  ASSERT_NE(at, std::string::npos) << again.out;
  std::uint64_t fetched = std::stoull(again.out.substr(at + 8));
  EXPECT_LT(fetched, 16u << 20) << again.out;
  EXPECT_FALSE(exists(dir_ + "/big.part"));
  EXPECT_FALSE(exists(dir_ + "/big.part.meta"));
}

TEST_F(CliTest, SplitDownloadsOneFileOverSeveralConnections) {
  std::string body = pattern_bytes(4 << 20, 23);
  TestServer server([&](const RecordedRequest& r) { return serve_ranges(r, body, "\"x\""); });
  auto r = uvget({"-s", "3", "--min-split-size", "1M", "-d", dir_, server.url("/big")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(read_file(dir_ + "/big") == body);
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_FALSE(exists(dir_ + "/big.part"));
  EXPECT_EQ(uvget({"-s", "0", server.url("/big")}).status, 2);
  EXPECT_EQ(uvget({"--min-split-size", "lots", server.url("/big")}).status, 2);
}

TEST_F(CliTest, ContinueLeavesACompleteFileAloneAndWithoutItANewNameIsTaken) {
  std::string body = pattern_bytes(5000, 22);
  TestServer server([&](const RecordedRequest& r) {
    if (r.header("Range"))
      return Script().send(http_response(416, "", {{"Content-Range", "bytes */5000"}}));
    return Script().send(http_response(200, body));
  });
  { std::ofstream(dir_ + "/f", std::ios::binary) << body; }
  auto kept = uvget({"-c", "-d", dir_, server.url("/f")});
  EXPECT_EQ(kept.status, 0) << kept.err;
  EXPECT_FALSE(exists(dir_ + "/f.1"));
  auto fresh = uvget({"-d", dir_, server.url("/f")});
  EXPECT_EQ(fresh.status, 0) << fresh.err;
  EXPECT_EQ(read_file(dir_ + "/f.1"), body);
  EXPECT_EQ(read_file(dir_ + "/f"), body);
}

TEST_F(CliTest, HttpsNeedsTrustAndCacertOrInsecureGivesIt) {
  if (find_program("openssl").empty())
    GTEST_FAIL() << "openssl is needed (scripts/deps test installs it)";
  const auto& certs = shared_test_certs();
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); },
      TlsServerFiles{certs.good_cert, certs.good_key});
  auto refused = uvget({"-d", dir_ + "/a", server.localhost_url("/secret")});
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find(server.localhost_url("/secret") + ": TLS certificate check failed"),
            std::string::npos)
      << refused.err;
  EXPECT_FALSE(exists(dir_ + "/a/secret"));

  auto trusted =
      uvget({"-d", dir_ + "/b", "--cacert", certs.ca_cert, server.localhost_url("/secret")});
  EXPECT_EQ(trusted.status, 0) << trusted.err;
  EXPECT_EQ(read_file(dir_ + "/b/secret"), "/secret");

  auto insecure = uvget({"-d", dir_ + "/c", "-k", server.url("/secret")});
  EXPECT_EQ(insecure.status, 0) << insecure.err;
  EXPECT_NE(insecure.err.find("warning: --insecure"), std::string::npos) << insecure.err;

  auto bad_ca = uvget({"--cacert", dir_ + "/missing.pem", server.url("/x")});
  EXPECT_EQ(bad_ca.status, 2) << bad_ca.err;
  EXPECT_NE(bad_ca.err.find("missing.pem"), std::string::npos) << bad_ca.err;
}

TEST_F(CliTest, JsonReportHasOneValidRecordPerDownload) {
  TestServer server([](const RecordedRequest& r) {
    if (r.target == "/ok") return Script().send(http_response(200, "12345"));
    return Script().send(http_response(404, "no"));
  });
  std::string weird = server.url("/%22quote%5C?x=\"\\\t");  // quotes and backslashes
  auto r = uvget({"-d", dir_, "--json", dir_ + "/report.json", server.url("/ok"), server.url("/no"),
                  "not-a-url\x01\xff", weird});
  EXPECT_EQ(r.status, 1) << r.err;
  std::string json = read_file(dir_ + "/report.json");
  std::vector<std::string> lines;
  std::istringstream in(json);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << json;
  // Parsed back by a real JSON parser when python3 is there; the fields checked either way.
  if (!find_program("python3").empty()) {
    auto check = run_command({"python3", "-c",
                              "import json,sys\n"
                              "rows=[json.loads(l) for l in open(sys.argv[1])]\n"
                              "ok=[r for r in rows if r['error'] is None]\n"
                              "assert len(ok)==1 and ok[0]['bytes']==5 and ok[0]['status']==200\n"
                              "assert ok[0]['path'].endswith('/ok') and ok[0]['attempts']==1\n"
                              "assert all(set(r)>={'url','final_url','path','status','bytes',"
                              "'seconds','attempts','error'} for r in rows)\n",
                              dir_ + "/report.json"});
    EXPECT_EQ(check.exit_code, 0) << check.err << json;
  }
  EXPECT_NE(json.find("\"error\":null"), std::string::npos);
  EXPECT_NE(json.find("HTTP 404"), std::string::npos);
  EXPECT_NE(json.find("\\u0001"), std::string::npos) << "control byte escaped";
  EXPECT_NE(json.find("\\ufffd"), std::string::npos) << "invalid UTF-8 replaced";
}

TEST_F(CliTest, ShardsCoverTheListExactlyOnce) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  std::string list;
  for (int i = 0; i < 90; ++i) list += server.url("/u" + std::to_string(i)) + "\n";
  { std::ofstream(dir_ + "/list") << list; }
  std::set<std::string> seen;
  std::size_t total = 0;
  for (int k = 0; k < 3; ++k) {
    std::string out = dir_ + "/shard" + std::to_string(k);
    auto r = uvget({"-q", "-d", out, "-i", dir_ + "/list", "--shard", std::to_string(k) + "/3"});
    EXPECT_EQ(r.status, 0) << r.err;
    std::size_t here = 0;
    for (auto& e : std::filesystem::directory_iterator(out)) {
      ++here;
      seen.insert(e.path().filename().string());
    }
    EXPECT_GT(here, 10u) << "shard " << k << " got too few";
    total += here;
  }
  EXPECT_EQ(total, 90u) << "a URL was fetched twice";
  EXPECT_EQ(seen.size(), 90u) << "a URL was missed";
  EXPECT_EQ(uvget({"--shard", "3/3", "http://127.0.0.1:1/"}).status, 2);
}

TEST_F(CliTest, TimeoutBoundsAWholeDownload) {
  TestServer server;
  Script s;
  s.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  for (int i = 0; i < 100; ++i) s.pause_ms(50).send("x");
  server.route("/trickle", s);
  auto r = uvget({"-d", dir_, "--timeout", "0.5", server.url("/trickle")});
  // The trickle alone would succeed, after 5 s.
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("timed out after 500 ms"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(dir_ + "/trickle"));
}

TEST_F(CliTest, ProgressAreaInATerminalShowsCountsAndLeavesACleanSummary) {
  if (find_program("tmux").empty())
    GTEST_FAIL() << "tmux is needed (scripts/deps test installs it)";
  TestServer server([](const RecordedRequest& r) {
    return Script().pause_ms(20).send(http_response(200, pattern_bytes(2000) + r.target));
  });
  std::string list;
  for (int i = 0; i < 200; ++i) list += server.url("/p" + std::to_string(i)) + "\n";
  { std::ofstream(dir_ + "/list") << list; }
  std::string session = "uvget-test-" + std::to_string(::getpid());
  std::string cmd = bin_ + " -d " + dir_ + "/out -j 2 --per-host 2 -i " + dir_ + "/list; sleep 30";
  ASSERT_EQ(run_command({"tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "20", cmd})
                .exit_code,
            0);
  auto screen = [&] { return run_command({"tmux", "capture-pane", "-p", "-t", session}).out; };
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  std::string during = screen();
  bool finished = false;
  std::string after;
  for (int i = 0; i < 100 && !finished; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = screen();
    finished = after.find("files ok") != std::string::npos;
  }
  run_command({"tmux", "kill-session", "-t", session});
  EXPECT_NE(during.find("/200 files"), std::string::npos) << during;
  EXPECT_NE(during.find("connections"), std::string::npos) << during;
  EXPECT_NE(during.find("/s"), std::string::npos) << "a rate is shown: " << during;
  ASSERT_TRUE(finished) << after;
  EXPECT_NE(after.find("200 files ok, 0 failed"), std::string::npos) << after;
  EXPECT_EQ(after.find("/200 files"), std::string::npos) << "the status area was not cleaned up:\n"
                                                         << after;
}

// In a terminal of `columns`, a run of 200 slow files shows exactly one status line while it
// runs (a line wider than the window would wrap and leave a row behind at every redraw).
// With `resize_to`, the window is resized to that many columns halfway (SIGWINCH).
std::vector<std::string> status_rows_in_tmux(const std::string& bin, const std::string& dir,
                                             int columns, int resize_to = 0) {
  TestServer server([](const RecordedRequest& r) {
    return Script().pause_ms(20).send(http_response(200, pattern_bytes(2000) + r.target));
  });
  std::string list;
  int files = resize_to ? 600 : 200;  // still running after the resize
  for (int i = 0; i < files; ++i) list += server.url("/w" + std::to_string(i)) + "\n";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/list") << list; }
  std::string session = "uvget-width-" + std::to_string(::getpid()) + "-" + std::to_string(columns);
  std::string cmd = bin + " -d " + dir + "/out -j 2 --per-host 2 -i " + dir + "/list; sleep 30";
  EXPECT_EQ(run_command({"tmux", "new-session", "-d", "-s", session, "-x", std::to_string(columns),
                         "-y", "20", cmd})
                .exit_code,
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // 15 redraws or so
  if (resize_to) {
    EXPECT_EQ(run_command({"tmux", "resize-window", "-t", session, "-x", std::to_string(resize_to)})
                  .exit_code,
              0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  std::string screen = run_command({"tmux", "capture-pane", "-p", "-t", session}).out;
  run_command({"tmux", "kill-session", "-t", session});
  std::vector<std::string> rows;
  std::istringstream in(screen);
  for (std::string row; std::getline(in, row);)
    if (row.find_first_not_of(' ') != std::string::npos) rows.push_back(row);
  return rows;
}

TEST_F(CliTest, TheStatusLineFitsTheTerminalAt50And120Columns) {
  ASSERT_FALSE(find_program("tmux").empty()) << "tmux is needed (scripts/deps test installs it)";
  for (int columns : {50, 120}) {
    auto rows = status_rows_in_tmux(bin_, dir_ + "/" + std::to_string(columns), columns);
    ASSERT_EQ(rows.size(), 1u) << columns << " columns: " << ::testing::PrintToString(rows);
    EXPECT_TRUE(rows[0].starts_with("uvget: ")) << rows[0];
    EXPECT_NE(rows[0].find("/200 files"), std::string::npos) << rows[0];
    EXPECT_NE(rows[0].find("error"), std::string::npos) << "the errors stay: " << rows[0];
    EXPECT_LT(rows[0].size(), static_cast<std::size_t>(columns)) << rows[0];
    if (columns == 120) {
      EXPECT_NE(rows[0].find("connection"), std::string::npos) << rows[0];
    }
  }
}

// A window made narrower while it runs (tmux sends SIGWINCH): the line follows at once.
TEST_F(CliTest, TheStatusLineFollowsAResizedTerminal) {
  ASSERT_FALSE(find_program("tmux").empty()) << "tmux is needed (scripts/deps test installs it)";
  auto rows = status_rows_in_tmux(bin_, dir_ + "/resized", 120, 50);
  ASSERT_GE(rows.size(), 1u);
  // What was drawn at 120 columns may have been rewrapped by tmux; the last row is the live one.
  EXPECT_TRUE(rows.back().starts_with("uvget: ")) << ::testing::PrintToString(rows);
  EXPECT_LT(rows.back().size(), 50u) << rows.back();
  EXPECT_NE(rows.back().find("/600 files"), std::string::npos) << rows.back();
}

TEST_F(CliTest, NoLiveStatusAreaWhenStderrIsAPipe) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  auto r = uvget({"-d", dir_, server.url("/a"), server.url("/b")});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err.find("\x1b["), std::string::npos) << "terminal escapes on a pipe";
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  auto lines = uvget({"-d", dir_ + "/l", "--progress=lines", server.url("/c"), server.url("/d")});
  EXPECT_NE(lines.err.find(server.url("/c") + " -> "), std::string::npos) << lines.err;
  EXPECT_NE(lines.err.find(server.url("/d") + " -> "), std::string::npos) << lines.err;
}

// --loops: every other option behaves as with one loop.
std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// A --json record without its timing, with `dir` replaced by "DIR" and a taken name's number
// (x.7: which of the downloads named x got which number depends on the order they finish) by N.
std::string without_timing(std::string line, const std::string& dir) {
  if (auto at = line.find("\"seconds\":"); at != std::string::npos)
    line.erase(at, line.find(',', at) + 1 - at);
  for (std::size_t at; (at = line.find(dir)) != std::string::npos;)
    line.replace(at, dir.size(), "DIR");
  if (auto at = line.find("\"path\":\"DIR/x"); at != std::string::npos) {
    at += std::strlen("\"path\":\"DIR/x");
    line.replace(at, line.find('"', at) - at, ".N");
  }
  return line;
}

// Bytes of their own for every target, so a file holding another URL's body shows.
std::string body_of(const std::string& target) {
  return pattern_bytes(1000 + target.size() * 37,
                       static_cast<std::uint32_t>(std::hash<std::string>{}(target)));
}

TEST_F(CliTest, LoopsGiveTheSameFilesReportAndExitStatusAsOneLoop) {
  TestServer server([](const RecordedRequest& r) {
    if (r.target.find("missing") != std::string::npos)
      return Script().send(http_response(404, "no"));
    return Script().send(http_response(200, body_of(r.target)));
  });
  std::string list;
  for (int i = 0; i < 120; ++i) {
    // Names collide across directories: x, x.1, x.2 ... in the order the files are created.
    list +=
        server.url("/d" + std::to_string(i) + "/" + (i % 3 ? "x" : "y" + std::to_string(i))) + "\n";
    if (i % 40 == 7) list += server.url("/missing" + std::to_string(i)) + "\nnot a url\n";
  }
  std::vector<std::string> reports;
  std::vector<int> statuses;
  std::vector<std::set<std::string>> names;
  for (std::string loops : {"1", "3"}) {
    std::string out = dir_ + "/loops" + loops;
    auto r = uvget({"-q", "--loops", loops, "-j", "6", "--per-host", "6", "-d", out, "--json",
                    out + ".json", "-i", "-"},
                   list);
    statuses.push_back(r.status);
    std::string report;
    std::set<std::string> paths;
    for (auto& l : sorted_lines(read_file(out + ".json"))) {
      report += without_timing(l, out) + "\n";
      // Each URL's bytes are in the file its record names.
      std::string path = json_field(l, "path"), url = json_field(l, "url");
      if (path.empty()) continue;
      std::string target = url.substr(url.find('/', std::strlen("http://")));
      EXPECT_TRUE(read_file(path) == body_of(target)) << l;
      EXPECT_TRUE(paths.insert(path).second) << "two records name " << path;
    }
    reports.push_back(report);
    std::set<std::string> here;
    for (auto& e : std::filesystem::directory_iterator(out)) {
      here.insert(e.path().filename().string());
      std::string name = e.path().filename().string();
      EXPECT_EQ(name.find(".part"), std::string::npos) << name;
    }
    names.push_back(here);
    EXPECT_NE(r.err.find("line"), std::string::npos) << "bad lines are reported: " << r.err;
  }
  EXPECT_EQ(statuses[0], 1);
  EXPECT_EQ(statuses[1], 1);
  EXPECT_EQ(names[0].size(), 120u);
  EXPECT_EQ(names[0], names[1]);
  EXPECT_EQ(reports[0], reports[1]);
}

TEST_F(CliTest, PipelineFetchesAListOverFewConnections) {
  TestServer server([](const RecordedRequest& r) {
    return Script().pause_ms(2).send(http_response(200, body_of(r.target)));
  });
  std::string list;
  for (int i = 0; i < 150; ++i) list += server.url("/p" + std::to_string(i) + "/f") + "\n";
  std::string out = dir_ + "/pipe";
  auto r = uvget(
      {"-q", "-j", "2", "--pipeline", "4", "-d", out, "--json", out + ".json", "-i", "-"}, list);
  EXPECT_EQ(r.status, 0) << r.err;
  int records = 0;
  for (auto& l : sorted_lines(read_file(out + ".json"))) {
    std::string path = json_field(l, "path"), url = json_field(l, "url");
    std::string target = url.substr(url.find('/', std::strlen("http://")));
    EXPECT_TRUE(read_file(path) == body_of(target)) << l;
    ++records;
  }
  EXPECT_EQ(records, 150);
  EXPECT_EQ(server.accepted_connections(), 2);
  int pipelined = 0;
  for (auto& req : server.requests()) pipelined += req.pipelined;
  EXPECT_GT(pipelined, 100) << "requests were not sent behind others";
  EXPECT_EQ(uvget({"--pipeline", "0", "http://127.0.0.1:1/"}).status, 2);
}

TEST_F(CliTest, LoopsHoldThePerHostLimitTogether) {
  TestServer server(
      [](const RecordedRequest&) { return Script().pause_ms(5).send(http_response(200, "ok")); });
  std::string list;
  for (int i = 0; i < 100; ++i) list += server.url("/" + std::to_string(i)) + "\n";
  auto r =
      uvget({"-v", "--progress", "none", "--discard", "--loops", "2", "--per-host", "3", "-i", "-"},
            list);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_LE(server.peak_connections(), 3);
  EXPECT_NE(r.err.find("2 loops"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("100 files ok"), std::string::npos) << r.err;
}

TEST_F(CliTest, LoopsInterruptStopsEveryLoop) {
  TestServer server([](const RecordedRequest&) {
    return Script()
        .send("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern_bytes(100'000))
        .stall();
  });
  std::vector<std::string> args = {"-d", dir_, "--loops", "2"};
  for (int i = 0; i < 6; ++i) args.push_back(server.url("/s" + std::to_string(i)));
  auto r = run_bin(bin_, args, "", SIGINT, 700);
  EXPECT_EQ(r.status, 130) << r.err;
  for (int i = 0; i < 6; ++i) {
    std::string name = dir_ + "/s" + std::to_string(i);
    EXPECT_FALSE(exists(name));
    ASSERT_TRUE(exists(name + ".part")) << name;
    EXPECT_EQ(read_file(name + ".part"), pattern_bytes(100'000));
  }
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadLoopsIsAUsageError) {
  for (std::string bad : {"0", "x", "-1", "99999"}) {
    auto r = uvget({"--loops", bad, "http://127.0.0.1:1/"});
    EXPECT_EQ(r.status, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--loops"), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, RetriesRecoverAndAreCountedInTheReport) {
  std::atomic<int> n{0};
  TestServer server([&n](const RecordedRequest&) {
    if (n++ < 2) return Script().send(http_response(503, "busy"));
    return Script().send(http_response(200, "at last"));
  });
  auto r = uvget({"-v", "--progress", "none", "--retry-wait", "0.01", "-d", dir_, "--json",
                  dir_ + "/report.json", server.url("/f")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(dir_ + "/f"), "at last");
  EXPECT_NE(r.err.find("retrying in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("attempt 3 of 4"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir_ + "/report.json").find("\"attempts\":3"), std::string::npos)
      << read_file(dir_ + "/report.json");
}

TEST_F(CliTest, NoRetriesWhenAskedForNone) {
  TestServer server([](const RecordedRequest&) { return Script().send(http_response(503, "no")); });
  auto r = uvget({"--retries", "0", "-d", dir_, server.url("/f")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_FALSE(exists(dir_ + "/f"));
  EXPECT_FALSE(exists(dir_ + "/f.part"));
}

TEST_F(CliTest, MinSpeedTakesSuffixesAndRefusesNonsense) {
  TestServer server;
  server.route("/a", Script().send(http_response(200, "a")));
  for (std::string good : {"0", "100", "10K", "2m", "1G"}) {
    auto r = uvget({"-q", "--min-speed", good, "--discard", server.url("/a")});
    EXPECT_EQ(r.status, 0) << good << ": " << r.err;
  }
  for (std::string bad : {"x", "5KB", "-1", "K", ""}) {
    auto r = uvget({"--min-speed", bad, "--discard", server.url("/a")});
    EXPECT_EQ(r.status, 2) << bad << ": " << r.err;
  }
}

TEST_F(CliTest, ChecksumOnTheCommandLineAndInTheList) {
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body" + r.target));
  });
  auto good = uvget(
      {"-q", "-d", dir_, "--checksum", "sha-256=" + sha256_hex("body/one"), server.url("/one")});
  EXPECT_EQ(good.status, 0) << good.err;
  EXPECT_EQ(read_file(dir_ + "/one"), "body/one");
  auto bad =
      uvget({"-d", dir_, "--checksum", "sha-256=" + sha256_hex("other"), server.url("/two")});
  EXPECT_EQ(bad.status, 1) << bad.err;
  EXPECT_NE(bad.err.find("sha-256 mismatch"), std::string::npos) << bad.err;
  EXPECT_FALSE(exists(dir_ + "/two"));
  EXPECT_FALSE(exists(dir_ + "/two.part"));
  std::string list = server.url("/three") + "\tsha-256=" + sha256_hex("body/three") + "\n" +
                     server.url("/four") + "\tsha-256=" + sha256_hex("nope") + "\n" +
                     server.url("/five") + "\n";
  auto r = uvget({"-d", dir_, "-i", "-"}, list);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(read_file(dir_ + "/three"), "body/three");
  EXPECT_FALSE(exists(dir_ + "/four"));
  EXPECT_EQ(read_file(dir_ + "/five"), "body/five");
  auto usage = uvget({"--checksum", "sha-256=00", server.url("/a"), server.url("/b")});
  EXPECT_EQ(usage.status, 2) << usage.err;
  auto malformed = uvget({"-d", dir_, "--checksum", "sha-256=00", server.url("/a")});
  EXPECT_EQ(malformed.status, 1) << malformed.err;
  EXPECT_NE(malformed.err.find("bad checksum"), std::string::npos) << malformed.err;
}

TEST_F(CliTest, AFileTheDiskCannotHoldFailsAloneWithAClearMessage) {
  TestServer server;
  std::string big = pattern_bytes(3'000'000, 21), small = pattern_bytes(20'000, 22);
  server.route("/big", Script().send(http_response(200, big)));
  server.route("/small1", Script().send(http_response(200, small)));
  server.route("/small2", Script().send(http_response(200, small)));
  // Files may not grow past 1 MB here: the big one fails like on a full disk, the rest land.
  auto r = run_bin(bin_,
                   {"--retries", "0", "-d", dir_, server.url("/small1"), server.url("/big"),
                    server.url("/small2")},
                   "", 0, 0, 1'000'000);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(server.url("/big")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("EFBIG"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(dir_ + "/big"));
  EXPECT_FALSE(exists(dir_ + "/big.part"));
  EXPECT_EQ(read_file(dir_ + "/small1"), small);
  EXPECT_EQ(read_file(dir_ + "/small2"), small);
  EXPECT_NE(r.err.find("2 files ok, 1 failed"), std::string::npos) << r.err;
}

// A real full disk: a 1 MiB tmpfs (root only; mount(2) is not allowed otherwise).
TEST_F(CliTest, AFullDiskFailsTheFileThatDoesNotFitAndTheRestLand) {
  std::string mnt = dir_ + "/small-disk";
  std::filesystem::create_directory(mnt);
  if (geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_FAIL() << "cannot mount a small tmpfs here (the test needs root, as CI has)";
  std::string big = pattern_bytes(3'000'000, 24), small = pattern_bytes(20'000, 25);
  TestServer server([&](const RecordedRequest& r) {
    if (r.target == "/chunked")  // no length known: the disk fills while writing
      return Script().send(
          chunked_response(200, {big.substr(0, 1'500'000), big.substr(1'500'000)}));
    return serve_ranges(r, r.target.starts_with("/big") ? big : small, "\"d\"");
  });
  auto r = uvget({"--retries", "0", "-j", "1", "-d", mnt, server.url("/small1"), server.url("/big"),
                  server.url("/chunked")});
  EXPECT_EQ(r.status, 1) << r.err;
  // A known length is reserved when the file opens: the disk is full before a byte is written.
  EXPECT_NE(r.err.find(server.url("/big") + ": cannot allocate"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(server.url("/chunked") + ": cannot write"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ENOSPC"), std::string::npos) << r.err;
  for (auto name : {"/big", "/big.part", "/chunked", "/chunked.part"})
    EXPECT_FALSE(exists(mnt + name)) << name;
  EXPECT_EQ(read_file(mnt + "/small1"), small);
  // In a later run: within one, a file downloaded while the failing one still flushes its
  // buffers into the last free bytes would find the disk full (the disk is, at that moment).
  auto later = uvget({"--retries", "0", "-d", mnt, server.url("/small2")});
  EXPECT_EQ(later.status, 0) << later.err;
  EXPECT_EQ(read_file(mnt + "/small2"), small) << "the space of the failed file was given back";
  // A split download asks for the whole size first, and learns at once that it does not fit.
  auto split = uvget(
      {"--retries", "0", "-s", "4", "--min-split-size", "1M", "-d", mnt, server.url("/big2")});
  EXPECT_EQ(split.status, 1) << split.err;
  EXPECT_NE(split.err.find("cannot allocate"), std::string::npos) << split.err;
  EXPECT_NE(split.err.find("ENOSPC"), std::string::npos) << split.err;
  EXPECT_FALSE(exists(mnt + "/big2"));
  EXPECT_FALSE(exists(mnt + "/big2.part"));
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_F(CliTest, AReadOnlyFileSystemFailsEachDownloadClearly) {
  std::string mnt = dir_ + "/ro-disk";
  std::filesystem::create_directory(mnt);
  if (geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", MS_RDONLY, "size=1m") != 0)
    GTEST_FAIL() << "cannot mount a read-only tmpfs here (the test needs root, as CI has)";
  TestServer server;
  server.route("/a", Script().send(http_response(200, "small")));
  server.route("/b", Script().send(http_response(200, pattern_bytes(200'000, 27))));
  auto r = uvget({"--retries", "0", "-d", mnt, server.url("/a"), server.url("/b")});
  EXPECT_EQ(r.status, 1) << r.err;
  for (auto t : {"/a", "/b"}) {
    EXPECT_NE(r.err.find(server.url(t) + ": cannot open"), std::string::npos) << r.err;
  }
  EXPECT_NE(r.err.find("EROFS"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0 files ok, 2 failed"), std::string::npos) << r.err;
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_F(CliTest, APathTooLongIsReportedAndNothingIsLeft) {
  TestServer server;
  server.route("/a", Script().send(http_response(200, pattern_bytes(100'000, 26))));
  std::string name(300, 'n');  // over NAME_MAX (255)
  auto r = uvget({"--retries", "0", "-o", dir_ + "/" + name, server.url("/a")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(server.url("/a") + ": cannot open"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ENAMETOOLONG"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(CliTest, AnUnwritableDirectoryFailsEachDownloadClearly) {
  if (geteuid() == 0) {
    // root ignores directory permissions: use a path under a regular file instead (ENOTDIR).
    { std::ofstream(dir_ + "/plain") << "x"; }
    TestServer server;
    server.route("/a", Script().send(http_response(200, "a")));
    auto r = uvget({"-d", dir_ + "/plain/sub", server.url("/a")});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("cannot create directory"), std::string::npos) << r.err;
    return;
  }
  std::filesystem::create_directory(dir_ + "/ro");
  std::filesystem::permissions(
      dir_ + "/ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  TestServer server;
  server.route("/a", Script().send(http_response(200, "a")));
  auto r = uvget({"-d", dir_ + "/ro", server.url("/a")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("EACCES"), std::string::npos) << r.err;
  std::filesystem::permissions(dir_ + "/ro", std::filesystem::perms::owner_all);
}

TEST_F(CliTest, MoreConnectionsThanOpenFilesAllowIsCappedWithAWarning) {
  if (find_program("prlimit").empty())
    GTEST_FAIL() << "prlimit is needed (scripts/deps test installs it)";
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, "body of " + r.target));
  });
  std::string list;
  for (int i = 0; i < 50; ++i) list += server.url("/f" + std::to_string(i)) + "\n";
  auto r = run_command({"prlimit", "--nofile=100:100", bin_, "-j", "500", "-d", dir_, "-i", "-"},
                       list, 30'000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("-j 500 needs up to 1064 open files and the limit is 100: using -j 18"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read_file(dir_ + "/f49"), "body of /f49");
}

TEST_F(CliTest, AMissingInputFileIsReportedAndNothingLeaks) {
  auto r = uvget({"-d", dir_, "-i", dir_ + "/no-such-list"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("cannot open input file"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

TEST_F(CliTest, EmbedExampleRunsInAHostLoop) {
  const char* embed = std::getenv("UVGET_EMBED_BIN");
  ASSERT_NE(embed, nullptr);
  TestServer server([](const RecordedRequest& r) {
    return Script().pause_ms(50).send(http_response(200, r.target));
  });
  auto r = run_bin(embed, {server.url("/e1"), server.url("/e2"), server.url("/e3")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 ok, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loop closed cleanly"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace uvget::test
