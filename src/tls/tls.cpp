// mbedTLS client configuration, the process-wide CA chain, sessions over memory buffers, and
// certificate checks (DNS names by mbedTLS, IP addresses against iPAddress SANs here).
#include "tls/tls.hpp"

#include <mbedtls/chachapoly.h>
#include <mbedtls/error.h>
#include <mbedtls/gcm.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace uvget {
namespace {

constexpr const char* kSystemBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",    // Fedora, RHEL
    "/etc/ssl/cert.pem",                   // Alpine, macOS
    "/etc/ssl/ca-bundle.pem",              // openSUSE
};

const char* kAlpn[] = {"http/1.1", nullptr};

std::string mbed_words(int rc) {
  char buf[160];
  mbedtls_strerror(rc, buf, sizeof buf);
  return buf;
}

void free_crt(mbedtls_x509_crt* c) {
  mbedtls_x509_crt_free(c);
  delete c;
}

// The base64 of one PEM block, as DER; false on a character that is not base64. mbedTLS's own
// decoder runs in constant time, which certificates (public) do not need and which cost 3 of the
// 5 ms a start-up spent parsing the system bundle of about 140 certificates.
bool pem_base64(std::string_view text, std::vector<unsigned char>& der) {
  der.clear();
  der.reserve(text.size() / 4 * 3 + 3);
  std::uint32_t acc = 0;
  int bits = 0;
  bool padded = false;
  for (unsigned char c : text) {
    std::uint32_t v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    else if (c == '=') {
      padded = true;
      continue;
    } else
      return false;
    if (padded) return false;  // data after the padding
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      der.push_back(static_cast<unsigned char>(acc >> bits));
    }
  }
  return !der.empty();
}

// Every CERTIFICATE block of a PEM file into crt: the number loaded, 0 with `rc` the last
// error when none did, or -1 when the text holds no PEM certificate (DER, say).
int parse_pem(mbedtls_x509_crt* crt, std::string_view text, int& rc) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  int loaded = 0;
  bool any = false;
  std::vector<unsigned char> der;
  for (std::size_t at = text.find(kBegin); at != std::string_view::npos;
       at = text.find(kBegin, at)) {
    at += kBegin.size();
    std::size_t end = text.find(kEnd, at);
    if (end == std::string_view::npos) break;
    any = true;
    if (!pem_base64(text.substr(at, end - at), der))
      rc = MBEDTLS_ERR_PEM_INVALID_DATA;
    else if (int r = mbedtls_x509_crt_parse_der(crt, der.data(), der.size()); r != 0)
      rc = r;  // bundles often hold a few that mbedTLS does not support: the rest still load
    else
      ++loaded;
    at = end + kEnd.size();
  }
  return any ? loaded : -1;
}

// One parse per file per process; shared (read-only) by every client on every loop.
Result<std::shared_ptr<mbedtls_x509_crt>> load_ca(const std::string& requested) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<mbedtls_x509_crt>> cache;
  std::string path = requested;
  if (path.empty()) {
    for (const char* p : kSystemBundles) {
      if (uv_fs_t req; uv_fs_stat(nullptr, &req, p, nullptr) == 0) {
        uv_fs_req_cleanup(&req);
        path = p;
        break;
      } else {
        uv_fs_req_cleanup(&req);
      }
    }
    if (path.empty())
      return Error(Errc::tls_verify,
                   "no system CA bundle found (install ca-certificates, or "
                   "give a CA file)");
  }
  std::lock_guard lock(mu);
  if (auto it = cache.find(path); it != cache.end())
    if (auto sp = it->second.lock()) return sp;
  auto failed = [&](const std::string& why) {
    return Error(Errc::tls_verify, "cannot load CA certificates from '" + path + "': " + why);
  };
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "rbe")) {
    // Bundles are a few hundred KiB; a bound keeps a device like /dev/zero from filling memory.
    constexpr std::size_t kMaxBundle = 16 << 20;
    char buf[64 * 1024];
    for (std::size_t n; text.size() <= kMaxBundle && (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
      text.append(buf, n);
    bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) return failed("read error");
    if (text.size() > kMaxBundle) return failed("larger than 16 MiB");
  } else {
    return failed(std::error_code(errno, std::generic_category()).message());
  }
  std::shared_ptr<mbedtls_x509_crt> crt(new mbedtls_x509_crt, free_crt);
  mbedtls_x509_crt_init(crt.get());
  int rc = 0;
  int loaded = parse_pem(crt.get(), text, rc);
  if (loaded < 0) {  // not PEM: mbedTLS reads DER (and says what is wrong)
    rc = mbedtls_x509_crt_parse(crt.get(), reinterpret_cast<const unsigned char*>(text.data()),
                                text.size());
    loaded = rc == 0 && crt->version != 0 ? 1 : 0;
  }
  if (loaded == 0) return failed(rc < 0 ? mbed_words(rc) : "no certificate in it");
  cache[path] = crt;
  return crt;
}

bool ip_bytes(const std::string& host, unsigned char out[16], std::size_t& len) {
  if (uv_inet_pton(AF_INET, host.c_str(), out) == 0) {
    len = 4;
    return true;
  }
  if (uv_inet_pton(AF_INET6, host.c_str(), out) == 0) {
    len = 16;
    return true;
  }
  return false;
}

// The ciphersuites we offer, fastest first on the machines measured (see bench/RESULTS.md);
// mbedTLS drops the ones its build lacks.
std::vector<int> cipher_order() {
  const char* names[] = {
      "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
      "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
      "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
      "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
      "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
      "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
  };
  std::vector<int> ids;
  for (const char* n : names)
    if (int id = mbedtls_ssl_get_ciphersuite_id(n); id != 0) ids.push_back(id);
  for (const int* d = mbedtls_ssl_list_ciphersuites(); *d; ++d) {
    bool dup = false;
    for (int id : ids) dup = dup || id == *d;
    if (!dup) ids.push_back(*d);
  }
  ids.push_back(0);
  return ids;
}

// The ECDHE groups we offer, in order: mbedTLS's default puts the largest curves first, and a
// server that follows the client's order (nginx does, by default) then picks P-521, whose key
// exchange costs mbedTLS 2.5 times P-256's here (4.5 against 1.8 ms of CPU per full handshake).
// X25519 first (a client's ECDHE costs mbedTLS 2.28 1.6-1.7 ms with it against 1.8-2.0 with
// P-256, and a full handshake about 5 % less CPU: bench/RESULTS.md), then P-256 and P-384; every
// other curve mbedTLS has stays after them, since the list also bounds the server certificate's
// curve.
std::vector<mbedtls_ecp_group_id> curve_order() {
  std::vector<mbedtls_ecp_group_id> ids;
  auto add = [&](mbedtls_ecp_group_id id) {
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return;
    for (const mbedtls_ecp_group_id* d = mbedtls_ecp_grp_id_list(); *d != MBEDTLS_ECP_DP_NONE; ++d)
      if (*d == id) ids.push_back(id);  // only what this build of mbedTLS has
  };
  for (auto id : {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1})
    add(id);
  for (const mbedtls_ecp_group_id* d = mbedtls_ecp_grp_id_list(); *d != MBEDTLS_ECP_DP_NONE; ++d)
    add(*d);
  ids.push_back(MBEDTLS_ECP_DP_NONE);
  return ids;
}

const char* alert_name(int a) {
  switch (a) {
    case 10:
      return "unexpected_message";
    case 20:
      return "bad_record_mac";
    case 40:
      return "handshake_failure";
    case 42:
      return "bad_certificate";
    case 43:
      return "unsupported_certificate";
    case 44:
      return "certificate_revoked";
    case 45:
      return "certificate_expired";
    case 46:
      return "certificate_unknown";
    case 47:
      return "illegal_parameter";
    case 48:
      return "unknown_ca";
    case 50:
      return "decode_error";
    case 51:
      return "decrypt_error";
    case 70:
      return "protocol_version";
    case 71:
      return "insufficient_security";
    case 80:
      return "internal_error";
    case 112:
      return "unrecognized_name";
    case 120:
      return "no_application_protocol";
  }
  return "alert";
}

}  // namespace

std::string describe_verify_flags(std::uint32_t flags) {
  std::string out;
  auto add = [&](std::uint32_t bit, const char* words) {
    if (flags & bit) out += std::string(out.empty() ? "" : ", ") + words;
  };
  add(MBEDTLS_X509_BADCERT_NOT_TRUSTED,
      "certificate issuer not trusted (unknown CA or self-signed)");
  add(MBEDTLS_X509_BADCERT_EXPIRED, "certificate expired");
  add(MBEDTLS_X509_BADCERT_FUTURE, "certificate not yet valid");
  add(MBEDTLS_X509_BADCERT_CN_MISMATCH, "certificate name does not match the host");
  add(MBEDTLS_X509_BADCERT_REVOKED, "certificate revoked");
  add(MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE,
      "certificate not valid for a TLS server");
  add(MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY,
      "certificate uses a weak or unsupported algorithm");
  add(MBEDTLS_X509_BADCERT_MISSING, "no certificate");
  add(MBEDTLS_X509_BADCERT_SKIP_VERIFY, "verification skipped");
  add(MBEDTLS_X509_BADCERT_OTHER, "certificate rejected");
  if (out.empty()) out = "certificate rejected (flags " + std::to_string(flags) + ")";
  return out;
}

// ---- TlsContext ---------------------------------------------------------------------------

Result<std::unique_ptr<TlsContext>> TlsContext::create(const TlsSettings& settings) {
  std::unique_ptr<TlsContext> c(new TlsContext);
  c->verify_ = settings.verify;
  c->max_sessions_ = std::max<std::size_t>(1, settings.max_sessions);
  mbedtls_entropy_init(&c->entropy_);
  mbedtls_ctr_drbg_init(&c->drbg_);
  mbedtls_ssl_config_init(&c->conf_);
  c->initialised_ = true;
  static const unsigned char kPersonal[] = "uvget";
  if (int rc = mbedtls_ctr_drbg_seed(&c->drbg_, mbedtls_entropy_func, &c->entropy_, kPersonal,
                                     sizeof kPersonal - 1);
      rc != 0)
    return Error(Errc::tls_handshake, "cannot seed the TLS random generator: " + mbed_words(rc));
  if (int rc =
          mbedtls_ssl_config_defaults(&c->conf_, MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
      rc != 0)
    return Error(Errc::tls_handshake, "TLS configuration: " + mbed_words(rc));
  mbedtls_ssl_conf_rng(&c->conf_, mbedtls_ctr_drbg_random, &c->drbg_);
  mbedtls_ssl_conf_min_version(&c->conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_alpn_protocols(&c->conf_, kAlpn);
  mbedtls_ssl_conf_session_tickets(&c->conf_, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
  static const std::vector<int> ciphers = cipher_order();
  mbedtls_ssl_conf_ciphersuites(&c->conf_, ciphers.data());
  static const std::vector<mbedtls_ecp_group_id> curves = curve_order();
  mbedtls_ssl_conf_curves(&c->conf_, curves.data());
  // mbedTLS parses the chain but does not verify it: handshake() does, through verify_chain()
  // and its cache, and check_peer() reports every failure in words. Nothing is sent before
  // check_peer() passes.
  mbedtls_ssl_conf_authmode(&c->conf_, MBEDTLS_SSL_VERIFY_NONE);
  if (c->verify_ && settings.ca_file.empty()) {
    c->ca_later_ = true;  // see ensure_ca()
    // OpenSSL's variable for another system bundle (containers, company CAs); read here, on the
    // thread that makes the client, not on the threadpool.
    if (const char* env = std::getenv("SSL_CERT_FILE"); env && *env) c->ca_env_ = env;
  } else if (!settings.ca_file.empty()) {
    // A file the user named is read now, so that a wrong one is an error before any download.
    auto ca = load_ca(settings.ca_file);
    if (!ca) {
      if (c->verify_) return ca.error();
    } else {
      c->ca_ = *ca;
      mbedtls_ssl_conf_ca_chain(&c->conf_, c->ca_.get(), nullptr);
    }
  }
  return c;
}

namespace {

bool time_before(const mbedtls_x509_time& a, const mbedtls_x509_time& b) {
  auto key = [](const mbedtls_x509_time& t) {
    return std::tuple(t.year, t.mon, t.day, t.hour, t.min, t.sec);
  };
  return key(a) < key(b);
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 6125: a DNS name from a certificate matches `host` exactly (without case), or as
// "*.rest" when host is one more label in front of "rest".
bool name_matches(std::string_view pattern, std::string_view host) {
  if (iequal(pattern, host)) return true;
  if (!pattern.starts_with("*.")) return false;
  auto dot = host.find('.');
  return dot != std::string_view::npos && dot > 0 && iequal(pattern.substr(1), host.substr(dot));
}

// The leaf names `host`: its subjectAltName dNSNames when it has any, else its CN; an IP host
// against its iPAddress names (`ip` of `ip_len` bytes), never a CN.
bool leaf_names_host(const mbedtls_x509_crt* leaf, const std::string& host, const unsigned char* ip,
                     std::size_t ip_len) {
  bool any_dns = false;
  for (const mbedtls_x509_sequence* s = &leaf->subject_alt_names; s && s->buf.p; s = s->next) {
    std::string_view v(reinterpret_cast<const char*>(s->buf.p), s->buf.len);
    if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)) {
      any_dns = true;
      if (!ip_len && name_matches(v, host)) return true;
    } else if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && ip_len &&
               s->buf.len == ip_len && std::memcmp(s->buf.p, ip, ip_len) == 0) {
      return true;
    }
  }
  if (any_dns || ip_len) return false;
  for (const mbedtls_x509_name* n = &leaf->subject; n; n = n->next)
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
        name_matches(std::string_view(reinterpret_cast<const char*>(n->val.p), n->val.len), host))
      return true;
  return false;
}

}  // namespace

std::uint32_t TlsContext::verify_chain(const mbedtls_x509_crt* chain, const std::string& host) {
  if (!chain || !chain->raw.p) return MBEDTLS_X509_BADCERT_MISSING;
  // The exact bytes presented, each certificate length-prefixed.
  mbedtls_sha256_context sha;
  mbedtls_sha256_init(&sha);
  mbedtls_sha256_starts_ret(&sha, 0);
  for (const mbedtls_x509_crt* c = chain; c && c->raw.p; c = c->next) {
    auto len = static_cast<std::uint32_t>(c->raw.len);
    mbedtls_sha256_update_ret(&sha, reinterpret_cast<const unsigned char*>(&len), sizeof len);
    mbedtls_sha256_update_ret(&sha, c->raw.p, c->raw.len);
  }
  std::string key(32, '\0');
  mbedtls_sha256_finish_ret(&sha, reinterpret_cast<unsigned char*>(key.data()));
  mbedtls_sha256_free(&sha);

  std::uint32_t flags = 0;
  Validity valid{};
  bool cached = false;
  {
    std::lock_guard lock(chains_mutex_);
    if (auto it = chains_.find(key); it != chains_.end()) {
      valid = it->second;
      cached = true;
    }
  }
  if (cached) {
    ++chain_hits_;
    if (mbedtls_x509_time_is_past(&valid.to)) flags |= MBEDTLS_X509_BADCERT_EXPIRED;
    if (mbedtls_x509_time_is_future(&valid.from)) flags |= MBEDTLS_X509_BADCERT_FUTURE;
  } else {
    ++chains_verified_;
    // The name is checked below, for DNS names and IP addresses alike.
    mbedtls_x509_crt_verify_with_profile(const_cast<mbedtls_x509_crt*>(chain), ca_.get(), nullptr,
                                         &mbedtls_x509_crt_profile_default, nullptr, &flags,
                                         nullptr, nullptr);
    if (flags == 0) {
      valid = {chain->valid_from, chain->valid_to};
      for (const mbedtls_x509_crt* c = chain->next; c && c->raw.p; c = c->next) {
        if (time_before(valid.from, c->valid_from)) valid.from = c->valid_from;
        if (time_before(c->valid_to, valid.to)) valid.to = c->valid_to;
      }
      std::lock_guard lock(chains_mutex_);
      if (chains_.size() >= kMaxChains) {  // the oldest half goes
        for (std::size_t i = 0; i < chain_order_.size() / 2; ++i) chains_.erase(chain_order_[i]);
        chain_order_.erase(
            chain_order_.begin(),
            chain_order_.begin() + static_cast<std::ptrdiff_t>(chain_order_.size() / 2));
      }
      if (chains_.emplace(key, valid).second) chain_order_.push_back(key);
    }
  }
  unsigned char ip[16];
  std::size_t ip_len = 0;
  if (!ip_bytes(host, ip, ip_len)) ip_len = 0;
  if (!leaf_names_host(chain, host, ip, ip_len)) flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  return flags;
}

Error TlsContext::ensure_ca() {
  if (!ca_later_) return {};
  std::call_once(ca_once_, [this] {
    auto ca = load_ca(ca_env_);
    if (!ca) {
      ca_error_ = ca.error();
      if (!ca_env_.empty()) ca_error_.detail += " (named by SSL_CERT_FILE)";
      return;
    }
    ca_ = *ca;
    mbedtls_ssl_conf_ca_chain(&conf_, ca_.get(), nullptr);
  });
  return ca_error_;
}

TlsContext::~TlsContext() {
  if (!initialised_) return;
  origins_.clear();
  mbedtls_ssl_config_free(&conf_);
  mbedtls_ctr_drbg_free(&drbg_);
  mbedtls_entropy_free(&entropy_);
}

const mbedtls_ssl_session* TlsContext::session_for(const std::string& origin) const {
  auto it = origins_.find(origin);
  return it == origins_.end() ? nullptr : it->second.session.get();
}

void TlsContext::save_session(const std::string& origin, const mbedtls_ssl_context* ssl) {
  auto* s = new mbedtls_ssl_session;
  mbedtls_ssl_session_init(s);
  if (mbedtls_ssl_get_session(ssl, s) != 0) {
    mbedtls_ssl_session_free(s);
    delete s;
    return;
  }
  OriginState& st = origins_[origin];
  if (st.session) session_lru_.erase(st.lru);
  st.session = {s, [](mbedtls_ssl_session* p) {
                  mbedtls_ssl_session_free(p);
                  delete p;
                }};
  session_lru_.push_front(origin);
  st.lru = session_lru_.begin();
  if (session_lru_.size() > max_sessions_) forget_session(session_lru_.back());
}

void TlsContext::forget_session(const std::string& origin) {
  auto it = origins_.find(origin);
  if (it == origins_.end() || !it->second.session) return;
  session_lru_.erase(it->second.lru);
  it->second.session.reset();
  drop_if_unused(it);
}

void TlsContext::drop_if_unused(std::unordered_map<std::string, OriginState>::iterator it) {
  if (!it->second.session && !it->second.leading && it->second.waiters.empty()) origins_.erase(it);
}

bool TlsContext::wait_for_leader(const std::string& origin, std::uint64_t token,
                                 std::function<void()> go) {
  auto it = origins_.find(origin);
  if (it == origins_.end() || !it->second.leading) return false;
  it->second.waiters.push_back({token, std::move(go)});
  return true;
}

void TlsContext::lead(const std::string& origin) {
  origins_[origin].leading = true;
}

void TlsContext::leader_done(const std::string& origin) {
  auto it = origins_.find(origin);
  if (it == origins_.end()) return;
  it->second.leading = false;
  auto waiters = std::move(it->second.waiters);
  it->second.waiters.clear();
  if (waiters.empty()) return drop_if_unused(it);
  for (auto& w : waiters) w.go();  // each may lead or wait again: state is consistent here
  if (auto again = origins_.find(origin); again != origins_.end()) drop_if_unused(again);
}

void TlsContext::cancel_wait(const std::string& origin, std::uint64_t token) {
  auto it = origins_.find(origin);
  if (it == origins_.end()) return;
  std::erase_if(it->second.waiters, [token](const Waiter& w) { return w.token == token; });
  drop_if_unused(it);
}

// ---- TlsSession ---------------------------------------------------------------------------

TlsSession::TlsSession(TlsContext& ctx, const std::string& host) : ctx_(ctx), host_(host) {
  mbedtls_ssl_init(&ssl_);
  unsigned char ip[16];
  std::size_t len = 0;
  host_is_ip_ = ip_bytes(host, ip, len);
  if (int rc = mbedtls_ssl_setup(&ssl_, ctx.conf()); rc != 0) {
    fail(rc, "setup");
    return;
  }
  // SNI and the name check take DNS names only; an IP address is checked in check_peer().
  if (!host_is_ip_) mbedtls_ssl_set_hostname(&ssl_, host.c_str());
  mbedtls_ssl_set_bio(&ssl_, this, &bio_send, &bio_recv, nullptr);
}

TlsSession::~TlsSession() {
  mbedtls_ssl_free(&ssl_);
}

void TlsSession::offer(const mbedtls_ssl_session* session) {
  if (session) mbedtls_ssl_set_session(&ssl_, session);
}

int TlsSession::bio_send(void* ctx, const unsigned char* buf, std::size_t len) noexcept {
  static_cast<TlsSession*>(ctx)->out_.append(reinterpret_cast<const char*>(buf), len);
  return static_cast<int>(len);
}

int TlsSession::bio_recv(void* ctx, unsigned char* buf, std::size_t len) noexcept {
  auto* self = static_cast<TlsSession*>(ctx);
  std::size_t avail = self->in_.size() - self->in_pos_;
  if (avail == 0) {
    std::size_t view_avail = self->view_len_ - self->view_pos_;
    if (view_avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    std::size_t n = std::min(len, view_avail);
    std::memcpy(buf, self->view_ + self->view_pos_, n);
    self->view_pos_ += n;
    return static_cast<int>(n);
  }
  std::size_t n = std::min(len, avail);
  std::memcpy(buf, self->in_.data() + self->in_pos_, n);
  self->in_pos_ += n;
  if (self->in_pos_ == self->in_.size()) {
    self->in_.clear();
    self->in_pos_ = 0;
  }
  return static_cast<int>(n);
}

bool TlsSession::has_buffered_input() const {
  return in_.size() > in_pos_ || view_pos_ < view_len_ || mbedtls_ssl_get_bytes_avail(&ssl_) > 0 ||
         mbedtls_ssl_check_pending(&ssl_) != 0;
}

void TlsSession::fail(int rc, const char* during) {
  if (error_) return;
  std::string what = std::string("TLS ") + during + " failed: " + mbed_words(rc);
  if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && ssl_.in_msg)
    what += " (server sent alert " + std::to_string(ssl_.in_msg[1]) + " " +
            alert_name(ssl_.in_msg[1]) + ")";
  error_ = Error(Errc::tls_handshake, what);
}

TlsSession::Step TlsSession::handshake() {
  if (error_) return Step::failed;
  if (Error e = ctx_.ensure_ca()) {
    error_ = std::move(e);
    return Step::failed;
  }
  // Step by step (what mbedtls_ssl_handshake() does) to see the states pass: a full handshake
  // reads the server's Certificate, a resumed one goes from ServerHello to ChangeCipherSpec.
  int rc = 0;
  while (ssl_.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
    rc = mbedtls_ssl_handshake_step(&ssl_);
    if (ssl_.state == MBEDTLS_SSL_SERVER_CERTIFICATE) full_handshake_ = true;
    if (rc != 0) break;
  }
  if (rc == 0) {
    resumed_ = !full_handshake_;
    // A resumed session's chain was verified when it was first made, for this origin.
    if (ctx_.verify() && !resumed_)
      verify_flags_ = ctx_.verify_chain(mbedtls_ssl_get_peer_cert(&ssl_), host_);
    return Step::done;
  }
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Step::want_io;
  fail(rc, "handshake");
  return Step::failed;
}

Error TlsSession::check_peer() const {
  if (!ctx_.verify() || verify_flags_ == 0) return {};
  std::string words = describe_verify_flags(verify_flags_);
  if (verify_flags_ & MBEDTLS_X509_BADCERT_CN_MISMATCH) words += " '" + host_ + "'";
  return Error(Errc::tls_verify, "TLS certificate check failed: " + words);
}

TlsSession::ReadResult TlsSession::read(char* buf, std::size_t len) {
  using Kind = ReadResult::Kind;
  int rc = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(buf), len);
  if (rc > 0) return {Kind::data, static_cast<std::size_t>(rc)};
  // Only close_notify ends the stream. The socket's EOF reaches the connection separately (the
  // receive callback never reports 0), so a truncated stream is never mistaken for an end.
  if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return {Kind::closed};
  if (rc == 0) return {Kind::want_more};
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return {Kind::want_more};
  // TLS 1.2 servers may send a new session ticket or a renegotiation request: neither is data.
  if (rc == MBEDTLS_ERR_SSL_CLIENT_RECONNECT) return {Kind::want_more};
  fail(rc, "read");
  error_ = Error(Errc::connection_reset, error_.detail);
  return {Kind::failed};
}

bool TlsSession::write(const char* data, std::size_t len) {
  std::size_t done = 0;
  while (done < len) {
    int rc =
        mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(data + done), len - done);
    if (rc > 0) {
      done += static_cast<std::size_t>(rc);
      continue;
    }
    // The outgoing buffer takes everything, so mbedTLS has no reason to ask to wait here.
    fail(rc, "write");
    return false;
  }
  return true;
}

void TlsSession::close_notify() {
  mbedtls_ssl_close_notify(&ssl_);
}

}  // namespace uvget
