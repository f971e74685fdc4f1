// Smoke tests of the test-support servers (TestServer, BlackholeListener, Nginx), driven by a tiny
// blocking POSIX-socket client rather than by uvget.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

constexpr int kRecvTimeoutMs = 5000;
constexpr std::string_view kGetX = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Blocking client on 127.0.0.1 with a receive timeout.
class BlockingClient {
 public:
  explicit BlockingClient(uint16_t port, int recv_timeout_ms = kRecvTimeoutMs) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval tv{recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr = loopback(port);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) close();
  }
  ~BlockingClient() { close(); }
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  bool connected() const { return fd_ >= 0; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One recv into the buffer: > 0 bytes, 0 at EOF, -1 with errno (EAGAIN on timeout).
  ssize_t recv_more() {
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) buffer_.append(buf, static_cast<std::size_t>(n));
    return n;
  }

  // One response: the head, then Content-Length bytes or chunks up to the 0 chunk. Empty on
  // error or EOF before the response is complete.
  std::string read_response() {
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (recv_more() <= 0) return {};
    }
    head_end += 4;
    std::string head = lower(std::string_view(buffer_).substr(0, head_end));
    std::size_t total = std::string::npos;
    if (std::size_t at = head.find("\r\ncontent-length:"); at != std::string::npos) {
      total = head_end + std::stoul(head.substr(at + 17));
    }
    bool chunked = head.find("transfer-encoding: chunked") != std::string::npos;
    while (true) {
      if (total != std::string::npos && buffer_.size() >= total) break;
      if (chunked && buffer_.size() >= head_end + 5 &&
          std::string_view(buffer_).substr(buffer_.size() - 5) == "0\r\n\r\n") {
        total = buffer_.size();
        break;
      }
      if (recv_more() <= 0) return {};
    }
    std::string response = buffer_.substr(0, total);
    buffer_.erase(0, total);
    return response;
  }

  // Reads until EOF (*err = 0) or an error (*err = errno).
  std::string read_until_close(int* err) {
    ssize_t n;
    while ((n = recv_more()) > 0) {
    }
    *err = n == 0 ? 0 : errno;
    std::string out = std::move(buffer_);
    buffer_.clear();
    return out;
  }

  std::string& buffer() { return buffer_; }

 private:
  int fd_ = -1;
  std::string buffer_;
};

std::string body_of(const std::string& response) {
  std::size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

struct TempDir {
  std::string path = make_temp_dir("uvget-test-");
  ~TempDir() { remove_tree(path); }
};

// ---- TestServer ------------------------------------------------------------------------------

TEST(TestServerTest, ServesRoutedScriptAndRecordsRequest) {
  TestServer server;
  const std::string response = http_response(200, "hello", {{"X-Test", "1"}});
  EXPECT_EQ(response, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: 1\r\n\r\nhello");
  server.route("/x", Script().send(response));
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.url("/x"), "http://127.0.0.1:" + std::to_string(server.port()) + "/x");

  BlockingClient client(server.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send_all(kGetX));
  EXPECT_EQ(client.read_response(), response);

  std::vector<RecordedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/x");
  EXPECT_EQ(requests[0].version, "HTTP/1.1");
  EXPECT_EQ(requests[0].raw, kGetX);
  ASSERT_EQ(requests[0].headers.size(), 1u);
  EXPECT_EQ(requests[0].headers[0].first, "Host");
  EXPECT_EQ(requests[0].header("hOsT"), "a");
  EXPECT_FALSE(requests[0].header("Range").has_value());
  EXPECT_EQ(requests[0].connection_id, 1);
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_EQ(server.current_connections(), 1);  // keep-alive: still open
  EXPECT_EQ(server.peak_connections(), 1);

  client.close();
  EXPECT_TRUE(server.wait_for_current_connections(0, 2000));
  EXPECT_EQ(server.accepted_connections(), 1);
}

TEST(TestServerTest, KeepAliveSecondRequestOnSameConnection) {
  TestServer server;
  server.route("/x", Script().send(http_response(200, "one")));
  BlockingClient client(server.port());
  ASSERT_TRUE(client.send_all(kGetX));
  EXPECT_EQ(body_of(client.read_response()), "one");
  ASSERT_TRUE(client.send_all("GET /unrouted?q=1 HTTP/1.1\r\nHost: a\r\nX-A:  b \r\n\r\n"));
  std::string second = client.read_response();
  EXPECT_EQ(second.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << second;  // default handler

  std::vector<RecordedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].target, "/unrouted?q=1");
  EXPECT_EQ(requests[1].header("x-a"), "b");
  EXPECT_EQ(requests[1].connection_id, 1);
  EXPECT_EQ(requests[1].index_on_connection, 1);
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_EQ(server.peak_connections(), 1);
}

TEST(TestServerTest, PipelinedRequestWaitsForTheRunningScript) {
  TestServer server;
  server.route(
      "/slow",
      Script().send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl").pause_ms(100).send("ow"));
  server.route("/x", Script().send(http_response(200, "fast")));
  BlockingClient client(server.port());
  ASSERT_TRUE(client.send_all("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" + std::string(kGetX)));
  EXPECT_EQ(body_of(client.read_response()), "slow");
  EXPECT_EQ(body_of(client.read_response()), "fast");
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(TestServerTest, PauseThenGracefulClose) {
  TestServer server;
  server.route("/x", Script().send("HTTP/1.1 200 OK\r\n\r\nab").pause_ms(150).send("cd").close());
  BlockingClient client(server.port());
  ASSERT_TRUE(client.send_all(kGetX));
  int err = -1;
  EXPECT_EQ(client.read_until_close(&err), "HTTP/1.1 200 OK\r\n\r\nabcd");
  EXPECT_EQ(err, 0);  // FIN, not RST
  client.close();
  EXPECT_TRUE(server.wait_for_current_connections(0, 2000));
}

// The steps after a pause wait for its end: a server destroyed during a long pause never sends
// them.
TEST(TestServerTest, StepsAfterAPauseWaitForItsEnd) {
  auto server = std::make_unique<TestServer>();
  const std::string before = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab";
  server->route("/x", Script().send(before).pause_ms(600'000).send("cd"));
  BlockingClient client(server->port());
  ASSERT_TRUE(client.send_all(kGetX));
  while (client.buffer().size() < before.size() && client.recv_more() > 0) {
  }
  EXPECT_EQ(client.buffer(), before);
  server.reset();  // mid-pause
  int err = -1;
  EXPECT_EQ(client.read_until_close(&err), before) << "sent before the pause was over";
  EXPECT_EQ(err, 0);
}

// A script held by await_requests(n) goes on once the server has its n-th request, from any
// connection.
TEST(TestServerTest, AwaitRequestsHoldsAScriptUntilAnotherRequestArrives) {
  TestServer server;
  const std::string before = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab";
  server.route("/x", Script().send(before).await_requests(2).send("cd"));
  server.route("/y", Script().send(http_response(200, "y")));
  BlockingClient first(server.port());
  ASSERT_TRUE(first.send_all(kGetX));
  while (first.buffer().size() < before.size() && first.recv_more() > 0) {
  }
  EXPECT_EQ(first.buffer(), before);
  BlockingClient second(server.port());
  ASSERT_TRUE(second.send_all("GET /y HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(body_of(second.read_response()), "y");
  EXPECT_EQ(body_of(first.read_response()), "abcd");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/x");
  EXPECT_EQ(requests[1].target, "/y");
}

TEST(TestServerTest, ResetGivesEconnreset) {
  TestServer server;
  server.route("/x", Script().reset());
  BlockingClient client(server.port());
  ASSERT_TRUE(client.send_all(kGetX));
  int err = 0;
  EXPECT_EQ(client.read_until_close(&err), "");
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_TRUE(server.wait_for_current_connections(0, 2000));
}

TEST(TestServerTest, StalledConnectionIsClosedByDestructor) {
  auto server = std::make_unique<TestServer>();
  const std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
  server->route("/x", Script().send(partial).stall());
  BlockingClient client(server->port(), 300);
  ASSERT_TRUE(client.send_all(kGetX));
  while (client.buffer().size() < partial.size() && client.recv_more() > 0) {
  }
  EXPECT_EQ(client.buffer(), partial);
  errno = 0;
  EXPECT_EQ(client.recv_more(), -1);  // nothing more within the 300 ms timeout
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  EXPECT_EQ(server->current_connections(), 1);

  server.reset();                    // does not wait for the stalled script
  EXPECT_EQ(client.recv_more(), 0);  // the destructor closed it
}

TEST(TestServerTest, DestructorCancelsPendingWrite) {
  auto server = std::make_unique<TestServer>();
  server->route("/x", Script().send(pattern_bytes(16 << 20)).send("never sent"));
  BlockingClient client(server->port());
  ASSERT_TRUE(client.send_all(kGetX));  // and never read: the write stays pending
  ASSERT_TRUE(server->wait_for_requests(1, 2000));
  server.reset();
}

TEST(TestServerTest, PeerHangupDuringScriptIsHarmless) {
  TestServer server;
  // Writes after the client is gone meet RST, then EPIPE: no SIGPIPE may kill the process.
  server.route("/x", Script().pause_ms(30).send("a").pause_ms(30).send("b").pause_ms(30).send("c"));
  {
    BlockingClient client(server.port());
    ASSERT_TRUE(client.send_all(kGetX));
    ASSERT_TRUE(server.wait_for_requests(1, 2000));
  }
  EXPECT_TRUE(server.wait_for_current_connections(0, 2000));
}

TEST(TestServerTest, HandlerAndChunkedResponse) {
  TestServer server([](const RecordedRequest& request) {
    return Script().send(chunked_response(200, {"ab", "", "cdef"}, {{"X-Target", request.target}}));
  });
  BlockingClient client(server.port());
  ASSERT_TRUE(client.send_all("GET /h?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(client.read_response(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Target: /h?q=1\r\n\r\n"
            "2\r\nab\r\n4\r\ncdef\r\n0\r\n\r\n");

  server.set_handler([](const RecordedRequest&) { return Script().send(http_response(204, "")); });
  ASSERT_TRUE(client.send_all(kGetX));
  std::string no_content;
  while (no_content.find("\r\n\r\n") == std::string::npos && client.recv_more() > 0) {
    no_content = client.buffer();
  }
  EXPECT_EQ(no_content, "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(TestServerTest, CountsConcurrentConnections) {
  TestServer server;
  {
    BlockingClient a(server.port()), b(server.port()), c(server.port());
    for (BlockingClient* client : {&a, &b, &c}) ASSERT_TRUE(client->send_all(kGetX));
    ASSERT_TRUE(server.wait_for_requests(3, 2000));
    EXPECT_EQ(server.accepted_connections(), 3);
    EXPECT_EQ(server.current_connections(), 3);
    EXPECT_EQ(server.peak_connections(), 3);
    std::set<int> ids;
    for (const RecordedRequest& request : server.requests()) ids.insert(request.connection_id);
    EXPECT_EQ(ids, (std::set<int>{1, 2, 3}));
  }
  EXPECT_TRUE(server.wait_for_current_connections(0, 2000));
  EXPECT_EQ(server.peak_connections(), 3);
  EXPECT_FALSE(server.wait_for_requests(4, 50));
}

TEST(TestServerTest, OversizedRequestHeadClosesConnection) {
  TestServer server;
  BlockingClient client(server.port());
  std::string head = "GET /x HTTP/1.1\r\n";
  while (head.size() < 70 * 1024) head += "X-Pad: " + std::string(100, 'p') + "\r\n";
  ASSERT_TRUE(client.send_all(head));
  int err = -1;
  EXPECT_EQ(client.read_until_close(&err), "");
  EXPECT_TRUE(err == 0 || err == ECONNRESET) << err;
  EXPECT_TRUE(server.requests().empty());
}

TEST(TestServerTest, PatternBytesAreDeterministic) {
  const std::string a = pattern_bytes(10000, 3);
  EXPECT_EQ(a.size(), 10000u);
  EXPECT_EQ(a, pattern_bytes(10000, 3));
  EXPECT_EQ(pattern_bytes(777, 3), a.substr(0, 777));  // prefix property
  EXPECT_NE(a, pattern_bytes(10000, 4));
  EXPECT_NE(pattern_bytes(64), pattern_bytes(64, 1));
  EXPECT_TRUE(std::all_of(a.begin(), a.end(),
                          [](char c) { return std::isprint(static_cast<unsigned char>(c)) != 0; }));
  EXPECT_GT(std::set<char>(a.begin(), a.end()).size(), 32u);
  EXPECT_EQ(pattern_bytes(0), "");
}

// ---- BlackholeListener -----------------------------------------------------------------------

TEST(BlackholeListenerTest, ConnectDoesNotComplete) {
  BlackholeListener blackhole;
  ASSERT_NE(blackhole.port(), 0);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr = loopback(blackhole.port());
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(errno, EINPROGRESS);
  pollfd pfd{fd, POLLOUT, 0};
  EXPECT_EQ(::poll(&pfd, 1, 500), 0) << "connect completed (revents " << pfd.revents << ")";
  ::close(fd);
}

// ---- Nginx -----------------------------------------------------------------------------------

TEST(NginxTest, ServesFileFromTempDir) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  TempDir root;
  const std::string content = pattern_bytes(300000, 7);
  {
    std::ofstream out(root.path + "/f.bin", std::ios::binary);
    out << content;
  }
  uint16_t port = 0;
  {
    Nginx nginx(root.path, "location = /hello { return 200 \"hi\"; }");
    ASSERT_TRUE(nginx.ok()) << nginx.error();
    port = nginx.port();
    EXPECT_EQ(nginx.url("/f.bin"), "http://127.0.0.1:" + std::to_string(port) + "/f.bin");

    BlockingClient client(port);
    ASSERT_TRUE(client.send_all("GET /f.bin HTTP/1.1\r\nHost: a\r\n\r\n"));
    std::string response = client.read_response();
    EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response.substr(0, 200);
    EXPECT_TRUE(body_of(response) == content) << "body differs, " << body_of(response).size();
    ASSERT_TRUE(client.send_all("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));  // keep-alive
    EXPECT_EQ(body_of(client.read_response()), "hi");
  }
  BlockingClient after(port);
  EXPECT_FALSE(after.connected()) << "nginx still listening after destruction";
}

TEST(NginxTest, ReportsConfigError) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  TempDir root;
  Nginx nginx(root.path, "no_such_directive_here on;");
  EXPECT_FALSE(nginx.ok());
  EXPECT_NE(nginx.error().find("no_such_directive_here"), std::string::npos) << nginx.error();
}

}  // namespace
}  // namespace uvget::test
