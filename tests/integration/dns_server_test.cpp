// Tests of DnsTestServer, queried with hand-built DNS packets over blocking POSIX sockets on
// 127.0.0.1 (no resolver library in the way, so the wire format itself is what is checked). Plus
// the one netns helper check that must run outside a namespace: bind_over refuses there.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/dns_server.hpp"
#include "support/netns.hpp"

namespace uvget::test {
namespace {

constexpr int kRecvTimeoutMs = 5000;
constexpr int kSilenceMs = 300;
constexpr uint16_t kA = DnsTestServer::kTypeA;
constexpr uint16_t kAaaa = DnsTestServer::kTypeAaaa;

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

uint16_t get16(std::string_view s, std::size_t at) {
  return static_cast<uint16_t>((static_cast<unsigned char>(s.at(at)) << 8) |
                               static_cast<unsigned char>(s.at(at + 1)));
}

uint32_t get32(std::string_view s, std::size_t at) {
  return (static_cast<uint32_t>(get16(s, at)) << 16) | get16(s, at + 2);
}

std::string encode_name(std::string_view name) {
  std::string out;
  while (!name.empty()) {
    std::size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    out.push_back(static_cast<char>(label.size()));
    out += label;
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  }
  out.push_back('\0');
  return out;
}

// A standard query with RD set, one question, class IN; with `edns`, an OPT record too.
std::string make_query(uint16_t id, std::string_view name, uint16_t type, bool edns = false) {
  std::string q;
  put16(q, id);
  put16(q, 0x0100);  // RD
  put16(q, 1);
  put16(q, 0);
  put16(q, 0);
  put16(q, edns ? 1 : 0);
  q += encode_name(name);
  put16(q, type);
  put16(q, 1);
  if (edns) {
    q.push_back('\0');
    put16(q, 41);    // OPT
    put16(q, 4096);  // payload size
    put16(q, 0);
    put16(q, 0);
    put16(q, 0);  // rdlength
  }
  return q;
}

struct Record {
  uint16_t name = 0;  // the compression pointer the server uses
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  std::string rdata;
};

struct Answer {
  uint16_t id = 0;
  uint16_t flags = 0;
  int rcode = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  std::string qname_wire;
  uint16_t qtype = 0, qclass = 0;
  std::vector<Record> records;  // answers, then additional records (OPT)

  bool qr() const { return flags & 0x8000; }
  bool aa() const { return flags & 0x0400; }
  bool tc() const { return flags & 0x0200; }
  bool rd() const { return flags & 0x0100; }
  bool ra() const { return flags & 0x0080; }
};

// Parses what this server sends: an uncompressed question, then records named by a pointer
// (or the root name, for OPT). Throws std::out_of_range on anything shorter.
Answer parse_answer(std::string_view m) {
  Answer a;
  a.id = get16(m, 0);
  a.flags = get16(m, 2);
  a.rcode = a.flags & 0xF;
  a.qdcount = get16(m, 4);
  a.ancount = get16(m, 6);
  a.nscount = get16(m, 8);
  a.arcount = get16(m, 10);
  std::size_t pos = 12;
  if (a.qdcount == 1) {
    std::size_t start = pos;
    while (m.at(pos) != 0) pos += 1 + static_cast<unsigned char>(m.at(pos));
    ++pos;
    a.qname_wire = std::string(m.substr(start, pos - start));
    a.qtype = get16(m, pos);
    a.qclass = get16(m, pos + 2);
    pos += 4;
  }
  for (int i = 0; i < a.ancount + a.arcount; ++i) {
    Record r;
    if (m.at(pos) == 0) {
      ++pos;
    } else {
      r.name = get16(m, pos);
      pos += 2;
    }
    r.type = get16(m, pos);
    r.klass = get16(m, pos + 2);
    r.ttl = get32(m, pos + 4);
    uint16_t len = get16(m, pos + 8);
    pos += 10;
    r.rdata = std::string(m.substr(pos, len));
    if (r.rdata.size() != len) throw std::out_of_range("rdata");
    pos += len;
    a.records.push_back(r);
  }
  if (pos != m.size()) throw std::out_of_range("bytes after the last record");
  return a;
}

std::string ipv4_bytes(const std::string& text) {
  std::string b(4, '\0');
  EXPECT_EQ(inet_pton(AF_INET, text.c_str(), b.data()), 1) << text;
  return b;
}

std::string ipv6_bytes(const std::string& text) {
  std::string b(16, '\0');
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), b.data()), 1) << text;
  return b;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A UDP socket connected to the server, so only the server's datagrams reach it.
class UdpClient {
 public:
  explicit UdpClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    // Room for thousands of answers queued while the test is still sending.
    int bytes = 4 << 20;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
    sockaddr_in addr = loopback(port);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect");
    }
  }
  ~UdpClient() { close(fd_); }
  UdpClient(const UdpClient&) = delete;
  UdpClient& operator=(const UdpClient&) = delete;

  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  }

  // The next datagram, or nullopt after `timeout_ms` without one (0: only one already there).
  std::optional<std::string> receive(int timeout_ms = kRecvTimeoutMs) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return std::nullopt;
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

  Answer ask(uint16_t id, std::string_view name, uint16_t type, bool edns = false) {
    send(make_query(id, name, type, edns));
    std::optional<std::string> reply = receive();
    if (!reply) throw std::runtime_error("no answer for " + std::string(name));
    return parse_answer(*reply);
  }

 private:
  int fd_ = -1;
};

// A blocking TCP connection to the server, speaking length-prefixed messages.
class TcpClient {
 public:
  explicit TcpClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_in addr = loopback(port);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect");
    }
  }
  ~TcpClient() { close(fd_); }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  void send_raw(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  static std::string framed(std::string_view message) {
    std::string out;
    put16(out, static_cast<uint16_t>(message.size()));
    out += message;
    return out;
  }

  void shut_down_writing() { ASSERT_EQ(shutdown(fd_, SHUT_WR), 0); }

  // Whether the server closed the connection (EOF, or a reset) with nothing more to read.
  bool at_eof() {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, kRecvTimeoutMs) <= 0) return false;
    char c;
    return recv(fd_, &c, 1, 0) <= 0;
  }

  // One length-prefixed message; throws after kRecvTimeoutMs or at EOF.
  std::string receive() {
    std::string len = read_exactly(2);
    return read_exactly(get16(len, 0));
  }

 private:
  std::string read_exactly(std::size_t n) {
    std::string out;
    while (out.size() < n) {
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, kRecvTimeoutMs) <= 0) throw std::runtime_error("tcp: timed out");
      char buf[4096];
      ssize_t got = recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) throw std::runtime_error("tcp: connection closed");
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }

  int fd_ = -1;
};

DnsServerOptions zone_options() {
  DnsServerOptions o;
  o.zone = "crawl.test";
  o.ttl = 77;
  return o;
}

TEST(DnsTestServer, ASyntheticNameIsAnsweredWithItsDerivedAddressAndTheTtl) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  Answer a = client.ask(0x1234, "Host1.Crawl.Test", kA);
  EXPECT_EQ(a.id, 0x1234);
  EXPECT_TRUE(a.qr());
  EXPECT_TRUE(a.aa());
  EXPECT_TRUE(a.rd()) << "RD is copied from the query";
  EXPECT_FALSE(a.ra());
  EXPECT_FALSE(a.tc());
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.qdcount, 1);
  EXPECT_EQ(a.qname_wire, encode_name("Host1.Crawl.Test")) << "the question is echoed as sent";
  EXPECT_EQ(a.qtype, kA);
  EXPECT_EQ(a.qclass, 1);
  ASSERT_EQ(a.ancount, 1);
  EXPECT_EQ(a.records[0].name, 0xC00C);
  EXPECT_EQ(a.records[0].type, kA);
  EXPECT_EQ(a.records[0].klass, 1);
  EXPECT_EQ(a.records[0].ttl, 77u);
  EXPECT_EQ(a.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("host1.crawl.test")));
  // Names of several labels below the zone are in it too.
  Answer deep = client.ask(2, "a.b.c.crawl.test", kA);
  ASSERT_EQ(deep.ancount, 1);
  EXPECT_EQ(deep.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("a.b.c.crawl.test")));
}

TEST(DnsTestServer, AddressForIsDeterministicAndNeverANetworkOrBroadcastAddress) {
  EXPECT_EQ(DnsTestServer::address_for("x.crawl.test"),
            DnsTestServer::address_for("X.CRAWL.TEST."));
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    std::string address = DnsTestServer::address_for("n" + std::to_string(i) + ".crawl.test");
    seen.insert(address);
    in_addr addr{};
    ASSERT_EQ(inet_pton(AF_INET, address.c_str(), &addr), 1) << address;
    uint32_t host = ntohl(addr.s_addr);
    EXPECT_EQ(host >> 24, 127u) << address;
    EXPECT_NE(host & 0xff, 0u) << address;
    EXPECT_NE(host & 0xff, 255u) << address;
  }
  EXPECT_GT(seen.size(), 4900u) << "the hash spreads names over 127.0.0.0/8";
}

TEST(DnsTestServer, AaaaForASyntheticNameIsNoDataByDefault) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  Answer a = client.ask(7, "v6.crawl.test", kAaaa);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.ancount, 0);
  EXPECT_EQ(a.qtype, kAaaa);
}

TEST(DnsTestServer, AaaaForASyntheticNameIsLoopbackWithAaaaLoopback) {
  DnsServerOptions options = zone_options();
  options.aaaa_loopback = true;
  DnsTestServer server(options);
  UdpClient client(server.port());
  Answer a = client.ask(7, "v6.crawl.test", kAaaa);
  EXPECT_EQ(a.rcode, 0);
  ASSERT_EQ(a.ancount, 1);
  EXPECT_EQ(a.records[0].type, kAaaa);
  EXPECT_EQ(a.records[0].ttl, 77u);
  EXPECT_EQ(a.records[0].rdata, ipv6_bytes("::1"));
}

TEST(DnsTestServer, ExplicitRecordsOverrideTheSyntheticAnswer) {
  DnsTestServer server(zone_options());
  server.add("Pinned.crawl.test", kA, "127.1.2.3", 60);
  server.add("pinned.crawl.test.", kA, "127.1.2.4", 61);
  server.add("six.crawl.test", kAaaa, "::1");
  server.add("elsewhere.example", kA, "127.9.9.9");
  UdpClient client(server.port());

  Answer pinned = client.ask(1, "pinned.CRAWL.test", kA);
  ASSERT_EQ(pinned.ancount, 2);
  EXPECT_EQ(pinned.records[0].rdata, ipv4_bytes("127.1.2.3"));
  EXPECT_EQ(pinned.records[0].ttl, 60u);
  EXPECT_EQ(pinned.records[1].rdata, ipv4_bytes("127.1.2.4"));
  EXPECT_EQ(pinned.records[1].ttl, 61u);

  Answer six = client.ask(2, "six.crawl.test", kAaaa);
  ASSERT_EQ(six.ancount, 1);
  EXPECT_EQ(six.records[0].rdata, ipv6_bytes("::1"));
  Answer six_a = client.ask(3, "six.crawl.test", kA);
  EXPECT_EQ(six_a.rcode, 0);
  EXPECT_EQ(six_a.ancount, 0) << "explicit records replace the synthetic A";

  Answer outside = client.ask(4, "elsewhere.example", kA);
  EXPECT_EQ(outside.rcode, 0);
  ASSERT_EQ(outside.ancount, 1);
  EXPECT_EQ(outside.records[0].rdata, ipv4_bytes("127.9.9.9"));

  server.remove("pinned.crawl.test");
  Answer back = client.ask(5, "pinned.crawl.test", kA);
  ASSERT_EQ(back.ancount, 1);
  EXPECT_EQ(back.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("pinned.crawl.test")));

  EXPECT_THROW(server.add("bad.crawl.test", kA, "::1"), std::invalid_argument);
  EXPECT_THROW(server.add("bad.crawl.test", 16, "127.0.0.1"), std::invalid_argument);
}

TEST(DnsTestServer, NamesOutsideTheZoneAndTheApexAreNxdomain) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  EXPECT_EQ(client.ask(1, "crawl.test", kA).rcode, 3);
  EXPECT_EQ(client.ask(2, "other.test", kA).rcode, 3);
  EXPECT_EQ(client.ask(3, "xcrawl.test", kA).rcode, 3) << "a suffix, not below the zone";
  Answer a = client.ask(4, "example.com", kAaaa);
  EXPECT_EQ(a.rcode, 3);
  EXPECT_EQ(a.ancount, 0);
  EXPECT_TRUE(a.aa());
}

TEST(DnsTestServer, PerNameBehavioursGiveTheirRcodesWhateverTheCase) {
  DnsTestServer server(zone_options());
  server.set_behavior("NX.crawl.test", DnsBehavior::kNxdomain);
  server.set_behavior("fail.crawl.test", DnsBehavior::kServfail);
  server.set_behavior("no.crawl.test", DnsBehavior::kRefused);
  server.add("pinned.crawl.test", kA, "127.1.2.3");
  server.set_behavior("pinned.crawl.test", DnsBehavior::kServfail);
  UdpClient client(server.port());
  EXPECT_EQ(client.ask(1, "nx.crawl.test", kA).rcode, 3);
  EXPECT_EQ(client.ask(2, "FAIL.crawl.test", kA).rcode, 2);
  EXPECT_EQ(client.ask(3, "no.crawl.test", kAaaa).rcode, 5);
  Answer pinned = client.ask(4, "pinned.crawl.test", kA);
  EXPECT_EQ(pinned.rcode, 2) << "a behaviour wins over explicit records";
  EXPECT_EQ(pinned.ancount, 0);

  server.set_behavior("fail.crawl.test", DnsBehavior::kAnswer);
  Answer healed = client.ask(5, "fail.crawl.test", kA);
  EXPECT_EQ(healed.rcode, 0);
  EXPECT_EQ(healed.ancount, 1);
}

TEST(DnsTestServer, ADroppedNameIsNeverAnsweredButIsCounted) {
  DnsTestServer server(zone_options());
  server.set_behavior("void.crawl.test", DnsBehavior::kDrop);
  UdpClient client(server.port());
  client.send(make_query(1, "void.crawl.test", kA));
  EXPECT_EQ(client.receive(kSilenceMs), std::nullopt);
  EXPECT_EQ(server.queries("void.crawl.test", kA), 1);
  EXPECT_EQ(server.answers_sent(), 0u);
  // The server still answers other names after it.
  EXPECT_EQ(client.ask(2, "fine.crawl.test", kA).ancount, 1);
}

TEST(DnsTestServer, ADelayedAnswerArrivesAfterAnUndelayedOneSentLater) {
  DnsTestServer server(zone_options());
  server.set_delay_ms(300);
  server.set_behavior("quick.crawl.test", DnsBehavior::kAnswer, 0);
  UdpClient client(server.port());
  client.send(make_query(1, "slow.crawl.test", kA));
  client.send(make_query(2, "quick.crawl.test", kA));
  std::optional<std::string> first = client.receive();
  std::optional<std::string> second = client.receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(parse_answer(*first).id, 2);
  EXPECT_EQ(parse_answer(*second).id, 1);

  // And a per-name delay under no global one.
  server.set_delay_ms(0);
  server.set_behavior("late.crawl.test", DnsBehavior::kAnswer, 300);
  client.send(make_query(3, "late.crawl.test", kA));
  client.send(make_query(4, "now.crawl.test", kA));
  first = client.receive();
  second = client.receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(parse_answer(*first).id, 4);
  Answer late = parse_answer(*second);
  EXPECT_EQ(late.id, 3);
  ASSERT_EQ(late.ancount, 1) << "a delayed answer is the same answer";
  EXPECT_EQ(late.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("late.crawl.test")));
}

TEST(DnsTestServer, CountsQueriesByNameAndTypeAndLogsThemInArrivalOrder) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  client.ask(1, "a.crawl.test", kA);
  client.ask(2, "A.crawl.test", kA);
  client.ask(3, "a.crawl.test", kAaaa);
  client.ask(4, "b.example", kA);
  {
    TcpClient tcp(server.port());
    tcp.send_raw(TcpClient::framed(make_query(5, "c.crawl.test", kA)));
    tcp.receive();
  }
  EXPECT_EQ(server.queries("a.crawl.test", kA), 2);
  EXPECT_EQ(server.queries("A.CRAWL.TEST", kA), 2);
  EXPECT_EQ(server.queries("a.crawl.test", kAaaa), 1);
  EXPECT_EQ(server.queries("b.example", kA), 1);
  EXPECT_EQ(server.queries("c.crawl.test", kA), 1);
  EXPECT_EQ(server.queries("c.crawl.test", kAaaa), 0);
  EXPECT_EQ(server.total_queries(), 5u);
  EXPECT_EQ(server.answers_sent(), 5u);
  EXPECT_TRUE(server.wait_for_queries(5, 0));
  EXPECT_FALSE(server.wait_for_queries(6, 50));

  std::vector<DnsQuery> log = server.log();
  ASSERT_EQ(log.size(), 5u);
  const std::pair<std::string, uint16_t> expected[] = {{"a.crawl.test", kA},
                                                       {"a.crawl.test", kA},
                                                       {"a.crawl.test", kAaaa},
                                                       {"b.example", kA},
                                                       {"c.crawl.test", kA}};
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].name, expected[i].first) << i;
    EXPECT_EQ(log[i].type, expected[i].second) << i;
    EXPECT_EQ(log[i].transport, i == 4 ? DnsTransport::kTcp : DnsTransport::kUdp) << i;
  }
}

TEST(DnsTestServer, QueriesOverTcpAreAnsweredWithALengthPrefixEvenSeveralInOneWrite) {
  DnsTestServer server(zone_options());
  TcpClient tcp(server.port());
  tcp.send_raw(TcpClient::framed(make_query(9, "t1.crawl.test", kA)) +
               TcpClient::framed(make_query(10, "t2.crawl.test", kA)));
  Answer one = parse_answer(tcp.receive());
  Answer two = parse_answer(tcp.receive());
  EXPECT_EQ(one.id, 9);
  EXPECT_EQ(two.id, 10);
  ASSERT_EQ(two.ancount, 1);
  EXPECT_EQ(two.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("t2.crawl.test")));
  // A message split across writes is put together.
  std::string framed = TcpClient::framed(make_query(11, "t3.crawl.test", kA));
  tcp.send_raw(framed.substr(0, 1));
  tcp.send_raw(framed.substr(1, 9));
  tcp.send_raw(framed.substr(10));
  EXPECT_EQ(parse_answer(tcp.receive()).id, 11);
}

TEST(DnsTestServer, AnAnswerTooBigForUdpIsTruncatedAndWholeOverTcp) {
  DnsTestServer server(zone_options());
  // 16 bytes each: 50 overflow 512 bytes, but not the 1232 an EDNS client is given.
  for (int i = 1; i <= 50; ++i) server.add("many.crawl.test", kA, "127.0.1." + std::to_string(i));
  UdpClient client(server.port());
  Answer udp = client.ask(1, "many.crawl.test", kA);
  EXPECT_TRUE(udp.tc());
  EXPECT_GT(udp.ancount, 0);
  EXPECT_LT(udp.ancount, 50);
  Answer edns = client.ask(2, "many.crawl.test", kA, true);
  EXPECT_FALSE(edns.tc());
  EXPECT_EQ(edns.ancount, 50);

  TcpClient tcp(server.port());
  tcp.send_raw(TcpClient::framed(make_query(3, "many.crawl.test", kA)));
  Answer whole = parse_answer(tcp.receive());
  EXPECT_FALSE(whole.tc());
  ASSERT_EQ(whole.ancount, 50);
  EXPECT_EQ(whole.records[49].rdata, ipv4_bytes("127.0.1.50"));
}

TEST(DnsTestServer, AnEdnsQueryGetsAMinimalOptRecordBack) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  Answer a = client.ask(1, "e.crawl.test", kA, true);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.ancount, 1);
  ASSERT_EQ(a.arcount, 1);
  const Record& opt = a.records.back();
  EXPECT_EQ(opt.type, 41);
  EXPECT_EQ(opt.ttl, 0u) << "no extended rcode, EDNS version 0";
  EXPECT_TRUE(opt.rdata.empty());
  EXPECT_EQ(client.ask(2, "e.crawl.test", kA).arcount, 0) << "no OPT unless the query had one";
}

TEST(DnsTestServer, MalformedPacketsGetFormerrOrNothingAndTheServerKeepsAnswering) {
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  auto header = [](uint16_t id, uint16_t flags, uint16_t qdcount) {
    std::string h;
    put16(h, id);
    put16(h, flags);
    put16(h, qdcount);
    put16(h, 0);
    put16(h, 0);
    put16(h, 0);
    return h;
  };
  auto expect_formerr = [&](const std::string& packet, uint16_t id, const char* what) {
    client.send(packet);
    std::optional<std::string> reply = client.receive();
    ASSERT_TRUE(reply) << what;
    Answer a = parse_answer(*reply);
    EXPECT_EQ(a.id, id) << what;
    EXPECT_TRUE(a.qr()) << what;
    EXPECT_EQ(a.rcode, 1) << what;
    EXPECT_EQ(a.qdcount, 0) << what;
  };
  expect_formerr(header(1, 0x0100, 0), 1, "no question");
  expect_formerr(make_query(2, "x.crawl.test", kA).replace(4, 2, std::string("\0\2", 2)), 2,
                 "two questions announced, one present");
  // A compression pointer to itself: a loop, if it were followed.
  expect_formerr(header(3, 0, 1) + "\xC0\x0C" + std::string("\0\1\0\1", 4), 3, "pointer loop");
  expect_formerr(header(4, 0, 1) + "\x3Fshort", 4, "label past the end");
  expect_formerr(header(5, 0, 1) + std::string("\1x\0", 3), 5, "no type and class");
  expect_formerr(header(6, 0, 1) + std::string("\x41x\0\0\1\0\1", 7), 6, "bad label type");
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(1, '\x3F') + std::string(63, 'a');
  expect_formerr(header(7, 0, 1) + long_name + std::string("\0\0\1\0\1", 5), 7, "name > 255");

  client.send("\1\2\3");  // shorter than a header: ignored
  client.send(make_query(8, "r.crawl.test", kA).replace(2, 1, "\x80"));  // a response: ignored
  std::string noise;
  for (int i = 0; i < 300; ++i) noise.push_back(static_cast<char>(i * 37 + 11));
  client.send(noise);
  client.send(std::string(12, '\xFF'));
  // Whatever the noise got (FORMERR or nothing), a good query after it is answered.
  client.send(make_query(100, "after.crawl.test", kA));
  bool answered = false;
  while (std::optional<std::string> reply = client.receive()) {
    if (reply->size() >= 2 && get16(*reply, 0) == 100) {
      Answer a = parse_answer(*reply);
      EXPECT_EQ(a.rcode, 0);
      ASSERT_EQ(a.ancount, 1);
      EXPECT_EQ(a.records[0].rdata, ipv4_bytes(DnsTestServer::address_for("after.crawl.test")));
      answered = true;
      break;
    }
  }
  EXPECT_TRUE(answered);
  EXPECT_GE(server.malformed_queries(), 9u);
  EXPECT_EQ(server.queries("after.crawl.test", kA), 1);
}

TEST(DnsTestServer, TwoThousandDistinctNamesSentBackToBackAreAllAnswered) {
  constexpr int kQueries = 2000;
  DnsTestServer server(zone_options());
  UdpClient client(server.port());
  std::vector<bool> answered(kQueries, false);
  int count = 0;
  auto take = [&](const std::string& reply) {
    Answer a = parse_answer(reply);
    ASSERT_LT(a.id, kQueries);
    ASSERT_EQ(a.ancount, 1) << a.id;
    std::string name = "n" + std::to_string(a.id) + ".crawl.test";
    EXPECT_EQ(a.records[0].rdata, ipv4_bytes(DnsTestServer::address_for(name))) << name;
    if (!answered[a.id]) ++count;
    answered[a.id] = true;
  };
  for (int i = 0; i < kQueries; ++i) {
    client.send(make_query(static_cast<uint16_t>(i), "n" + std::to_string(i) + ".crawl.test", kA));
    // Take what already came, without waiting, so neither side's queue has to hold them all.
    while (std::optional<std::string> reply = client.receive(0)) take(*reply);
  }
  while (count < kQueries) {
    std::optional<std::string> reply = client.receive();
    if (!reply) break;
    take(*reply);
  }
  EXPECT_EQ(count, kQueries);
  EXPECT_EQ(server.total_queries(), static_cast<std::size_t>(kQueries));
}

TEST(DnsTestServer, ATcpClientThatHalfClosesStillGetsItsDelayedAnswer) {
  DnsTestServer server(zone_options());
  server.set_delay_ms(100);
  TcpClient tcp(server.port());
  tcp.send_raw(TcpClient::framed(make_query(21, "half.crawl.test", kA)));
  ASSERT_TRUE(server.wait_for_queries(1, kRecvTimeoutMs));
  tcp.shut_down_writing();
  Answer a = parse_answer(tcp.receive());
  EXPECT_EQ(a.id, 21);
  EXPECT_EQ(a.ancount, 1);
  EXPECT_TRUE(tcp.at_eof()) << "the server closes once nothing is left to answer";
}

TEST(DnsTestServer, DestroyingTheServerWithDelayedAnswersPendingDropsThemCleanly) {
  auto server = std::make_unique<DnsTestServer>(zone_options());
  server->set_delay_ms(60000);
  UdpClient client(server->port());
  TcpClient tcp(server->port());
  for (int i = 0; i < 50; ++i) {
    client.send(make_query(static_cast<uint16_t>(i), "p" + std::to_string(i) + ".crawl.test", kA));
  }
  tcp.send_raw(TcpClient::framed(make_query(99, "tcp.crawl.test", kA)));
  ASSERT_TRUE(server->wait_for_queries(51, kRecvTimeoutMs));
  server.reset();  // under ASan, a leaked timer, connection or answer fails the run
  EXPECT_EQ(client.receive(0), std::nullopt);
  EXPECT_TRUE(tcp.at_eof());
}

TEST(DnsTestServer, APortAlreadyTakenMakesTheConstructorThrow) {
  DnsTestServer first(zone_options());
  DnsServerOptions options = zone_options();
  options.port = first.port();
  EXPECT_THROW(DnsTestServer second(options), std::runtime_error);
  options.bind = "not-an-address";
  options.port = 0;
  EXPECT_THROW(DnsTestServer third(options), std::runtime_error);
}

TEST(DnsTestServer, ServesOnIpv6Loopback) {
  DnsServerOptions options = zone_options();
  options.bind = "::1";
  DnsTestServer server(options);
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(server.port());
  addr.sin6_addr = in6addr_loopback;
  std::string q = make_query(42, "six.crawl.test", kA);
  ASSERT_EQ(
      sendto(fd, q.data(), q.size(), 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr),
      static_cast<ssize_t>(q.size()));
  pollfd pfd{fd, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, kRecvTimeoutMs), 1);
  char buf[512];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  close(fd);
  ASSERT_GT(n, 0);
  Answer a = parse_answer(std::string_view(buf, static_cast<std::size_t>(n)));
  EXPECT_EQ(a.id, 42);
  EXPECT_EQ(a.ancount, 1);
}

TEST(NetnsHelpers, BindOverRefusesOutsideAPrivateNamespace) {
  ASSERT_FALSE(in_private_netns());
  // Two scratch files, so that even a broken guard would mount over nothing of the host's.
  std::string source = write_temp_file("a\n");
  std::string target = write_temp_file("b\n");
  std::string why;
  EXPECT_FALSE(bind_over(source, target, &why));
  EXPECT_NE(why.find("not inside a private mount namespace"), std::string::npos) << why;
  std::ifstream in(target);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "b");
  unlink(source.c_str());
  unlink(target.c_str());
}

}  // namespace
}  // namespace uvget::test
