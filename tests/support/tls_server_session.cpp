// TlsServerConfig / TlsServerSession implementation on mbedTLS 2.28: memory-buffer BIO callbacks,
// step-wise handshake (to see ssl->handshake->resume before it is freed), read/write loops.
#include "support/tls_server_session.hpp"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_internal.h>  // mbedtls_ssl_handshake_params::resume
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>
#include <stdexcept>

namespace uvget::test {

namespace {

constexpr uint32_t kTicketLifetimeSeconds = 24 * 60 * 60;
constexpr std::size_t kReadChunk = 16384;
constexpr char kPersonalization[] = "uvget TestServer TLS";

// ALPN protocols this server accepts (mbedTLS wants a null-terminated, mutable-pointer array).
const char* alpn_protocols[] = {"http/1.1", nullptr};

std::string error_text(int rc) {
  char text[256];
  mbedtls_strerror(rc, text, sizeof(text));
  char code[32];
  std::snprintf(code, sizeof(code), " (-0x%04x)", static_cast<unsigned>(-rc));
  return std::string(text) + code;
}

void check(int rc, const std::string& what) {
  if (rc != 0) throw std::runtime_error("TlsServerConfig: " + what + ": " + error_text(rc));
}

bool wants_io(int rc) {
  return rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE;
}

}  // namespace

struct TlsServerConfig::Impl {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  mbedtls_ssl_ticket_context tickets;
  mbedtls_ssl_cache_context cache;
  mbedtls_ssl_config conf;

  Impl() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
    mbedtls_ssl_ticket_init(&tickets);
    mbedtls_ssl_cache_init(&cache);
    mbedtls_ssl_config_init(&conf);
  }
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_ssl_cache_free(&cache);
    mbedtls_ssl_ticket_free(&tickets);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&cert);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

struct TlsServerSession::Impl {
  mbedtls_ssl_context ssl;
  std::string input;  // ciphertext not yet taken by mbedTLS, from input_pos
  std::size_t input_pos = 0;
  std::string output;  // records to send
  Status status = Status::kHandshaking;
  bool resumed = false;
  std::string error;
  std::string server_name;

  Impl() { mbedtls_ssl_init(&ssl); }
  ~Impl() { mbedtls_ssl_free(&ssl); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void fail(int rc, const char* during) {
    status = Status::kFailed;
    error = std::string(during) + ": " + error_text(rc);
  }
};

static int on_send(void* context, const unsigned char* buf, size_t len) noexcept {
  auto* impl = static_cast<TlsServerSession::Impl*>(context);
  impl->output.append(reinterpret_cast<const char*>(buf), len);
  return static_cast<int>(len);
}

static int on_recv(void* context, unsigned char* buf, size_t len) noexcept {
  auto* impl = static_cast<TlsServerSession::Impl*>(context);
  std::size_t available = impl->input.size() - impl->input_pos;
  if (available == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  std::size_t n = len < available ? len : available;
  impl->input.copy(reinterpret_cast<char*>(buf), n, impl->input_pos);
  impl->input_pos += n;
  return static_cast<int>(n);
}

// Accepts any name and records it; the session's Impl is the BIO context.
static int on_sni(void*, mbedtls_ssl_context* ssl, const unsigned char* name, size_t len) noexcept {
  static_cast<TlsServerSession::Impl*>(ssl->p_bio)
      ->server_name.assign(reinterpret_cast<const char*>(name), len);
  return 0;
}

// ---- TlsServerConfig ---------------------------------------------------------------------------

TlsServerConfig::TlsServerConfig(const std::string& cert_file, const std::string& key_file)
    : impl_(new Impl) {
  Impl& c = *impl_;
  check(mbedtls_ctr_drbg_seed(&c.drbg, mbedtls_entropy_func, &c.entropy,
                              reinterpret_cast<const unsigned char*>(kPersonalization),
                              sizeof(kPersonalization) - 1),
        "mbedtls_ctr_drbg_seed");
  check(mbedtls_x509_crt_parse_file(&c.cert, cert_file.c_str()), "certificate " + cert_file);
  check(mbedtls_pk_parse_keyfile(&c.key, key_file.c_str(), nullptr), "key " + key_file);
  check(mbedtls_pk_check_pair(&c.cert.pk, &c.key), "key " + key_file + " vs " + cert_file);
  check(mbedtls_ssl_config_defaults(&c.conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT),
        "mbedtls_ssl_config_defaults");
  mbedtls_ssl_conf_rng(&c.conf, mbedtls_ctr_drbg_random, &c.drbg);
  mbedtls_ssl_conf_min_version(&c.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(&c.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  check(mbedtls_ssl_conf_own_cert(&c.conf, &c.cert, &c.key), "mbedtls_ssl_conf_own_cert");
  check(mbedtls_ssl_conf_alpn_protocols(&c.conf, alpn_protocols), "ALPN");
  mbedtls_ssl_conf_sni(&c.conf, on_sni, nullptr);
  check(mbedtls_ssl_ticket_setup(&c.tickets, mbedtls_ctr_drbg_random, &c.drbg,
                                 MBEDTLS_CIPHER_AES_256_GCM, kTicketLifetimeSeconds),
        "mbedtls_ssl_ticket_setup");
  mbedtls_ssl_conf_session_tickets_cb(&c.conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                      &c.tickets);
  mbedtls_ssl_conf_session_cache(&c.conf, &c.cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
}

TlsServerConfig::~TlsServerConfig() = default;

// ---- TlsServerSession --------------------------------------------------------------------------

TlsServerSession::TlsServerSession(TlsServerConfig& config) : impl_(new Impl) {
  int rc = mbedtls_ssl_setup(&impl_->ssl, &config.impl_->conf);
  if (rc != 0) throw std::runtime_error("TlsServerSession: mbedtls_ssl_setup: " + error_text(rc));
  mbedtls_ssl_set_bio(&impl_->ssl, impl_.get(), on_send, on_recv, nullptr);
}

TlsServerSession::~TlsServerSession() = default;

TlsServerSession::Status TlsServerSession::receive(std::string_view ciphertext,
                                                   std::string& plaintext) {
  Impl& s = *impl_;
  if (s.status == Status::kFailed || s.status == Status::kPeerClosed) return s.status;
  s.input.erase(0, s.input_pos);
  s.input_pos = 0;
  s.input.append(ciphertext);

  if (s.status == Status::kHandshaking) {
    // Step by step: the handshake parameters (and their resume flag) are freed at the end.
    while (s.ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
      int rc = mbedtls_ssl_handshake_step(&s.ssl);
      if (s.ssl.handshake != nullptr && s.ssl.handshake->resume != 0) s.resumed = true;
      if (wants_io(rc)) return s.status;
      if (rc != 0) {
        s.fail(rc, "handshake");
        return s.status;
      }
    }
    s.status = Status::kOpen;
  }

  unsigned char buf[kReadChunk];
  while (true) {
    int rc = mbedtls_ssl_read(&s.ssl, buf, sizeof(buf));
    if (rc > 0) {
      plaintext.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(rc));
    } else if (wants_io(rc)) {
      break;
    } else if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      s.status = Status::kPeerClosed;
      break;
    } else {
      s.fail(rc, "read");
      break;
    }
  }
  return s.status;
}

bool TlsServerSession::write(std::string_view plaintext) {
  Impl& s = *impl_;
  if (s.status != Status::kOpen && s.status != Status::kPeerClosed) return false;
  while (!plaintext.empty()) {
    int rc = mbedtls_ssl_write(&s.ssl, reinterpret_cast<const unsigned char*>(plaintext.data()),
                               plaintext.size());
    if (rc <= 0) {
      s.fail(rc, "write");  // the memory BIO never asks to wait: every non-positive is an error
      return false;
    }
    plaintext.remove_prefix(static_cast<std::size_t>(rc));
  }
  return true;
}

void TlsServerSession::close_notify() {
  if (impl_->status == Status::kOpen || impl_->status == Status::kPeerClosed) {
    mbedtls_ssl_close_notify(&impl_->ssl);
  }
}

std::string TlsServerSession::take_output() {
  std::string out = std::move(impl_->output);
  impl_->output.clear();
  return out;
}

TlsServerSession::Status TlsServerSession::status() const {
  return impl_->status;
}

bool TlsServerSession::handshake_complete() const {
  return impl_->ssl.state == MBEDTLS_SSL_HANDSHAKE_OVER;
}

bool TlsServerSession::resumed() const {
  return impl_->resumed;
}

const std::string& TlsServerSession::error() const {
  return impl_->error;
}

const std::string& TlsServerSession::server_name() const {
  return impl_->server_name;
}

std::string TlsServerSession::alpn() const {
  const char* protocol = mbedtls_ssl_get_alpn_protocol(&impl_->ssl);
  return protocol != nullptr ? protocol : "";
}

}  // namespace uvget::test
