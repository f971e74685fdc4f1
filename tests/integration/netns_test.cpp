// Tests of the private network namespace helpers: inside it lo is up, DnsTestServer can take
// 127.0.0.1:53, and glibc's own resolver follows a bind-mounted /etc/resolv.conf and /etc/hosts
// there, which the host never sees. Needs root: without it the run fails and says why.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/dns_server.hpp"
#include "support/netns.hpp"

namespace uvget::test {
namespace {

constexpr int kRecvTimeoutMs = 5000;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The IPv4 addresses getaddrinfo() gives for `name`, or the error text.
std::vector<std::string> resolve_v4(const std::string& name, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(name.c_str(), nullptr, &hints, &result);
  std::vector<std::string> out;
  if (rc != 0) {
    *error = gai_strerror(rc);
    return out;
  }
  for (addrinfo* ai = result; ai; ai = ai->ai_next) {
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text, sizeof text);
    out.emplace_back(text);
  }
  freeaddrinfo(result);
  return out;
}

// Bind-mounts a file holding `content` over `target`; the temp file goes when the test ends (the
// mount keeps its inode).
void bind_content_over(const std::string& content, const std::string& target) {
  std::string file = write_temp_file(content);
  std::string why;
  bool ok = bind_over(file, target, &why);
  unlink(file.c_str());
  ASSERT_TRUE(ok) << why;
  ASSERT_EQ(read_file(target), content);
}

TEST(PrivateNetworkNamespace, LoopbackIsUpInside) {
  ASSERT_TRUE(in_private_netns());
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  ASSERT_EQ(inet_pton(AF_INET, "127.0.0.5", &addr.sin_addr), 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0)
      << std::strerror(errno);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const char ping[] = "ping";
  ASSERT_EQ(sendto(fd, ping, 4, 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 4)
      << std::strerror(errno);
  pollfd pfd{fd, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, kRecvTimeoutMs), 1) << "the datagram to 127.0.0.5 never came back";
  char buf[8];
  EXPECT_EQ(recv(fd, buf, sizeof buf, 0), 4);
  close(fd);
}

TEST(PrivateNetworkNamespace, GetaddrinfoAsksOurServerThroughABindMountedResolvConf) {
  DnsServerOptions options;
  options.port = 53;  // only inside the namespace: the host's port 53 is not ours
  options.zone = "crawl.test";
  DnsTestServer server(options);
  ASSERT_EQ(server.port(), 53);
  ASSERT_NO_FATAL_FAILURE(bind_content_over("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n",
                                            "/etc/resolv.conf"));
  std::string error;
  std::vector<std::string> addresses = resolve_v4("Seen.Crawl.Test", &error);
  ASSERT_EQ(addresses.size(), 1u) << error;
  EXPECT_EQ(addresses[0], DnsTestServer::address_for("seen.crawl.test"));
  EXPECT_GE(server.queries("seen.crawl.test", DnsTestServer::kTypeA), 1);
  // A name the server says does not exist does not resolve.
  server.set_behavior("gone.crawl.test", DnsBehavior::kNxdomain);
  EXPECT_TRUE(resolve_v4("gone.crawl.test", &error).empty());
  EXPECT_GE(server.queries("gone.crawl.test", DnsTestServer::kTypeA), 1);
}

TEST(PrivateNetworkNamespace, GetaddrinfoReadsABindMountedEtcHosts) {
  ASSERT_NO_FATAL_FAILURE(bind_content_over("127.0.0.9 pinned.example\n", "/etc/hosts"));
  std::string error;
  std::vector<std::string> addresses = resolve_v4("pinned.example", &error);
  ASSERT_FALSE(addresses.empty()) << error;
  EXPECT_EQ(addresses[0], "127.0.0.9");
}

}  // namespace
}  // namespace uvget::test

int main(int argc, char** argv) {
  return uvget::test::netns_test_main(argc, argv);
}
