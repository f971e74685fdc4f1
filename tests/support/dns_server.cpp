// DnsTestServer implementation: POSIX sockets bound by hand (so UDP and TCP share one ephemeral
// port), then handed to a uv loop on its own thread; DNS wire-format parsing of one question and
// answer building; one uv_timer per delayed answer.
#include "support/dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

namespace uvget::test {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxWireName = 255;
constexpr int kMaxPointerHops = 16;
constexpr std::size_t kMaxUdpAnswer = 512;  // RFC 1035, without EDNS
// What we accept from an EDNS client at most: the size DNS flag day 2020 settled on, which no
// loopback MTU gets in the way of.
constexpr uint16_t kEdnsPayload = 1232;
constexpr std::size_t kMaxTcpMessage = 65535;
constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kTypeAny = 255;
constexpr uint16_t kClassIn = 1;
constexpr uint16_t kClassAny = 255;
constexpr int kRcodeFormErr = 1;
constexpr int kRcodeServFail = 2;
constexpr int kRcodeNxDomain = 3;
constexpr int kRcodeNotImp = 4;
constexpr int kRcodeRefused = 5;
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kMaskOpcode = 0x7800;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr int kListenBacklog = 511;
constexpr int kBindAttempts = 32;
// A burst of thousands of queries must not overflow the kernel's queue while the loop thread is
// busy answering (the default, ~200 KiB, holds a few hundred datagrams).
constexpr int kSocketBufferBytes = 4 << 20;

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string normalise(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

uint16_t get16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}

uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

std::string synthetic_a_bytes(std::string_view normalised_name) {
  uint32_t h = fnv1a(normalised_name);
  std::string bytes(4, '\0');
  bytes[0] = 127;
  bytes[1] = static_cast<char>((h >> 16) & 0xff);
  bytes[2] = static_cast<char>((h >> 8) & 0xff);
  bytes[3] = static_cast<char>(1 + (h & 0xff) % 254);
  return bytes;
}

// The one question of a query, and what the answer needs from the rest of it.
struct Question {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::string wire_name;  // re-encoded without compression, in the case it came in
  std::string name;       // dotted, lower-cased
  uint16_t type = 0;
  uint16_t klass = 0;
  bool edns = false;
  std::size_t udp_limit = kMaxUdpAnswer;
};

enum class Parsed { kOk, kIgnore, kFormErr, kNotImp };

// Reads the name at `pos`. Compression pointers are followed only backwards (so never in a loop)
// and a bounded number of times; `pos` ends just past the name where it started.
bool read_name(const unsigned char* msg, std::size_t size, std::size_t& pos, std::string* wire,
               std::string* dotted) {
  std::size_t p = pos;
  std::size_t after = 0;
  bool jumped = false;
  int hops = 0;
  std::size_t wire_size = 0;
  for (;;) {
    if (p >= size) return false;
    unsigned len = msg[p];
    if ((len & 0xC0) == 0xC0) {
      if (p + 1 >= size) return false;
      std::size_t target = ((len & 0x3F) << 8) | msg[p + 1];
      if (target >= p || ++hops > kMaxPointerHops) return false;
      if (!jumped) after = p + 2;
      jumped = true;
      p = target;
      continue;
    }
    if ((len & 0xC0) != 0) return false;  // extended label types (RFC 6891): none in use
    if (len == 0) {
      if (wire) wire->push_back('\0');
      if (!jumped) after = p + 1;
      break;
    }
    if (p + 1 + len > size) return false;
    wire_size += 1 + len;
    if (wire_size + 1 > kMaxWireName) return false;
    if (dotted && !dotted->empty()) dotted->push_back('.');
    if (wire) wire->push_back(static_cast<char>(len));
    for (unsigned i = 0; i < len; ++i) {
      char c = static_cast<char>(msg[p + 1 + i]);
      // A dot inside a label could make two different names look alike in the rules.
      if (c == '.' || c == '\0') return false;
      if (wire) wire->push_back(c);
      if (dotted) dotted->push_back(ascii_lower(c));
    }
    p += 1 + len;
  }
  pos = after;
  return true;
}

Parsed parse_query(const unsigned char* msg, std::size_t size, Question& q) {
  if (size < kHeaderSize) return Parsed::kIgnore;  // not even an ID to answer to
  q.id = get16(msg);
  q.flags = get16(msg + 2);
  // Never answer an answer: two servers pointed at each other would ping-pong forever.
  if (q.flags & kFlagQr) return Parsed::kIgnore;
  uint16_t qdcount = get16(msg + 4);
  uint16_t ancount = get16(msg + 6);
  uint16_t nscount = get16(msg + 8);
  uint16_t arcount = get16(msg + 10);
  if ((q.flags & kMaskOpcode) != 0) return Parsed::kNotImp;
  if (qdcount != 1) return Parsed::kFormErr;
  std::size_t pos = kHeaderSize;
  if (!read_name(msg, size, pos, &q.wire_name, &q.name)) return Parsed::kFormErr;
  if (pos + 4 > size) return Parsed::kFormErr;
  q.type = get16(msg + pos);
  q.klass = get16(msg + pos + 2);
  pos += 4;
  // EDNS0: an OPT record among the additional ones. A broken additional section is not worth a
  // FORMERR here: the question is all we answer.
  if (ancount == 0 && nscount == 0) {
    for (uint16_t i = 0; i < arcount; ++i) {
      if (!read_name(msg, size, pos, nullptr, nullptr) || pos + 10 > size) break;
      uint16_t type = get16(msg + pos);
      uint16_t payload = get16(msg + pos + 2);
      std::size_t rdlength = get16(msg + pos + 8);
      pos += 10 + rdlength;
      if (pos > size) break;
      if (type == kTypeOpt) {
        q.edns = true;
        q.udp_limit = std::clamp<std::size_t>(payload, kMaxUdpAnswer, kEdnsPayload);
        break;
      }
    }
  }
  return Parsed::kOk;
}

std::string header(uint16_t id, uint16_t query_flags, bool aa, bool tc, int rcode, uint16_t qdcount,
                   uint16_t ancount, uint16_t arcount) {
  uint16_t flags =
      static_cast<uint16_t>(kFlagQr | (query_flags & kMaskOpcode) | (aa ? kFlagAa : 0) |
                            (tc ? kFlagTc : 0) | (query_flags & kFlagRd) | (rcode & 0xF));
  std::string out;
  out.reserve(kMaxUdpAnswer);
  put16(out, id);
  put16(out, flags);
  put16(out, qdcount);
  put16(out, ancount);
  put16(out, 0);  // nscount
  put16(out, arcount);
  return out;
}

struct TcpConn;

// An answer waiting for its delay to pass.
struct PendingAnswer {
  DnsTestServer::Impl* server = nullptr;
  uv_timer_t timer{};
  std::string bytes;
  sockaddr_storage peer{};  // UDP
  TcpConn* conn = nullptr;  // TCP; null once it fired
};

// One accepted TCP connection. Freed when its handle is closed and no delayed answer still
// points at it.
struct TcpConn {
  DnsTestServer::Impl* server = nullptr;
  uv_tcp_t tcp{};
  std::string input;
  int pending = 0;  // delayed answers that will write to it
  int writes = 0;   // uv_write requests in flight
  bool peer_eof = false;
  bool closing = false;
  bool closed = false;  // its close callback ran
};

struct UdpSend {
  DnsTestServer::Impl* server = nullptr;
  uv_udp_send_t req{};
  std::string bytes;
};

struct TcpWrite {
  TcpConn* conn = nullptr;
  uv_write_t req{};
  std::string bytes;
};

std::runtime_error failure(const std::string& what, int err) {
  return std::runtime_error("DnsTestServer: " + what + ": " + std::strerror(err));
}

void enlarge_buffers(int fd) {
  int bytes = kSocketBufferBytes;
  // SO_RCVBUFFORCE passes net.core.rmem_max as root; SO_RCVBUF is the best an ordinary user gets.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
}

uint16_t get_port(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

socklen_t addr_len(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// A UDP socket bound to `addr` and a TCP socket bound to the same port. With port 0 the kernel
// picks the UDP port, which TCP may already use: then both are retried.
void bind_pair(sockaddr_storage addr, const std::string& where, int* udp_fd, int* tcp_fd,
               uint16_t* port) {
  bool ephemeral = get_port(addr) == 0;
  int family = addr.ss_family;
  for (int attempt = 0; attempt < kBindAttempts; ++attempt) {
    int udp = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp < 0) throw failure("socket(udp)", errno);
    int on = 1;
    if (family == AF_INET6) setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(udp, reinterpret_cast<const sockaddr*>(&addr), addr_len(addr)) != 0) {
      int err = errno;
      close(udp);
      throw failure("bind " + where + "/udp", err);
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(udp, reinterpret_cast<sockaddr*>(&bound), &len);
    int tcp = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tcp < 0) {
      int err = errno;
      close(udp);
      throw failure("socket(tcp)", err);
    }
    // A restarted server on a fixed port must not wait for the last one's TIME_WAIT sockets.
    setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (family == AF_INET6) setsockopt(tcp, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(tcp, reinterpret_cast<const sockaddr*>(&bound), addr_len(bound)) == 0) {
      enlarge_buffers(udp);
      *udp_fd = udp;
      *tcp_fd = tcp;
      *port = get_port(bound);
      return;
    }
    int err = errno;
    close(tcp);
    close(udp);
    if (!ephemeral || err != EADDRINUSE) throw failure("bind " + where + "/tcp", err);
  }
  throw std::runtime_error("DnsTestServer: no port free for both UDP and TCP on " + where);
}

}  // namespace

struct DnsTestServer::Decision {
  DnsBehavior behavior = DnsBehavior::kAnswer;
  int delay_ms = 0;
  int rcode = 0;
  std::vector<Record> answers;
};

struct DnsTestServer::Impl {
  DnsTestServer* owner = nullptr;
  uv_loop_t loop{};
  uv_udp_t udp{};
  uv_tcp_t listener{};
  uv_async_t wakeup{};
  bool stopping = false;
  std::set<TcpConn*> conns;
  std::set<PendingAnswer*> pending;
  std::vector<char> read_buffer = std::vector<char>(kReadBufferSize);

  void handle(const unsigned char* msg, std::size_t size, DnsTransport transport,
              const sockaddr* peer, TcpConn* conn);
  void deliver(std::string bytes, const sockaddr* peer, TcpConn* conn);
  void send_udp(std::string bytes, const sockaddr* peer);
  void send_tcp(TcpConn& conn, std::string bytes);
  void stop();
  // Counted before the bytes reach the socket, so a client holding an answer finds it counted;
  // taken back if the send then fails.
  void answer_sent() { owner->note_answer_sent(1); }
  void answer_not_sent() { owner->note_answer_sent(-1); }
  static std::string build_answer(const Question& q, const Decision& d, std::size_t limit);
};

namespace {

void close_conn(TcpConn& conn);

void free_conn_if_done(TcpConn* conn) {
  if (conn->closed && conn->pending == 0) delete conn;
}

// After the peer's FIN, the connection stays open until its delayed answers are out.
void finish_conn_if_done(TcpConn& conn) {
  if (conn.peer_eof && conn.pending == 0 && conn.writes == 0) close_conn(conn);
}

void on_conn_closed(uv_handle_t* handle) noexcept {
  auto* conn = static_cast<TcpConn*>(handle->data);
  conn->closed = true;
  conn->server->conns.erase(conn);
  free_conn_if_done(conn);
}

void close_conn(TcpConn& conn) {
  if (conn.closing) return;
  conn.closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&conn.tcp), on_conn_closed);
}

void on_pending_closed(uv_handle_t* handle) noexcept {
  auto* answer = static_cast<PendingAnswer*>(handle->data);
  if (TcpConn* conn = answer->conn) {  // never fired: the server is stopping
    --conn->pending;
    free_conn_if_done(conn);
  }
  delete answer;
}

void on_pending_timer(uv_timer_t* timer) noexcept {
  auto* answer = static_cast<PendingAnswer*>(timer->data);
  DnsTestServer::Impl& server = *answer->server;
  server.pending.erase(answer);
  if (TcpConn* conn = answer->conn) {
    answer->conn = nullptr;
    server.send_tcp(*conn, std::move(answer->bytes));
    --conn->pending;
    if (conn->closed) {
      free_conn_if_done(conn);
    } else {
      finish_conn_if_done(*conn);
    }
  } else {
    server.send_udp(std::move(answer->bytes), reinterpret_cast<const sockaddr*>(&answer->peer));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(timer), on_pending_closed);
}

void on_udp_sent(uv_udp_send_t* req, int status) noexcept {
  auto* send = static_cast<UdpSend*>(req->data);
  if (status != 0) send->server->answer_not_sent();
  delete send;
}

void on_tcp_written(uv_write_t* req, int status) noexcept {
  auto* write = static_cast<TcpWrite*>(req->data);
  TcpConn& conn = *write->conn;
  delete write;
  --conn.writes;
  if (status == 0) {
    finish_conn_if_done(conn);
  } else {
    conn.server->answer_not_sent();
    close_conn(conn);  // the peer went away (or the server is stopping: already closing)
  }
}

void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
  // Both read callbacks consume the bytes before returning, so one buffer serves every handle.
  std::vector<char>& buffer = *static_cast<std::vector<char>*>(handle->loop->data);
  *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

void on_udp_recv(uv_udp_t* udp, ssize_t nread, const uv_buf_t* buf, const sockaddr* peer,
                 unsigned flags) noexcept {
  if (nread <= 0 || peer == nullptr) return;  // nothing, or an error without a sender to answer
  if (flags & UV_UDP_PARTIAL) return;         // bigger than any query we would accept
  auto* server = static_cast<DnsTestServer::Impl*>(udp->data);
  server->handle(reinterpret_cast<const unsigned char*>(buf->base), static_cast<std::size_t>(nread),
                 DnsTransport::kUdp, peer, nullptr);
}

void on_tcp_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* conn = static_cast<TcpConn*>(stream->data);
  if (nread < 0) {
    if (nread == UV_EOF) {
      conn->peer_eof = true;
      uv_read_stop(stream);
      finish_conn_if_done(*conn);
    } else {
      close_conn(*conn);
    }
    return;
  }
  conn->input.append(buf->base, static_cast<std::size_t>(nread));
  // Messages are framed by a 2-byte length (RFC 1035 4.2.2); several may come in one read.
  std::size_t used = 0;
  while (!conn->closing && conn->input.size() - used >= 2) {
    auto* p = reinterpret_cast<const unsigned char*>(conn->input.data() + used);
    std::size_t len = get16(p);
    if (conn->input.size() - used < 2 + len) break;
    std::string message = conn->input.substr(used + 2, len);
    used += 2 + len;
    conn->server->handle(reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                         DnsTransport::kTcp, nullptr, conn);
  }
  conn->input.erase(0, used);
}

void on_connection(uv_stream_t* listener, int status) noexcept {
  if (status < 0) return;
  auto* server = static_cast<DnsTestServer::Impl*>(listener->data);
  auto* conn = new TcpConn;
  conn->server = server;
  uv_tcp_init(&server->loop, &conn->tcp);
  conn->tcp.data = conn;
  server->conns.insert(conn);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&conn->tcp)) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&conn->tcp), on_alloc, on_tcp_read) != 0) {
    close_conn(*conn);
  }
}

void on_wakeup(uv_async_t* async) noexcept {
  static_cast<DnsTestServer::Impl*>(async->data)->stop();
}

}  // namespace

std::string DnsTestServer::Impl::build_answer(const Question& q, const Decision& d,
                                              std::size_t limit) {
  std::size_t size = kHeaderSize + q.wire_name.size() + 4 + (q.edns ? 11 : 0);
  std::size_t count = 0;
  for (const Record& r : d.answers) {
    std::size_t rr = 12 + r.bytes.size();  // pointer, type, class, ttl, rdlength, rdata
    if (size + rr > limit) break;
    size += rr;
    ++count;
  }
  bool truncated = count < d.answers.size();  // the client retries over TCP
  std::string out = header(q.id, q.flags, true, truncated, d.rcode, 1, static_cast<uint16_t>(count),
                           q.edns ? 1 : 0);
  out += q.wire_name;
  put16(out, q.type);
  put16(out, q.klass);
  for (std::size_t i = 0; i < count; ++i) {
    const Record& r = d.answers[i];
    put16(out, 0xC00C);  // the question's name, right after the header
    put16(out, r.type);
    put16(out, kClassIn);
    put32(out, r.ttl);
    put16(out, static_cast<uint16_t>(r.bytes.size()));
    out += r.bytes;
  }
  if (q.edns) {  // a minimal OPT: root name, our payload size, no extended rcode, no options
    out.push_back('\0');
    put16(out, kTypeOpt);
    put16(out, kEdnsPayload);
    put32(out, 0);
    put16(out, 0);
  }
  return out;
}

void DnsTestServer::Impl::handle(const unsigned char* msg, std::size_t size, DnsTransport transport,
                                 const sockaddr* peer, TcpConn* conn) {
  if (stopping) return;
  Question q;
  Parsed parsed = parse_query(msg, size, q);
  if (parsed != Parsed::kOk) {
    owner->note_malformed();
    if (parsed == Parsed::kIgnore) return;
    int rcode = parsed == Parsed::kNotImp ? kRcodeNotImp : kRcodeFormErr;
    deliver(header(q.id, q.flags, false, false, rcode, 0, 0, 0), peer, conn);
    return;
  }
  DnsQuery query{q.name, q.type, transport};
  Decision d = owner->decide(query, q.klass == kClassIn || q.klass == kClassAny);
  if (d.behavior == DnsBehavior::kDrop) return;
  std::string bytes =
      build_answer(q, d, transport == DnsTransport::kUdp ? q.udp_limit : kMaxTcpMessage);
  if (d.delay_ms <= 0) {
    deliver(std::move(bytes), peer, conn);
    return;
  }
  auto* answer = new PendingAnswer;
  answer->server = this;
  answer->bytes = std::move(bytes);
  if (conn) {
    answer->conn = conn;
    ++conn->pending;
  } else {
    std::memcpy(&answer->peer, peer,
                peer->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  }
  uv_timer_init(&loop, &answer->timer);
  answer->timer.data = answer;
  pending.insert(answer);
  uv_timer_start(&answer->timer, on_pending_timer, static_cast<uint64_t>(d.delay_ms), 0);
}

void DnsTestServer::Impl::deliver(std::string bytes, const sockaddr* peer, TcpConn* conn) {
  if (conn) {
    send_tcp(*conn, std::move(bytes));
  } else {
    send_udp(std::move(bytes), peer);
  }
}

void DnsTestServer::Impl::send_udp(std::string bytes, const sockaddr* peer) {
  answer_sent();
  // Mostly the socket takes it at once, with no request to allocate.
  uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  int rc = uv_udp_try_send(&udp, &buf, 1, peer);
  if (rc >= 0) return;
  if (rc != UV_EAGAIN) {  // an address we cannot send to: that client times out
    answer_not_sent();
    return;
  }
  auto* send = new UdpSend;
  send->server = this;
  send->bytes = std::move(bytes);
  send->req.data = send;
  buf = uv_buf_init(send->bytes.data(), static_cast<unsigned>(send->bytes.size()));
  if (uv_udp_send(&send->req, &udp, &buf, 1, peer, on_udp_sent) != 0) {
    answer_not_sent();
    delete send;
  }
}

void DnsTestServer::Impl::send_tcp(TcpConn& conn, std::string bytes) {
  if (conn.closing) return;
  auto* write = new TcpWrite;
  write->conn = &conn;
  write->req.data = write;
  put16(write->bytes, static_cast<uint16_t>(bytes.size()));
  write->bytes += bytes;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  ++conn.writes;
  answer_sent();
  if (uv_write(&write->req, reinterpret_cast<uv_stream_t*>(&conn.tcp), &buf, 1, on_tcp_written) !=
      0) {
    --conn.writes;
    answer_not_sent();
    delete write;
    close_conn(conn);
  }
}

void DnsTestServer::Impl::stop() {
  stopping = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup), nullptr);
  for (TcpConn* conn : std::vector<TcpConn*>(conns.begin(), conns.end())) close_conn(*conn);
  for (PendingAnswer* answer : pending) {
    uv_close(reinterpret_cast<uv_handle_t*>(&answer->timer), on_pending_closed);
  }
  pending.clear();
}

// ---- DnsTestServer -----------------------------------------------------------------------------

DnsTestServer::DnsTestServer() : DnsTestServer(DnsServerOptions{}) {}

DnsTestServer::DnsTestServer(DnsServerOptions options)
    : options_(std::move(options)),
      zone_(normalise(options_.zone)),
      delay_ms_(options_.delay_ms),
      impl_(std::make_unique<Impl>()) {
  start();
}

std::string DnsTestServer::address_for(std::string_view name) {
  std::string bytes = synthetic_a_bytes(normalise(name));
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, bytes.data(), text, sizeof text);
  return text;
}

void DnsTestServer::start() {
  sockaddr_storage addr{};
  bool v6 = options_.bind.find(':') != std::string::npos;
  int rc =
      v6 ? uv_ip6_addr(options_.bind.c_str(), options_.port, reinterpret_cast<sockaddr_in6*>(&addr))
         : uv_ip4_addr(options_.bind.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) throw std::runtime_error("DnsTestServer: not an IP address: " + options_.bind);
  std::string where =
      (v6 ? "[" + options_.bind + "]" : options_.bind) + ":" + std::to_string(options_.port);
  int udp_fd = -1, tcp_fd = -1;
  bind_pair(addr, where, &udp_fd, &tcp_fd, &port_);

  Impl& impl = *impl_;
  impl.owner = this;
  rc = uv_loop_init(&impl.loop);
  if (rc != 0) {
    close(udp_fd);
    close(tcp_fd);
    throw std::runtime_error(std::string("DnsTestServer: uv_loop_init: ") + uv_strerror(rc));
  }
  impl.loop.data = &impl.read_buffer;
  uv_udp_init(&impl.loop, &impl.udp);
  uv_tcp_init(&impl.loop, &impl.listener);
  uv_async_init(&impl.loop, &impl.wakeup, on_wakeup);
  impl.udp.data = &impl;
  impl.listener.data = &impl;
  impl.wakeup.data = &impl;

  const char* step = "uv_udp_open";
  rc = uv_udp_open(&impl.udp, udp_fd);
  if (rc != 0) close(udp_fd);
  int tcp_rc = uv_tcp_open(&impl.listener, tcp_fd);
  if (tcp_rc != 0) close(tcp_fd);
  if (rc == 0 && tcp_rc != 0) {
    step = "uv_tcp_open";
    rc = tcp_rc;
  }
  if (rc == 0) {
    step = "uv_listen";
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl.listener), kListenBacklog, on_connection);
  }
  if (rc == 0) {
    step = "uv_udp_recv_start";
    rc = uv_udp_recv_start(&impl.udp, on_alloc, on_udp_recv);
  }
  if (rc != 0) {
    impl.stop();
    uv_run(&impl.loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl.loop);
    throw std::runtime_error(std::string("DnsTestServer: ") + step + ": " + uv_strerror(rc));
  }

  thread_ = std::thread([&impl] {
    // A write to a TCP client that hung up must fail with EPIPE, not kill the process.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    uv_run(&impl.loop, UV_RUN_DEFAULT);
  });
}

DnsTestServer::~DnsTestServer() {
  uv_async_send(&impl_->wakeup);
  thread_.join();
  int rc = uv_loop_close(&impl_->loop);
  if (rc != 0) {
    std::fprintf(stderr, "DnsTestServer: uv_loop_close: %s\n", uv_strerror(rc));
    std::abort();
  }
}

void DnsTestServer::add(std::string_view name, uint16_t type, std::string_view address,
                        uint32_t ttl) {
  Record record;
  record.type = type;
  record.ttl = ttl;
  std::string text(address);
  if (type == kTypeA) {
    record.bytes.resize(4);
    if (inet_pton(AF_INET, text.c_str(), record.bytes.data()) != 1) {
      throw std::invalid_argument("DnsTestServer::add: not an IPv4 address: " + text);
    }
  } else if (type == kTypeAaaa) {
    record.bytes.resize(16);
    if (inet_pton(AF_INET6, text.c_str(), record.bytes.data()) != 1) {
      throw std::invalid_argument("DnsTestServer::add: not an IPv6 address: " + text);
    }
  } else {
    throw std::invalid_argument("DnsTestServer::add: only A and AAAA records");
  }
  std::lock_guard lock(mutex_);
  records_[normalise(name)].push_back(std::move(record));
}

void DnsTestServer::remove(std::string_view name) {
  std::lock_guard lock(mutex_);
  records_.erase(normalise(name));
}

void DnsTestServer::set_behavior(std::string_view name, DnsBehavior behavior,
                                 std::optional<int> delay_ms) {
  std::lock_guard lock(mutex_);
  std::string key = normalise(name);
  if (behavior == DnsBehavior::kAnswer && !delay_ms) {
    rules_.erase(key);
  } else {
    rules_[key] = NameRule{behavior, delay_ms};
  }
}

void DnsTestServer::set_delay_ms(int ms) {
  std::lock_guard lock(mutex_);
  delay_ms_ = ms;
}

std::size_t DnsTestServer::total_queries() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::size_t DnsTestServer::answers_sent() const {
  std::lock_guard lock(mutex_);
  return answered_;
}

std::size_t DnsTestServer::malformed_queries() const {
  std::lock_guard lock(mutex_);
  return malformed_;
}

int DnsTestServer::queries(std::string_view name, uint16_t type) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find({normalise(name), type});
  return it == counts_.end() ? 0 : it->second;
}

std::vector<DnsQuery> DnsTestServer::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

bool DnsTestServer::wait_for_queries(std::size_t n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return total_ >= n; });
}

DnsTestServer::Decision DnsTestServer::decide(const DnsQuery& query, bool class_in) {
  Decision d;
  {
    std::lock_guard lock(mutex_);
    ++total_;
    if (options_.record_queries) {
      log_.push_back(query);
      ++counts_[{query.name, query.type}];
    }
    d.delay_ms = delay_ms_;
    auto rule = rules_.find(query.name);
    if (rule != rules_.end()) {
      d.behavior = rule->second.behavior;
      if (rule->second.delay_ms) d.delay_ms = *rule->second.delay_ms;
    }
    switch (d.behavior) {
      case DnsBehavior::kNxdomain:
        d.rcode = kRcodeNxDomain;
        break;
      case DnsBehavior::kServfail:
        d.rcode = kRcodeServFail;
        break;
      case DnsBehavior::kRefused:
        d.rcode = kRcodeRefused;
        break;
      case DnsBehavior::kDrop:
        break;
      case DnsBehavior::kAnswer: {
        bool any = query.type == kTypeAny;
        const std::string& name = query.name;
        auto records = records_.find(name);
        bool in_zone = !zone_.empty() && name.size() > zone_.size() + 1 && name.ends_with(zone_) &&
                       name[name.size() - zone_.size() - 1] == '.';
        if (!class_in) {
          d.rcode = kRcodeRefused;  // CHAOS and friends: not ours
        } else if (records != records_.end()) {
          for (const Record& r : records->second) {
            if (any || r.type == query.type) d.answers.push_back(r);
          }
        } else if (in_zone) {
          if (any || query.type == kTypeA) {
            d.answers.push_back(Record{kTypeA, synthetic_a_bytes(name), options_.ttl});
          }
          if ((any || query.type == kTypeAaaa) && options_.aaaa_loopback) {
            std::string loopback(16, '\0');
            loopback[15] = 1;
            d.answers.push_back(Record{kTypeAaaa, loopback, options_.ttl});
          }
        } else {
          d.rcode = kRcodeNxDomain;
        }
        break;
      }
    }
  }
  changed_.notify_all();
  return d;
}

void DnsTestServer::note_answer_sent(int delta) {
  std::lock_guard lock(mutex_);
  answered_ += static_cast<std::size_t>(static_cast<std::ptrdiff_t>(delta));
}

void DnsTestServer::note_malformed() {
  std::lock_guard lock(mutex_);
  ++malformed_;
}

}  // namespace uvget::test
