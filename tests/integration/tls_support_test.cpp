// Smoke tests of the TLS test support: TestCerts checked with mbedTLS, TestServer's TLS mode
// (curl, openssl s_client and a blocking mbedTLS client), run_command, and Nginx over HTTPS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>  // MBEDTLS_ERR_NET_* codes only
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/certs.hpp"
#include "support/command.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

constexpr int kRecvTimeoutMs = 5000;
constexpr int kWaitMs = 5000;
constexpr char kGetX[] = "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n";

// A helper program the test runs: missing, the test fails and says so (never a quiet pass).
#define NEEDS(program)                                                      \
  do {                                                                      \
    if (find_program(program).empty())                                      \
      GTEST_FAIL() << program " is needed (scripts/deps test installs it)"; \
  } while (0)

// ---- mbedTLS helpers ---------------------------------------------------------------------------

struct Crt {
  mbedtls_x509_crt crt;
  int rc;
  explicit Crt(const std::string& file) {
    mbedtls_x509_crt_init(&crt);
    rc = mbedtls_x509_crt_parse_file(&crt, file.c_str());
  }
  ~Crt() { mbedtls_x509_crt_free(&crt); }
  Crt(const Crt&) = delete;
  Crt& operator=(const Crt&) = delete;
};

// mbedtls_x509_crt_verify's flags for `cert` against the trust anchor `ca` and name `cn`
// (nullptr: no name check). 0 means valid.
uint32_t verify_flags(const std::string& cert, const std::string& ca, const char* cn) {
  Crt chain(cert), trust(ca);
  EXPECT_EQ(chain.rc, 0) << cert;
  EXPECT_EQ(trust.rc, 0) << ca;
  uint32_t flags = 0;
  int rc = mbedtls_x509_crt_verify(&chain.crt, &trust.crt, nullptr, cn, &flags, nullptr, nullptr);
  EXPECT_EQ(rc == 0, flags == 0) << rc;
  return flags;
}

// mbedtls_pk_check_pair of the certificate's public key and the key file.
int key_matches(const std::string& cert, const std::string& key) {
  Crt crt(cert);
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  int rc = mbedtls_pk_parse_keyfile(&pk, key.c_str(), nullptr);
  if (rc == 0) rc = mbedtls_pk_check_pair(&crt.crt.pk, &pk);
  mbedtls_pk_free(&pk);
  return crt.rc != 0 ? crt.rc : rc;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{kRecvTimeoutMs / 1000, (kRecvTimeoutMs % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

static int on_client_send(void* context, const unsigned char* buf, size_t len) noexcept {
  ssize_t n = ::send(*static_cast<int*>(context), buf, len, MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  return errno == ECONNRESET || errno == EPIPE ? MBEDTLS_ERR_NET_CONN_RESET
                                               : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int on_client_recv(void* context, unsigned char* buf, size_t len) noexcept {
  ssize_t n = ::recv(*static_cast<int*>(context), buf, len, 0);
  if (n >= 0) return static_cast<int>(n);  // 0: EOF, which mbedTLS reports as CONN_EOF
  return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

// A blocking TLS 1.2 client on 127.0.0.1 (mbedTLS, like uvget), verifying against `ca`.
class TlsClient {
 public:
  struct Options {
    std::string ca;
    std::string hostname = "localhost";
    bool tickets = true;
    const mbedtls_ssl_session* resume = nullptr;
  };

  TlsClient(uint16_t port, const Options& options) {
    mbedtls_ssl_init(&ssl_);
    mbedtls_ssl_config_init(&conf_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_entropy_init(&entropy_);
    handshake_rc_ = setup(port, options);
  }
  ~TlsClient() {
    if (fd_ >= 0) ::close(fd_);
    mbedtls_ssl_free(&ssl_);
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  int handshake_rc() const { return handshake_rc_; }  // 0 once connected
  uint32_t verify_result() const { return mbedtls_ssl_get_verify_result(&ssl_); }
  std::string alpn() const {
    const char* p = mbedtls_ssl_get_alpn_protocol(&ssl_);
    return p != nullptr ? p : "";
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      int rc = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(data.data()),
                                 data.size());
      if (rc <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(rc));
    }
    return true;
  }

  // Reads until the stream ends; *end_rc gets mbedtls_ssl_read's last result:
  // MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, 0 for a TCP EOF without close_notify (mbedTLS 2.28 reports
  // a truncated stream so), MBEDTLS_ERR_NET_CONN_RESET...
  std::string read_until_end(int* end_rc) {
    int rc;
    while ((rc = read_more()) > 0) {
    }
    *end_rc = rc;
    return std::exchange(buffer_, std::string());
  }

  // One Content-Length response ("" if the stream ends first).
  std::string read_response() {
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (read_more() <= 0) return {};
    }
    head_end += 4;
    std::size_t at = buffer_.find("Content-Length: ");
    std::size_t total = head_end;
    if (at != std::string::npos && at < head_end) total += std::stoul(buffer_.substr(at + 16));
    while (buffer_.size() < total) {
      if (read_more() <= 0) return {};
    }
    std::string response = buffer_.substr(0, total);
    buffer_.erase(0, total);
    return response;
  }

  void close_notify() { mbedtls_ssl_close_notify(&ssl_); }

  // The session to resume later; `session` must be mbedtls_ssl_session_init'ed.
  bool save_session(mbedtls_ssl_session* session) {
    return mbedtls_ssl_get_session(&ssl_, session) == 0;
  }

 private:
  int setup(uint16_t port, const Options& options) {
    static constexpr char kPers[] = "uvget tls_support_test";
    int rc =
        mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                              reinterpret_cast<const unsigned char*>(kPers), sizeof(kPers) - 1);
    if (rc == 0) rc = mbedtls_x509_crt_parse_file(&ca_, options.ca.c_str());
    if (rc == 0) {
      rc = mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                       MBEDTLS_SSL_PRESET_DEFAULT);
    }
    if (rc != 0) return rc;
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf_, &ca_, nullptr);
    mbedtls_ssl_conf_rng(&conf_, mbedtls_ctr_drbg_random, &drbg_);
    mbedtls_ssl_conf_session_tickets(&conf_, options.tickets
                                                 ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                 : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    mbedtls_ssl_conf_alpn_protocols(&conf_, alpn_);
    if ((rc = mbedtls_ssl_setup(&ssl_, &conf_)) != 0) return rc;
    if ((rc = mbedtls_ssl_set_hostname(&ssl_, options.hostname.c_str())) != 0) return rc;
    if (options.resume != nullptr && (rc = mbedtls_ssl_set_session(&ssl_, options.resume)) != 0) {
      return rc;
    }
    fd_ = connect_loopback(port);
    if (fd_ < 0) return MBEDTLS_ERR_NET_CONNECT_FAILED;
    mbedtls_ssl_set_bio(&ssl_, &fd_, on_client_send, on_client_recv, nullptr);
    return mbedtls_ssl_handshake(&ssl_);
  }

  int read_more() {
    unsigned char buf[16384];
    int rc = mbedtls_ssl_read(&ssl_, buf, sizeof(buf));
    if (rc > 0) buffer_.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(rc));
    return rc;
  }

  const char* alpn_[2] = {"http/1.1", nullptr};
  int fd_ = -1;
  int handshake_rc_ = 0;
  std::string buffer_;
  mbedtls_ssl_context ssl_;
  mbedtls_ssl_config conf_;
  mbedtls_x509_crt ca_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_entropy_context entropy_;
};

std::string body_of(const std::string& response) {
  std::size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

TlsServerFiles good_files() {
  const TestCerts& certs = shared_test_certs();
  return {certs.good_cert, certs.good_key};
}

// ---- run_command -------------------------------------------------------------------------------

TEST(RunCommandTest, CapturesOutputsExitCodeAndInput) {
  CommandResult r = run_command({"sh", "-c", "cat; echo err >&2; exit 3"}, "in\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "in\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);

  CommandResult slow = run_command({"sleep", "10"}, {}, 200);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.exit_code, -1);

  CommandResult missing = run_command({"no-such-program-uvget"});
  EXPECT_EQ(missing.exit_code, -1);
  EXPECT_NE(missing.err.find("not found"), std::string::npos);

  CommandResult cwd = run_command({"pwd"}, {}, 5000, "/");
  EXPECT_EQ(cwd.out, "/\n");
}

// ---- TestCerts ---------------------------------------------------------------------------------

TEST(TestCertsTest, FilesExistAndKeysMatch) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  EXPECT_EQ(&certs, &shared_test_certs());
  for (const std::string* file :
       {&certs.ca_cert, &certs.ca_key, &certs.good_cert, &certs.good_key, &certs.expired_cert,
        &certs.expired_key, &certs.future_cert, &certs.future_key, &certs.wrong_name_cert,
        &certs.wrong_name_key, &certs.self_signed_cert, &certs.self_signed_key,
        &certs.other_ca_cert}) {
    EXPECT_EQ(file->rfind(certs.dir + "/", 0), 0u) << *file;
    EXPECT_TRUE(std::filesystem::is_regular_file(*file)) << *file;
  }
  EXPECT_EQ(key_matches(certs.ca_cert, certs.ca_key), 0);
  EXPECT_EQ(key_matches(certs.good_cert, certs.good_key), 0);
  EXPECT_EQ(key_matches(certs.expired_cert, certs.expired_key), 0);
  EXPECT_EQ(key_matches(certs.future_cert, certs.future_key), 0);
  EXPECT_EQ(key_matches(certs.wrong_name_cert, certs.wrong_name_key), 0);
  EXPECT_EQ(key_matches(certs.self_signed_cert, certs.self_signed_key), 0);
  EXPECT_NE(key_matches(certs.good_cert, certs.expired_key), 0);
}

TEST(TestCertsTest, ExtensionsAsSpecified) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  Crt ca(certs.ca_cert);
  ASSERT_EQ(ca.rc, 0);
  EXPECT_EQ(ca.crt.ca_istrue, 1);
  EXPECT_EQ(mbedtls_x509_crt_check_key_usage(&ca.crt, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
  for (const std::string* file : {&certs.good_cert, &certs.expired_cert, &certs.future_cert,
                                  &certs.wrong_name_cert, &certs.self_signed_cert}) {
    Crt leaf(*file);
    ASSERT_EQ(leaf.rc, 0) << *file;
    EXPECT_EQ(leaf.crt.ca_istrue, 0) << *file;
    EXPECT_EQ(mbedtls_x509_crt_check_key_usage(
                  &leaf.crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_ENCIPHERMENT),
              0)
        << *file;
    EXPECT_NE(mbedtls_x509_crt_check_key_usage(&leaf.crt, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
    EXPECT_EQ(mbedtls_x509_crt_check_extended_key_usage(&leaf.crt, MBEDTLS_OID_SERVER_AUTH,
                                                        MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
              0)
        << *file;
    EXPECT_EQ(mbedtls_pk_get_type(&leaf.crt.pk), MBEDTLS_PK_ECKEY) << *file;
  }
}

TEST(TestCertsTest, VerifyResultsWithMbedtls) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  EXPECT_EQ(verify_flags(certs.ca_cert, certs.ca_cert, nullptr), 0u);
  EXPECT_EQ(verify_flags(certs.good_cert, certs.ca_cert, "localhost"), 0u);
  EXPECT_EQ(verify_flags(certs.good_cert, certs.ca_cert, nullptr), 0u);
  EXPECT_EQ(verify_flags(certs.expired_cert, certs.ca_cert, "localhost"),
            uint32_t{MBEDTLS_X509_BADCERT_EXPIRED});
  EXPECT_EQ(verify_flags(certs.future_cert, certs.ca_cert, "localhost"),
            uint32_t{MBEDTLS_X509_BADCERT_FUTURE});
  EXPECT_EQ(verify_flags(certs.wrong_name_cert, certs.ca_cert, "localhost"),
            uint32_t{MBEDTLS_X509_BADCERT_CN_MISMATCH});
  EXPECT_EQ(verify_flags(certs.wrong_name_cert, certs.ca_cert, "other.example"), 0u);
  EXPECT_EQ(verify_flags(certs.self_signed_cert, certs.ca_cert, "localhost"),
            uint32_t{MBEDTLS_X509_BADCERT_NOT_TRUSTED});
  EXPECT_EQ(verify_flags(certs.good_cert, certs.other_ca_cert, "localhost"),
            uint32_t{MBEDTLS_X509_BADCERT_NOT_TRUSTED});
  EXPECT_EQ(verify_flags(certs.other_ca_cert, certs.other_ca_cert, nullptr), 0u);
  // mbedTLS 2.28 matches the name against DNS SANs only: the IP SANs (there for curl, OpenSSL and
  // nginx clients) do not satisfy it, so mbedTLS clients must use "localhost".
  EXPECT_EQ(verify_flags(certs.good_cert, certs.ca_cert, "127.0.0.1"),
            uint32_t{MBEDTLS_X509_BADCERT_CN_MISMATCH});
}

// ---- TestServer in TLS mode --------------------------------------------------------------------

TEST(TlsTestServerTest, CurlGetsBodyOverTls) {
  NEEDS("openssl");
  NEEDS("curl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  EXPECT_TRUE(server.tls());
  EXPECT_EQ(server.url("/x"), "https://127.0.0.1:" + std::to_string(server.port()) + "/x");
  server.route("/x", Script().send(http_response(200, "hello over tls\n")));

  CommandResult r =
      run_command({"curl", "-sS", "--max-time", "10", "--cacert", certs.ca_cert, server.url("/x")});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, "hello over tls\n");
  std::vector<RecordedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].tls);
  EXPECT_EQ(requests[0].target, "/x");
  EXPECT_EQ(requests[0].tls_server_name, "");   // no SNI for an IP address
  EXPECT_EQ(requests[0].tls_alpn, "http/1.1");  // curl offers h2 too
  EXPECT_FALSE(requests[0].tls_resumed);
  EXPECT_EQ(server.tls_handshakes(), 1);
  EXPECT_EQ(server.tls_failures(), 0);
  EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
}

TEST(TlsTestServerTest, CurlKeepAliveAndSni) {
  NEEDS("openssl");
  NEEDS("curl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  server.route("/a", Script().send(http_response(200, "A")));
  server.route("/b", Script().pause_ms(50).send(chunked_response(200, {"B", "B"})));
  const std::string base = "https://localhost:" + std::to_string(server.port());
  CommandResult r = run_command(
      {"curl", "-sS", "--max-time", "10", "--cacert", certs.ca_cert, "--resolve",
       "localhost:" + std::to_string(server.port()) + ":127.0.0.1", base + "/a", base + "/b"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, "ABB");
  std::vector<RecordedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].connection_id, 1);
  EXPECT_EQ(requests[1].index_on_connection, 1);
  EXPECT_EQ(requests[1].tls_server_name, "localhost");
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_EQ(server.tls_handshakes(), 1);
}

TEST(TlsTestServerTest, CurlRejectsWrongCaAndServerCountsFailure) {
  NEEDS("openssl");
  NEEDS("curl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  CommandResult r = run_command(
      {"curl", "-sS", "--max-time", "10", "--cacert", certs.other_ca_cert, server.url("/x")});
  EXPECT_EQ(r.exit_code, 60) << r.err;  // CURLE_PEER_FAILED_VERIFICATION
  EXPECT_TRUE(server.wait_for_tls_failures(1, kWaitMs));
  EXPECT_EQ(server.tls_handshakes(), 0);
  EXPECT_NE(server.last_tls_failure().find("handshake"), std::string::npos)
      << server.last_tls_failure();
  EXPECT_TRUE(server.requests().empty());
}

TEST(TlsTestServerTest, SClientResumesWithTicketAndWithSessionCache) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  const std::string session_file = certs.dir + "/s_client_" + std::to_string(server.port());
  const std::string connect = "127.0.0.1:" + std::to_string(server.port());
  for (bool tickets : {true, false}) {
    SCOPED_TRACE(tickets ? "session ticket" : "session id cache");
    std::vector<std::string> args = {"openssl",     "s_client",  "-connect", connect,
                                     "-servername", "localhost", "-CAfile",  certs.ca_cert};
    if (!tickets) args.push_back("-no_ticket");
    std::vector<std::string> first = args, second = args;
    first.insert(first.end(), {"-sess_out", session_file});
    second.insert(second.end(), {"-sess_in", session_file});
    const int before = server.tls_handshakes();

    CommandResult r1 = run_command(first, {}, 10000);
    ASSERT_TRUE(r1.ok()) << r1.out << r1.err;
    EXPECT_NE(r1.out.find("New, TLSv1.2"), std::string::npos) << r1.out;
    EXPECT_NE(r1.out.find("Verify return code: 0 (ok)"), std::string::npos) << r1.out;
    CommandResult r2 = run_command(second, {}, 10000);
    ASSERT_TRUE(r2.ok()) << r2.out << r2.err;
    EXPECT_NE(r2.out.find("Reused, TLSv1.2"), std::string::npos) << r2.out;

    EXPECT_TRUE(server.wait_for_tls_handshakes(before + 2, kWaitMs));
    EXPECT_EQ(server.tls_resumed_handshakes(), tickets ? 1 : 2);
  }
  EXPECT_EQ(server.tls_handshakes(), 4);
  EXPECT_EQ(server.tls_failures(), 0);
}

TEST(TlsTestServerTest, MbedtlsClientKeepAliveAndResumption) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  server.route(
      "/x",
      Script().send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nke").pause_ms(30).send("ep"));
  server.route("/big", Script().send(http_response(200, pattern_bytes(100000, 5))));
  for (bool tickets : {true, false}) {
    SCOPED_TRACE(tickets ? "session ticket" : "session id cache");
    const int handshakes = server.tls_handshakes();
    const int resumed = server.tls_resumed_handshakes();
    mbedtls_ssl_session session;
    mbedtls_ssl_session_init(&session);
    {
      TlsClient client(server.port(), {certs.ca_cert, "localhost", tickets, nullptr});
      ASSERT_EQ(client.handshake_rc(), 0) << server.last_tls_failure();
      EXPECT_EQ(client.alpn(), "http/1.1");
      ASSERT_TRUE(client.send_all(std::string(kGetX) + "GET /big HTTP/1.1\r\nHost: l\r\n\r\n"));
      EXPECT_EQ(body_of(client.read_response()), "keep");
      EXPECT_TRUE(body_of(client.read_response()) == pattern_bytes(100000, 5));
      ASSERT_TRUE(client.save_session(&session));
      client.close_notify();
    }
    {
      TlsClient client(server.port(), {certs.ca_cert, "localhost", tickets, &session});
      ASSERT_EQ(client.handshake_rc(), 0);
      ASSERT_TRUE(client.send_all(kGetX));
      EXPECT_EQ(body_of(client.read_response()), "keep");
    }
    mbedtls_ssl_session_free(&session);
    EXPECT_EQ(server.tls_handshakes(), handshakes + 2);
    EXPECT_EQ(server.tls_resumed_handshakes(), resumed + 1);
    std::vector<RecordedRequest> requests = server.requests();
    ASSERT_GE(requests.size(), 3u);
    EXPECT_FALSE(requests[requests.size() - 2].tls_resumed);
    EXPECT_TRUE(requests.back().tls_resumed);
    EXPECT_EQ(requests.back().tls_server_name, "localhost");
  }
  EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
}

TEST(TlsTestServerTest, CloseCutAndResetEndTheStreamDifferently) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  server.route("/close", Script().send("HTTP/1.1 200 OK\r\n\r\nclosed").close());
  server.route("/cut", Script().send("HTTP/1.1 200 OK\r\n\r\ncut").cut().send("never"));
  server.route("/reset", Script().reset());
  struct Case {
    const char* target;
    const char* body;
    int end_rc;
  };
  for (const Case& c : {Case{"/close", "closed", MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY},
                        Case{"/cut", "cut", 0},  // EOF without close_notify
                        Case{"/reset", "", MBEDTLS_ERR_NET_CONN_RESET}}) {
    SCOPED_TRACE(c.target);
    TlsClient client(server.port(), {certs.ca_cert});
    ASSERT_EQ(client.handshake_rc(), 0);
    ASSERT_TRUE(
        client.send_all("GET " + std::string(c.target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    int end_rc = 0;
    EXPECT_EQ(body_of(client.read_until_end(&end_rc)), c.body);
    EXPECT_EQ(end_rc, c.end_rc);
  }
  EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  EXPECT_EQ(server.tls_handshakes(), 3);
}

TEST(TlsTestServerTest, ClientCloseNotifyIsAnswered) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  TestServer server(good_files());
  {
    TlsClient client(server.port(), {certs.ca_cert});
    ASSERT_EQ(client.handshake_rc(), 0);
    client.close_notify();
    int end_rc = 0;
    EXPECT_EQ(client.read_until_end(&end_rc), "");
    EXPECT_EQ(end_rc, MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
  }
  EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  EXPECT_EQ(server.tls_failures(), 0);
}

TEST(TlsTestServerTest, Ipv6LoopbackAndLocalhostUrl) {
  NEEDS("openssl");
  NEEDS("curl");
  const TestCerts& certs = shared_test_certs();
  std::unique_ptr<TestServer> server;
  try {
    server = std::make_unique<TestServer>(nullptr, "::1", good_files());
  } catch (const std::runtime_error& e) {
    GTEST_FAIL() << "cannot listen on ::1 (the loopback needs IPv6 here): " << e.what();
  }
  const std::string port = std::to_string(server->port());
  EXPECT_EQ(server->url("/x"), "https://[::1]:" + port + "/x");
  EXPECT_EQ(server->localhost_url("/x"), "https://localhost:" + port + "/x");
  CommandResult r = run_command({"curl", "-sS", "--max-time", "10", "--cacert", certs.ca_cert, "-o",
                                 "/dev/null", "-w", "%{http_code}", server->url("/x")});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, "404");  // the default handler
  EXPECT_EQ(server->tls_handshakes(), 1);
}

TEST(TlsTestServerTest, HandshakeFailuresAreCountedAndClosed) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  struct Case {
    std::string cert, key, ca, host;
    uint32_t flags;
  };
  const std::vector<Case> cases = {
      {certs.expired_cert, certs.expired_key, certs.ca_cert, "localhost",
       MBEDTLS_X509_BADCERT_EXPIRED},
      {certs.future_cert, certs.future_key, certs.ca_cert, "localhost",
       MBEDTLS_X509_BADCERT_FUTURE},
      {certs.wrong_name_cert, certs.wrong_name_key, certs.ca_cert, "localhost",
       MBEDTLS_X509_BADCERT_CN_MISMATCH},
      {certs.self_signed_cert, certs.self_signed_key, certs.ca_cert, "localhost",
       MBEDTLS_X509_BADCERT_NOT_TRUSTED},
      {certs.good_cert, certs.good_key, certs.other_ca_cert, "localhost",
       MBEDTLS_X509_BADCERT_NOT_TRUSTED},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cert);
    TestServer server(TlsServerFiles{c.cert, c.key});
    {
      TlsClient client(server.port(), {c.ca, c.host});
      EXPECT_EQ(client.handshake_rc(), MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
      EXPECT_EQ(client.verify_result(), c.flags);
    }
    EXPECT_TRUE(server.wait_for_tls_failures(1, kWaitMs));
    EXPECT_EQ(server.tls_handshakes(), 0);
    EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  }
}

TEST(TlsTestServerTest, PlaintextAndHangupMidHandshakeAreFailures) {
  NEEDS("openssl");
  TestServer server(good_files());
  int fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, kGetX, sizeof(kGetX) - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof(kGetX) - 1));
  char buf[256];
  while (::recv(fd, buf, sizeof(buf), 0) > 0) {
  }  // an alert, maybe, then the close
  ::close(fd);
  EXPECT_TRUE(server.wait_for_tls_failures(1, kWaitMs));
  EXPECT_NE(server.last_tls_failure().find("connection 1: handshake"), std::string::npos)
      << server.last_tls_failure();

  ASSERT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL), 3);  // a record header, then nothing
  ASSERT_TRUE(server.wait_for_current_connections(1, kWaitMs));
  ::close(fd);
  EXPECT_TRUE(server.wait_for_tls_failures(2, kWaitMs));
  EXPECT_NE(server.last_tls_failure().find("during the handshake"), std::string::npos)
      << server.last_tls_failure();

  ASSERT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  fd = connect_loopback(server.port());  // a connection that sends nothing is not a failure
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(server.wait_for_current_connections(1, kWaitMs));
  ::close(fd);
  EXPECT_TRUE(server.wait_for_current_connections(0, kWaitMs));
  EXPECT_EQ(server.accepted_connections(), 3);
  EXPECT_EQ(server.tls_failures(), 2);
}

TEST(TlsTestServerTest, StalledTlsConnectionIsClosedByDestructor) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  auto server = std::make_unique<TestServer>(good_files());
  server->route("/x", Script().send("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").stall());
  TlsClient client(server->port(), {certs.ca_cert});
  ASSERT_EQ(client.handshake_rc(), 0);
  ASSERT_TRUE(client.send_all(kGetX));
  ASSERT_TRUE(server->wait_for_requests(1, kWaitMs));
  server.reset();
  int end_rc = 0;
  EXPECT_EQ(body_of(client.read_until_end(&end_rc)), "abc");
  EXPECT_EQ(end_rc, 0);  // FIN without close_notify
}

TEST(TlsTestServerTest, BadFilesThrow) {
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  EXPECT_THROW(TestServer(TlsServerFiles{certs.dir + "/missing.pem", certs.good_key}),
               std::runtime_error);
  EXPECT_THROW(TestServer(TlsServerFiles{certs.good_cert, certs.expired_key}), std::runtime_error);
}

TEST(PlainTestServerTest, CutIsAGracefulClose) {
  TestServer server;
  server.route("/x", Script().send("HTTP/1.1 200 OK\r\n\r\nab").cut().send("never"));
  int fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, kGetX, sizeof(kGetX) - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof(kGetX) - 1));
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) got.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(n, 0);  // FIN, not RST
  EXPECT_EQ(got, "HTTP/1.1 200 OK\r\n\r\nab");
  ::close(fd);
  EXPECT_FALSE(server.tls());
  EXPECT_EQ(server.tls_handshakes(), 0);
}

// ---- Nginx over HTTPS --------------------------------------------------------------------------

TEST(NginxTlsTest, ServesFileToCurl) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  NEEDS("openssl");
  NEEDS("curl");
  const TestCerts& certs = shared_test_certs();
  const std::string root = make_temp_dir("uvget-test-");
  const std::string content = pattern_bytes(200000, 9);
  {
    std::ofstream out(root + "/f.bin", std::ios::binary);
    out << content;
  }
  for (bool tickets : {true, false}) {
    SCOPED_TRACE(tickets ? "tickets on" : "tickets off");
    Nginx nginx(root, "", TlsFiles{certs.good_cert, certs.good_key, tickets});
    ASSERT_TRUE(nginx.ok()) << nginx.error();
    EXPECT_TRUE(nginx.tls());
    EXPECT_EQ(nginx.url("/f.bin"), "https://127.0.0.1:" + std::to_string(nginx.port()) + "/f.bin");
    CommandResult r = run_command(
        {"curl", "-sS", "--max-time", "10", "--cacert", certs.ca_cert, nginx.url("/f.bin")});
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_TRUE(r.out == content) << "body differs, " << r.out.size() << " bytes";
    CommandResult http =
        run_command({"curl", "-sS", "--max-time", "10", "--cacert", certs.ca_cert, "--http1.1",
                     "-o", "/dev/null", "-w", "%{http_version}", nginx.url("/f.bin")});
    EXPECT_EQ(http.out, "1.1") << http.err;
  }
  remove_tree(root);
}

TEST(NginxTlsTest, MbedtlsClientGetsFile) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  NEEDS("openssl");
  const TestCerts& certs = shared_test_certs();
  const std::string root = make_temp_dir("uvget-test-");
  {
    std::ofstream out(root + "/x");
    out << "nginx";
  }
  Nginx nginx(root, "", TlsFiles{certs.good_cert, certs.good_key});
  ASSERT_TRUE(nginx.ok()) << nginx.error();
  TlsClient client(nginx.port(), {certs.ca_cert});
  ASSERT_EQ(client.handshake_rc(), 0);
  ASSERT_TRUE(client.send_all(kGetX));
  EXPECT_EQ(body_of(client.read_response()), "nginx");
  remove_tree(root);
}

}  // namespace
}  // namespace uvget::test
