// TestServer: an in-process, scripted HTTP/1.1 server on 127.0.0.1 (own thread and uv loop), plain
// or over TLS 1.2 (mbedTLS), plus response builders, payloads and BlackholeListener.
#pragma once

#include <mbedtls/md.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace uvget::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

class TlsServerConfig;

// What the server does for one request, step by step. Steps after close/cut/reset/stall are
// ignored. If the script ends without one of them, the connection stays open and the server reads
// the next request on it (keep-alive). In TLS mode, sent bytes are application data (encrypted).
class Script {
 public:
  enum class StepKind { kSend, kPause, kAwaitRequests, kClose, kCut, kReset, kStall };
  struct Step {
    StepKind kind = StepKind::kSend;
    std::string bytes;         // kSend
    int ms = 0;                // kPause
    std::size_t requests = 0;  // kAwaitRequests
  };

  Script& send(std::string bytes);  // write raw bytes
  Script& pause_ms(int ms);         // wait (uv_timer) before the next step
  // Wait until the server has recorded at least `n` requests in all (over any connection) before
  // the next step: a response held mid-body until the client asks for something else.
  Script& await_requests(std::size_t n);
  Script& close();  // graceful close (shutdown, then close); ends the connection
                    // TLS: close_notify first
  Script& cut();    // TLS: FIN without close_notify (truncated stream); plain:
                    // the same as close()
  Script& reset();  // abortive close: RST (uv_tcp_close_reset); ends the connection
  Script& stall();  // send nothing more, never close until the server is destroyed

  const std::vector<Step>& steps() const { return steps_; }

 private:
  std::vector<Step> steps_;
};

struct RecordedRequest {
  std::string method;           // "GET"
  std::string target;           // "/a?b"
  std::string version;          // "HTTP/1.1"
  Headers headers;              // as received, in order (values without surrounding whitespace)
  std::string raw;              // the whole request head, including the final "\r\n\r\n"
  int connection_id = 0;        // 1, 2, 3... per accepted connection
  int index_on_connection = 0;  // 0 for the first request on its connection, then 1, 2...
  bool pipelined = false;       // sent before the response to the one before it had ended
  // TLS mode only: the connection's SNI ("" without), negotiated ALPN ("" without), and whether
  // its handshake resumed an earlier session.
  bool tls = false;
  std::string tls_server_name;
  std::string tls_alpn;
  bool tls_resumed = false;

  // Case-insensitive name, first match.
  std::optional<std::string_view> header(std::string_view name) const;
};

// PEM files for TestServer's TLS mode (e.g. TestCerts::good_cert / good_key).
struct TlsServerFiles {
  std::string cert;  // the leaf, optionally followed by intermediates
  std::string key;
};

class TestServer {
 public:
  using Handler = std::function<Script(const RecordedRequest&)>;

  TestServer();  // default handler: 404 with a small body, keep-alive
  explicit TestServer(Handler handler);
  // Listens on `bind_ip` (a loopback address: "127.0.0.1", "127.0.0.2", "::1").
  TestServer(Handler handler, std::string bind_ip);
  // TLS mode: every connection is TLS 1.2 (mbedTLS server; session tickets and a session cache, so
  // clients can resume; ALPN "http/1.1" when offered). Throws if the files do not load.
  explicit TestServer(TlsServerFiles tls);  // default handler
  TestServer(Handler handler, TlsServerFiles tls);
  TestServer(Handler handler, std::string bind_ip, TlsServerFiles tls);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Exact target match (path + query): this script, every time. Replaces an earlier route.
  void route(std::string target, Script script);
  // Fallback for targets without a route. Runs on the server thread, without the server's lock
  // held (it may call the other methods).
  void set_handler(Handler handler);

  uint16_t port() const { return port_; }
  bool tls() const { return tls_ != nullptr; }
  // "http://127.0.0.1:PORT" + target ("https://..." in TLS mode; "[::1]" for IPv6).
  std::string url(std::string_view target) const;
  // The same with the host "localhost": the name TestCerts' leaves carry (mbedTLS 2.28 clients
  // match DNS SANs only, never the IP SANs).
  std::string localhost_url(std::string_view target) const;

  std::vector<RecordedRequest> requests() const;  // copies, in arrival order
  int accepted_connections() const;
  int current_connections() const;
  int peak_connections() const;  // max simultaneously open
  // For each accepted connection in order: how many requests had been answered (their scripts
  // started) before it was accepted. Shows a client's ramp-up.
  std::vector<int> answers_before_each_accept() const;
  bool wait_for_requests(std::size_t n, int timeout_ms) const;
  // Waits until current_connections() == n (e.g. 0 after the client hung up).
  bool wait_for_current_connections(int n, int timeout_ms) const;

  // TLS mode counters. A handshake counts when it completes; resumed ones count in both. A failure
  // is a connection whose handshake ended in an mbedTLS error (e.g. the client's alert about our
  // certificate) or whose peer hung up mid-handshake after sending something; it is closed.
  int tls_handshakes() const;
  int tls_resumed_handshakes() const;
  int tls_failures() const;
  std::string last_tls_failure() const;  // the last failure's description ("" if none)
  bool wait_for_tls_handshakes(int n, int timeout_ms) const;  // until tls_handshakes() >= n
  bool wait_for_tls_failures(int n, int timeout_ms) const;    // until tls_failures() >= n

  struct Impl;  // loop-thread state, defined in test_server.cpp

 private:
  void record_request(RecordedRequest request);
  Script script_for(const RecordedRequest& request);
  int connection_opened();  // returns the new connection's id
  void connection_closed();
  void tls_handshake_done(bool resumed);
  void tls_failed(std::string why);
  void start();

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Script, std::less<>> routes_;
  Handler handler_;
  std::vector<RecordedRequest> requests_;
  int accepted_ = 0;
  int current_ = 0;
  int peak_ = 0;
  int scripts_started_ = 0;
  std::vector<int> answers_before_accept_;
  int tls_handshakes_ = 0;
  int tls_resumed_ = 0;
  int tls_failures_ = 0;
  std::string last_tls_failure_;

  uint16_t port_ = 0;
  std::string bind_ip_;
  std::unique_ptr<TlsServerConfig> tls_;  // null in plain mode; used on the loop thread
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// "HTTP/1.1 <status> <reason>\r\nContent-Length: n\r\n<extra>\r\n<body>". No Content-Length is
// added when `extra` already has Content-Length or Transfer-Encoding, nor for 1xx/204 (and for 304
// with an empty body).
std::string http_response(int status, std::string_view body, const Headers& extra = {});
// Transfer-Encoding: chunked, one chunk per non-empty element, then the terminating 0 chunk.
std::string chunked_response(int status, const std::vector<std::string>& chunks,
                             const Headers& extra = {});
// A resource served as a good server does: "Range: bytes=A-" or "bytes=A-B" with an If-Range
// equal to `etag` (or none) gets 206 with its Content-Range, a range past the end 416, anything
// else 200 with the whole body. ETag and Accept-Ranges: bytes on every answer.
Script serve_ranges(const RecordedRequest& request, const std::string& body,
                    const std::string& etag);
// The head serve_ranges sends for a body of `size` bytes, and which bytes [from, to) follow it:
// for scripting a server that sends only part of them, then stalls or breaks.
struct RangedAnswer {
  std::string head;
  uint64_t from = 0, to = 0;
};
RangedAnswer answer_ranges(const RecordedRequest& request, uint64_t size, const std::string& etag);
// serve_ranges from a slow server: the first `fast` bytes of what is asked for at once, then
// the rest `chunk` bytes at a time, `pause_ms` apart.
Script trickle_ranges(const RecordedRequest& request, const std::string& body,
                      const std::string& etag, uint64_t fast, std::size_t chunk, int pause_ms);
// The [first, last] of "Range: bytes=first-last" ("bytes=first-": last is nullopt); nullopt when
// the request has no such header.
std::optional<std::pair<uint64_t, std::optional<uint64_t>>> requested_range(
    const RecordedRequest& request);

// The hex digest of `data` (MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA1, MBEDTLS_MD_MD5...).
std::string digest_hex(mbedtls_md_type_t type, std::string_view data);
inline std::string sha256_hex(std::string_view data) {
  return digest_hex(MBEDTLS_MD_SHA256, data);
}

// Deterministic pseudo-random printable bytes; pattern_bytes(m, s) is a prefix of
// pattern_bytes(n, s) for m <= n, so a range [a, b) is pattern_bytes(b, s).substr(a).
std::string pattern_bytes(std::size_t n, uint32_t seed = 0);
// Reason phrase used by the builders ("OK", "Not Found", ...; "Status" when unknown).
std::string_view reason_phrase(int status);

// A listening socket on 127.0.0.1 (backlog 0) that never accepts, with its accept queue already
// full: further connect() attempts to it hang (their SYNs are dropped). For connect timeouts.
class BlackholeListener {
 public:
  BlackholeListener();
  /// On `ip` ("127.0.0.1", "::1") and `port` (0: any).
  BlackholeListener(const std::string& ip, uint16_t port);
  ~BlackholeListener();
  BlackholeListener(const BlackholeListener&) = delete;
  BlackholeListener& operator=(const BlackholeListener&) = delete;

  uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::vector<int> fillers_;
  uint16_t port_ = 0;
};

}  // namespace uvget::test
