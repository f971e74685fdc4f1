// HTTPS end to end: verification on by default, each bad certificate with its own error,
// --cacert and insecure mode, resumption counted on both sides, truncation, redirects.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "support/certs.hpp"
#include "support/command.hpp"
#include "support/loop_fixture.hpp"
#include "support/nginx.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class TlsTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    if (find_program("openssl").empty())
      GTEST_FAIL() << "openssl is needed (scripts/deps test installs it)";
  }
  const TestCerts& certs() { return shared_test_certs(); }
  ClientOptions trusting() {
    ClientOptions o;
    o.ca_file = certs().ca_cert;
    return o;
  }
  static TestServer::Handler echo() {
    return [](const RecordedRequest& r) {
      return Script().send(http_response(200, "tls " + r.target));
    };
  }
};

TEST_F(TlsTest, TrustedCertificateWorksForDnsNameAndIpAddress) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  client(trusting());
  auto by_name = fetch(server.localhost_url("/name"));
  auto by_ip = fetch(server.url("/ip"));
  run();
  ASSERT_TRUE(by_name->result.ok()) << by_name->result.error.message();
  ASSERT_TRUE(by_ip->result.ok()) << by_ip->result.error.message();
  EXPECT_EQ(by_name->body, "tls /name");
  EXPECT_EQ(by_ip->body, "tls /ip");
  bool saw_sni = false;
  for (auto& r : server.requests()) {
    EXPECT_TRUE(r.tls);
    EXPECT_EQ(r.tls_alpn, "http/1.1");
    if (r.target == "/name") saw_sni = r.tls_server_name == "localhost";
    if (r.target == "/ip") {
      EXPECT_EQ(r.tls_server_name, "") << "no SNI for an IP address";
    }
  }
  EXPECT_TRUE(saw_sni) << "SNI was not sent for a DNS name";
}

TEST_F(TlsTest, EachBadCertificateIsRefusedWithItsOwnReason) {
  struct Case {
    std::string cert, key, words;
  };
  const auto& c = certs();
  std::vector<Case> cases = {
      {c.expired_cert, c.expired_key, "certificate expired"},
      {c.future_cert, c.future_key, "not yet valid"},
      {c.wrong_name_cert, c.wrong_name_key, "does not match the host"},
      {c.self_signed_cert, c.self_signed_key, "not trusted"},
  };
  client(trusting());
  std::vector<std::unique_ptr<TestServer>> servers;
  std::vector<std::shared_ptr<Outcome>> outs;
  for (auto& k : cases) {
    servers.push_back(std::make_unique<TestServer>(echo(), TlsServerFiles{k.cert, k.key}));
    outs.push_back(fetch(servers.back()->localhost_url("/x")));
  }
  run();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(outs[i]->result.error.code, Errc::tls_verify) << outs[i]->result.error.message();
    EXPECT_NE(outs[i]->result.error.message().find(cases[i].words), std::string::npos)
        << outs[i]->result.error.message();
    EXPECT_TRUE(servers[i]->requests().empty()) << "a request went out to an untrusted server";
  }
}

TEST_F(TlsTest, IpAddressNotInTheCertificateIsRefused) {
  // The wrong-name certificate names other.example only: 127.0.0.1 must not match.
  TestServer server(echo(), TlsServerFiles{certs().wrong_name_cert, certs().wrong_name_key});
  client(trusting());
  auto o = fetch(server.url("/x"));
  run();
  EXPECT_EQ(o->result.error.code, Errc::tls_verify);
  EXPECT_NE(o->result.error.message().find("'127.0.0.1'"), std::string::npos)
      << o->result.error.message();
}

TEST_F(TlsTest, SystemTrustStoreDoesNotTrustTheTestCa) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  auto o = fetch(server.localhost_url("/x"));  // default options: the system bundle
  run();
  EXPECT_EQ(o->result.error.code, Errc::tls_verify) << o->result.error.message();
  EXPECT_NE(o->result.error.message().find("not trusted"), std::string::npos);
}

// SSL_CERT_FILE (OpenSSL's variable) replaces the system bundle when no CA file is given; one
// that names a missing file fails the https download with a message that says where it came from.
TEST_F(TlsTest, SslCertFileReplacesTheSystemBundle) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  ::setenv("SSL_CERT_FILE", certs().ca_cert.c_str(), 1);
  client();  // default options: no CA file, verification on
  ::unsetenv("SSL_CERT_FILE");
  auto ok = fetch(server.localhost_url("/x"));
  run();
  EXPECT_TRUE(ok->result.ok()) << ok->result.error.message();

  client_->close([] {});
  run();
  client_.reset();
  ::setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem", 1);
  client();
  ::unsetenv("SSL_CERT_FILE");
  auto bad = fetch(server.localhost_url("/y"));
  run();
  EXPECT_EQ(bad->result.error.code, Errc::tls_verify) << bad->result.error.message();
  EXPECT_NE(bad->result.error.message().find("/nonexistent/bundle.pem"), std::string::npos)
      << bad->result.error.message();
  EXPECT_NE(bad->result.error.message().find("SSL_CERT_FILE"), std::string::npos);
}

TEST_F(TlsTest, AnotherCaFileDoesNotTrustTheServer) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  ClientOptions o;
  o.ca_file = certs().other_ca_cert;
  client(o);
  auto out = fetch(server.localhost_url("/x"));
  run();
  EXPECT_EQ(out->result.error.code, Errc::tls_verify);
}

TEST_F(TlsTest, MissingCaFileIsAnErrorAtCreate) {
  ClientOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  auto c = Client::create(&loop_, o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/nonexistent/ca.pem"), std::string::npos);
}

// A CA bundle is read block by block: blocks that are not base64, or not a certificate
// mbedTLS can use, are passed over and the others still trusted (system bundles carry a few).
TEST_F(TlsTest, CaBundleWithUnusableBlocksTrustsTheRest) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  std::string dir = make_temp_dir("uvget-ca");
  std::string bundle = dir + "/bundle.pem";
  {
    std::ofstream out(bundle);
    out << "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
        << "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
        << read_file(certs().other_ca_cert) << read_file(certs().ca_cert);
  }
  ClientOptions o;
  o.ca_file = bundle;
  client(o);
  auto out = fetch(server.url("/x"));
  run();
  EXPECT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(out->body, "tls /x");
  remove_tree(dir);
}

// A file with no usable certificate at all, or one too large to be a bundle (/dev/zero), is an
// error when the client is made, naming it.
TEST_F(TlsTest, CaFileWithoutAUsableCertificateIsAnErrorAtCreate) {
  std::string dir = make_temp_dir("uvget-ca");
  std::string bad = dir + "/bad.pem", empty = dir + "/empty.pem";
  { std::ofstream(bad) << "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n"; }
  { std::ofstream(empty) << "nothing here\n"; }
  for (const std::string& f : {bad, empty, std::string("/dev/zero")}) {
    ClientOptions o;
    o.ca_file = f;
    auto c = Client::create(&loop_, o);
    ASSERT_FALSE(c) << f;
    EXPECT_EQ(c.error().code, Errc::tls_verify);
    EXPECT_NE(c.error().message().find(f), std::string::npos) << c.error().message();
  }
  remove_tree(dir);
}

// A CA certificate in DER (not PEM) is accepted too.
TEST_F(TlsTest, DerCaFileIsTrusted) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  std::string dir = make_temp_dir("uvget-ca");
  std::string der = dir + "/ca.der";
  auto conv =
      run_command({"openssl", "x509", "-in", certs().ca_cert, "-outform", "DER", "-out", der});
  ASSERT_TRUE(conv.ok()) << conv.err;
  ClientOptions o;
  o.ca_file = der;
  client(o);
  auto out = fetch(server.url("/x"));
  run();
  EXPECT_TRUE(out->result.ok()) << out->result.error.message();
  remove_tree(dir);
}

TEST_F(TlsTest, InsecureModeAcceptsAnyCertificate) {
  TestServer server(echo(), TlsServerFiles{certs().expired_cert, certs().expired_key});
  ClientOptions o;
  o.tls_verify = false;
  client(o);
  auto out = fetch(server.url("/x"));
  run();
  EXPECT_TRUE(out->result.ok()) << out->result.error.message();
}

TEST_F(TlsTest, SessionsAreResumedAcrossConnections) {
  TestServer server(
      [](const RecordedRequest& r) {
        return Script().pause_ms(20).send(http_response(200, r.target));
      },
      TlsServerFiles{certs().good_cert, certs().good_key});
  ClientOptions o = trusting();
  o.max_connections = 8;
  o.max_per_host = 8;
  client(o);
  std::vector<std::shared_ptr<Outcome>> all;
  for (int i = 0; i < 40; ++i) all.push_back(fetch(server.localhost_url("/r" + std::to_string(i))));
  run();
  for (auto& x : all) ASSERT_TRUE(x->result.ok()) << x->result.error.message();
  auto st = client().stats();
  EXPECT_EQ(st.connections_opened, 8u);
  EXPECT_EQ(st.tls_full_handshakes, 1u) << "every connection after the first should resume";
  EXPECT_EQ(st.tls_resumed_handshakes, 7u);
  EXPECT_EQ(server.tls_handshakes(), 8);
  EXPECT_EQ(server.tls_resumed_handshakes(), 7);
}

// ---- The verified-chain cache ---------------------------------------------------------------

// A leaf for "localhost" signed by the test CA, valid from an hour ago until `seconds` from now:
// PEM files in `dir` (mbedTLS writes it; openssl's CLI cannot end a certificate within seconds).
TlsServerFiles short_lived_leaf(const TestCerts& c, const std::string& dir, int seconds) {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, nullptr, 0);
  mbedtls_pk_context ca_key, key;
  mbedtls_x509_crt ca;
  mbedtls_pk_init(&ca_key);
  mbedtls_pk_init(&key);
  mbedtls_x509_crt_init(&ca);
  EXPECT_EQ(mbedtls_pk_parse_keyfile(&ca_key, c.ca_key.c_str(), nullptr), 0);
  EXPECT_EQ(mbedtls_x509_crt_parse_file(&ca, c.ca_cert.c_str()), 0);
  mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random, &drbg);
  auto stamp = [](std::time_t t) {
    char buf[16];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
    return std::string(buf);
  };
  std::time_t now = std::time(nullptr);
  mbedtls_x509write_cert w;
  mbedtls_x509write_crt_init(&w);
  mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w, &key);
  mbedtls_x509write_crt_set_issuer_key(&w, &ca_key);
  mbedtls_x509write_crt_set_subject_name(&w, "CN=localhost");
  char issuer[256];
  mbedtls_x509_dn_gets(issuer, sizeof issuer, &ca.subject);
  mbedtls_x509write_crt_set_issuer_name(&w, issuer);
  mbedtls_mpi serial;
  mbedtls_mpi_init(&serial);
  mbedtls_mpi_lset(&serial, static_cast<mbedtls_mpi_sint>(now));
  mbedtls_x509write_crt_set_serial(&w, &serial);
  mbedtls_x509write_crt_set_validity(&w, stamp(now - 3600).c_str(), stamp(now + seconds).c_str());
  mbedtls_x509write_crt_set_basic_constraints(&w, 0, -1);
  // subjectAltName: SEQUENCE { [2] "localhost" }
  const unsigned char san[] = {0x30, 0x0b, 0x82, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};
  mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san,
                                      sizeof san);
  unsigned char pem[4096];
  EXPECT_EQ(mbedtls_x509write_crt_pem(&w, pem, sizeof pem, mbedtls_ctr_drbg_random, &drbg), 0);
  TlsServerFiles files{dir + "/short.crt", dir + "/short.key"};
  { std::ofstream(files.cert) << reinterpret_cast<const char*>(pem); }
  EXPECT_EQ(mbedtls_pk_write_key_pem(&key, pem, sizeof pem), 0);
  { std::ofstream(files.key) << reinterpret_cast<const char*>(pem); }
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&w);
  mbedtls_x509_crt_free(&ca);
  mbedtls_pk_free(&key);
  mbedtls_pk_free(&ca_key);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return files;
}

// Hosts that present the same chain cost one chain verification; the host name is still checked
// on every connection.
TEST_F(TlsTest, OneChainServingSeveralHostsIsVerifiedOnceAndNamesAreStillChecked) {
  TestServer server(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  ClientOptions o = trusting();
  // Three origins on one server (no session crosses origins): two the leaf names, one not.
  o.resolve_overrides = {{"other.test", {"127.0.0.1"}}};
  client(o);
  std::string port = std::to_string(server.port());
  auto a = fetch("https://localhost:" + port + "/a");
  run();
  auto b = fetch("https://127.0.0.1:" + port + "/b");
  auto c = fetch("https://other.test:" + port + "/c");
  run();
  ASSERT_TRUE(a->result.ok()) << a->result.error.message();
  ASSERT_TRUE(b->result.ok()) << b->result.error.message();
  EXPECT_EQ(c->result.error.code, Errc::tls_verify) << c->result.error.message();
  EXPECT_NE(c->result.error.message().find("does not match the host 'other.test'"),
            std::string::npos)
      << c->result.error.message();
  auto st = client().stats();
  EXPECT_EQ(st.tls_full_handshakes, 2u);
  EXPECT_EQ(st.tls_chains_verified, 1u);
  EXPECT_EQ(st.tls_chain_cache_hits, 2u);
}

// A different chain is verified on its own, and a chain that failed is never taken as verified.
TEST_F(TlsTest, AChangedChainIsVerifiedAgainAndAFailedOneIsNeverCached) {
  TestServer good(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  TestServer self(echo(), TlsServerFiles{certs().self_signed_cert, certs().self_signed_key});
  client(trusting());
  auto a = fetch(good.localhost_url("/a"));
  auto s1 = fetch(self.localhost_url("/s1"));
  run();
  auto s2 = fetch(self.url("/s2"));  // another origin, the same untrusted chain
  run();
  ASSERT_TRUE(a->result.ok()) << a->result.error.message();
  for (auto& s : {s1, s2}) {
    EXPECT_EQ(s->result.error.code, Errc::tls_verify) << s->result.error.message();
    EXPECT_NE(s->result.error.message().find("not trusted"), std::string::npos);
  }
  auto st = client().stats();
  EXPECT_EQ(st.tls_chains_verified, 3u);
  EXPECT_EQ(st.tls_chain_cache_hits, 0u);
}

// The dates are checked on every connection: a chain verified while valid fails once it has
// expired, although its signatures are cached.
TEST_F(TlsTest, AnExpiredCertificateFailsEvenWhenItsChainIsCached) {
  std::string dir = make_temp_dir("uvget-short-leaf");
  TlsServerFiles leaf = short_lived_leaf(certs(), dir, 2);
  TestServer server(echo(), leaf), twin(echo(), leaf);
  client(trusting());
  auto first = fetch(server.localhost_url("/first"));
  run();
  ASSERT_TRUE(first->result.ok()) << first->result.error.message();
  run_for(3500);  // past its end
  // Another origin (no session to resume) presenting the same chain for the same name.
  auto later = fetch(twin.localhost_url("/later"));
  run();
  EXPECT_EQ(later->result.error.code, Errc::tls_verify) << later->result.error.message();
  EXPECT_TRUE(later->result.error.message().ends_with(
      "/later: TLS certificate check failed: certificate expired"))
      << later->result.error.message();
  auto st = client().stats();
  EXPECT_EQ(st.tls_chains_verified, 1u);
  EXPECT_EQ(st.tls_chain_cache_hits, 1u);
  remove_tree(dir);
}

TEST_F(TlsTest, CloseNotifyEndsACloseDelimitedBody) {
  TestServer server(TlsServerFiles{certs().good_cert, certs().good_key});
  server.route("/clean",
               Script().send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it").close());
  server.route("/cut",
               Script().send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of it").cut());
  client(trusting());
  auto clean = fetch(server.localhost_url("/clean"));
  auto cut = fetch(server.localhost_url("/cut"));
  run();
  ASSERT_TRUE(clean->result.ok()) << clean->result.error.message();
  EXPECT_EQ(clean->body, "all of it");
  EXPECT_EQ(cut->result.error.code, Errc::connection_closed) << cut->result.error.message();
  EXPECT_NE(cut->result.error.message().find("close_notify"), std::string::npos)
      << cut->result.error.message();
}

TEST_F(TlsTest, TruncatedLengthBodyOverTlsIsAnError) {
  TestServer server(TlsServerFiles{certs().good_cert, certs().good_key});
  std::string dir = make_temp_dir("uvget-tls");
  server.route(
      "/t", Script()
                .send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + pattern_bytes(40'000))
                .cut());
  client(trusting());
  Request r;
  r.sink = make_file_sink(dir + "/t");
  auto o = fetch(server.localhost_url("/t"), std::move(r));
  run();
  EXPECT_EQ(o->result.error.code, Errc::connection_closed) << o->result.error.message();
  EXPECT_FALSE(exists(dir + "/t"));
  EXPECT_FALSE(exists(dir + "/t.part"));
  remove_tree(dir);
}

TEST_F(TlsTest, LargeBodyWithBackpressureIsIntact) {
  TestServer server(TlsServerFiles{certs().good_cert, certs().good_key});
  std::string body = pattern_bytes(6 * 1024 * 1024, 21);
  server.route("/big", Script().send(http_response(200, body)));
  std::string dir = make_temp_dir("uvget-tls");
  FileSinkOptions fo;
  fo.high_water = 32 * 1024;
  fo.low_water = 8 * 1024;
  client(trusting());
  Request r;
  r.sink = make_file_sink(dir + "/big", fo);
  auto o = fetch(server.localhost_url("/big"), std::move(r));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  std::string got = read_file(dir + "/big");
  EXPECT_EQ(got.size(), body.size()) << "status " << o->result.status << " bytes "
                                     << o->result.bytes << " url " << o->result.final_url;
  std::size_t first = 0;
  while (first < got.size() && first < body.size() && got[first] == body[first]) ++first;
  EXPECT_TRUE(got == body) << "first difference at byte " << first;
  remove_tree(dir);
}

TEST_F(TlsTest, RedirectFromHttpsToHttpIsRefusedUnlessAllowed) {
  TestServer plain(echo());
  TestServer secure(TlsServerFiles{certs().good_cert, certs().good_key});
  secure.route("/down",
               Script().send(http_response(302, "", {{"Location", plain.url("/landed")}})));
  plain.route("/up", Script().send(
                         http_response(302, "", {{"Location", secure.localhost_url("/secure")}})));
  secure.route("/secure", Script().send(http_response(200, "secure")));
  client(trusting());
  auto down = fetch(secure.localhost_url("/down"));
  auto up = fetch(plain.url("/up"));
  run();
  EXPECT_EQ(down->result.error.code, Errc::bad_redirect) << down->result.error.message();
  EXPECT_NE(down->result.error.message().find("https to plain http"), std::string::npos);
  EXPECT_TRUE(plain.requests().empty() || plain.requests()[0].target == "/up");
  ASSERT_TRUE(up->result.ok()) << up->result.error.message();
  EXPECT_EQ(up->body, "secure");

  client_->close([] {});
  run();
  client_.reset();
  ClientOptions allow = trusting();
  allow.allow_https_downgrade = true;
  client(allow);
  auto allowed = fetch(secure.localhost_url("/down"));
  run();
  ASSERT_TRUE(allowed->result.ok()) << allowed->result.error.message();
  EXPECT_EQ(allowed->body, "tls /landed");
}

TEST_F(TlsTest, OneBadServerDoesNotDisturbTheOthers) {
  TestServer good(echo(), TlsServerFiles{certs().good_cert, certs().good_key});
  TestServer bad(echo(), TlsServerFiles{certs().self_signed_cert, certs().self_signed_key});
  TestServer http_only(echo());  // speaks plain HTTP to a TLS client: never answers the hello
  ClientOptions o = trusting();
  o.connect_timeout_ms = 500;  // also bounds the handshake
  client(o);
  std::vector<std::shared_ptr<Outcome>> goods;
  for (int i = 0; i < 10; ++i) goods.push_back(fetch(good.localhost_url("/g" + std::to_string(i))));
  auto b = fetch(bad.localhost_url("/b"));
  auto h = fetch("https://localhost:" + std::to_string(http_only.port()) + "/h");
  run();
  for (auto& g : goods) EXPECT_TRUE(g->result.ok()) << g->result.error.message();
  EXPECT_EQ(b->result.error.code, Errc::tls_verify);
  EXPECT_EQ(h->result.error.code, Errc::tls_handshake) << h->result.error.message();
  EXPECT_NE(h->result.error.message().find("timed out"), std::string::npos)
      << h->result.error.message();
}

class NginxTlsTest : public TlsTest {};

TEST_F(NginxTlsTest, HandshakeFailureNamesTheAlert) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  // A TLS 1.3-only server refuses mbedTLS 2.28's TLS 1.2 hello with an alert.
  std::string root = make_temp_dir("uvget-www");
  {
    Nginx nginx(root, "", TlsFiles{certs().good_cert, certs().good_key, true, "TLSv1.3"});
    ASSERT_TRUE(nginx.ok()) << nginx.error();
    client(trusting());
    auto o = fetch(nginx.url("/x"));
    run();
    EXPECT_EQ(o->result.error.code, Errc::tls_handshake) << o->result.error.message();
    EXPECT_NE(o->result.error.message().find("alert 70 protocol_version"), std::string::npos)
        << o->result.error.message();
  }
  remove_tree(root);
}

// nginx takes the key-exchange group the client lists first: that is X25519, the cheapest in
// mbedTLS 2.28 here, not mbedTLS's default P-521, whose key exchange costs 2.5 times the CPU.
TEST_F(NginxTlsTest, KeyExchangeIsX25519WhenTheServerFollowsOurOrder) {
  ASSERT_TRUE(Nginx::available()) << "nginx is needed (scripts/deps test installs it)";
  std::string root = make_temp_dir("uvget-www");
  {
    Nginx nginx(root, "location = /curve { return 200 \"$ssl_curve\"; }",
                TlsFiles{certs().good_cert, certs().good_key, true});
    ASSERT_TRUE(nginx.ok()) << nginx.error();
    client(trusting());
    auto o = fetch(nginx.url("/curve"));
    run();
    ASSERT_TRUE(o->result.ok()) << o->result.error.message();
    EXPECT_EQ(o->body, "X25519");
  }
  remove_tree(root);
}

TEST_F(NginxTlsTest, FilesOverHttpsFromNginxWithTicketsAreIntactAndResumed) {
  if (!Nginx::available()) GTEST_FAIL() << "nginx is needed (scripts/deps test installs it)";
  std::string root = make_temp_dir("uvget-www");
  for (int i = 0; i < 200; ++i)
    std::ofstream(root + "/f" + std::to_string(i), std::ios::binary) << pattern_bytes(4096, i);
  std::ofstream(root + "/big", std::ios::binary) << pattern_bytes(8 * 1024 * 1024, 99);
  {
    Nginx nginx(root, "", TlsFiles{certs().good_cert, certs().good_key, true});
    ASSERT_TRUE(nginx.ok()) << nginx.error();
    ClientOptions o = trusting();
    o.max_connections = 16;
    o.max_per_host = 16;
    client(o);
    std::vector<std::shared_ptr<Outcome>> all;
    for (int i = 0; i < 200; ++i) all.push_back(fetch(nginx.url("/f" + std::to_string(i))));
    auto big = fetch(nginx.url("/big"));
    run();
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(all[i]->result.ok()) << all[i]->result.error.message();
      ASSERT_EQ(all[i]->body, pattern_bytes(4096, i));
    }
    ASSERT_TRUE(big->result.ok()) << big->result.error.message();
    EXPECT_TRUE(big->body == pattern_bytes(8 * 1024 * 1024, 99));
    auto st = client().stats();
    EXPECT_EQ(st.tls_full_handshakes, 1u);
    EXPECT_EQ(st.tls_resumed_handshakes + st.tls_full_handshakes, st.connections_opened);
  }
  remove_tree(root);
}

}  // namespace
}  // namespace uvget::test
