// TLS with mbedTLS 2.28 over memory buffers. TlsContext: one client's configuration, DRBG and
// per-origin session cache; the CA chain under it is parsed once per process and shared across
// loops. TlsSession: one connection's mbedtls_ssl_context, fed ciphertext, producing ciphertext.
// No I/O here: the connection moves the bytes.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <uvget/error.hpp>

namespace uvget {

struct TlsSettings {
  bool verify = true;
  std::string ca_file;              // empty: the system bundle
  std::size_t max_sessions = 1024;  // origins whose session is kept for resumption
};

class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> create(const TlsSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const mbedtls_ssl_config* conf() const noexcept { return &conf_; }
  bool verify() const noexcept { return verify_; }
  /// The system CA bundle (or the file SSL_CERT_FILE names, when set: OpenSSL's variable) is
  /// parsed at the first handshake that needs it, on the thread that runs it (the threadpool),
  /// not when the client is made: a list of plain http URLs never pays for it, and no loop
  /// waits for it. Thread-safe; later calls return the first result.
  Error ensure_ca();

  /// A session to resume for `origin`, or null.
  const mbedtls_ssl_session* session_for(const std::string& origin) const;
  void save_session(const std::string& origin, const mbedtls_ssl_context* ssl);
  void forget_session(const std::string& origin);

  /// Resumption needs one full handshake per origin first: while one is running, other new
  /// connections to that origin wait for it (`wait` returns false when none is running: the
  /// caller leads). `done` wakes the waiters; a waiter that gives up calls `cancel_wait`.
  bool wait_for_leader(const std::string& origin, std::uint64_t token, std::function<void()> go);
  void lead(const std::string& origin);
  void leader_done(const std::string& origin);
  void cancel_wait(const std::string& origin, std::uint64_t token);

  /// Verifies the chain a server presented (the leaf first) for `host` against the trust store:
  /// mbedTLS's flags, 0 when trusted. A chain verified once (the same DER, byte for byte) is not
  /// verified again: its signatures are taken from a bounded cache, while its dates and the
  /// host name are checked every time, so hosts sharing a certificate (wildcards, CDNs) cost
  /// one chain verification. Thread-safe (handshakes run on the threadpool).
  std::uint32_t verify_chain(const mbedtls_x509_crt* chain, const std::string& host);
  std::uint64_t chains_verified() const noexcept { return chains_verified_.load(); }
  std::uint64_t chain_cache_hits() const noexcept { return chain_hits_.load(); }
  std::size_t sessions_kept() const noexcept { return session_lru_.size(); }
  std::size_t origins_tracked() const noexcept { return origins_.size(); }

 private:
  TlsContext() = default;
  struct Waiter {
    std::uint64_t token;
    std::function<void()> go;
  };
  struct OriginState {
    std::unique_ptr<mbedtls_ssl_session, void (*)(mbedtls_ssl_session*)> session{nullptr, nullptr};
    bool leading = false;
    std::vector<Waiter> waiters;
    std::list<std::string>::iterator lru;  // valid while session is set
  };
  void drop_if_unused(std::unordered_map<std::string, OriginState>::iterator it);
  struct Validity {  // of a verified chain: every certificate in it is valid from..to
    mbedtls_x509_time from, to;
  };

  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_ssl_config conf_;
  std::shared_ptr<mbedtls_x509_crt> ca_;  // shared with every context that uses the same file
  bool ca_later_ = false;                 // ensure_ca() loads the system bundle
  std::string ca_env_;                    // or this file, from SSL_CERT_FILE
  std::once_flag ca_once_;
  Error ca_error_;  // why ensure_ca() could not load it
  bool verify_ = true;
  bool initialised_ = false;
  // Sessions of at most max_sessions_ origins are kept (the least recently saved go first): a
  // crawl of 100,000 hosts must not keep 100,000 sessions, each with its peer's certificate.
  std::size_t max_sessions_ = 1024;
  std::unordered_map<std::string, OriginState> origins_;  // only origins with something in it
  std::list<std::string> session_lru_;                    // origins with a session, newest first
  static constexpr std::size_t kMaxChains = 4096;
  std::mutex chains_mutex_;
  std::unordered_map<std::string, Validity> chains_;  // SHA-256 of the chain's DER -> dates
  std::vector<std::string> chain_order_;              // insertion order, for eviction
  std::atomic<std::uint64_t> chains_verified_{0}, chain_hits_{0};
};

class TlsSession {
 public:
  enum class Step { done, want_io, failed };

  TlsSession(TlsContext& ctx, const std::string& host);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /// Offers a saved session for resumption. Call before the first handshake().
  void offer(const mbedtls_ssl_session* session);
  /// Advances the handshake with what feed() or append() gave it. failed: see error(). Touches
  /// only this session (and the context's thread-safe DRBG and read-only configuration), so it
  /// may run on a threadpool thread while the loop leaves the session alone.
  Step handshake();
  /// After the handshake: the certificate is trusted and names `host` (DNS names and IPs). The
  /// chain was verified by handshake() itself, on its thread: this only reads the verdict.
  Error check_peer() const;
  bool resumed() const noexcept { return resumed_; }
  const mbedtls_ssl_context* ssl() const noexcept { return &ssl_; }

  /// Ciphertext that stays valid until stash(): read in place, without a copy, when nothing
  /// older is buffered. Call stash() before the bytes go away.
  void feed(const char* data, std::size_t len) {
    view_ = data;
    view_len_ = len;
    view_pos_ = 0;
  }
  /// Copies ciphertext in (the handshake, which may run on another thread than the reads).
  void append(const char* data, std::size_t len) { in_.append(data, len); }
  /// Keeps the unread part of the last feed() for later.
  void stash() {
    if (view_pos_ < view_len_) in_.append(view_ + view_pos_, view_len_ - view_pos_);
    view_ = nullptr;
    view_len_ = view_pos_ = 0;
  }
  /// What a read() gave: `bytes` of plaintext (data), the peer's close_notify (closed), nothing
  /// until more ciphertext comes (want_more), or a failure (failed: see error()).
  struct ReadResult {
    enum class Kind { data, closed, want_more, failed } kind;
    std::size_t bytes = 0;
  };
  ReadResult read(char* buf, std::size_t len);
  /// Encrypts all of `data` into the outgoing buffer.
  bool write(const char* data, std::size_t len);
  void close_notify();
  /// Ciphertext produced so far; the caller sends it and clears it.
  std::string& outgoing() noexcept { return out_; }
  /// Ciphertext received but not yet consumed, or plaintext decrypted but not yet read.
  bool has_buffered_input() const;
  const Error& error() const noexcept { return error_; }

 private:
  static int bio_send(void* ctx, const unsigned char* buf, std::size_t len) noexcept;
  static int bio_recv(void* ctx, unsigned char* buf, std::size_t len) noexcept;
  void fail(int rc, const char* during);

  TlsContext& ctx_;
  mbedtls_ssl_context ssl_;
  std::string host_;
  bool host_is_ip_ = false;
  std::string in_;              // ciphertext not yet consumed by mbedTLS
  std::size_t in_pos_ = 0;      // consumed prefix of in_
  const char* view_ = nullptr;  // borrowed ciphertext from feed(), valid until stash()
  std::size_t view_len_ = 0;
  std::size_t view_pos_ = 0;
  std::string out_;  // ciphertext to send
  bool resumed_ = false;
  bool full_handshake_ = false;     // the server's Certificate was read
  std::uint32_t verify_flags_ = 0;  // verify_chain()'s verdict, set when the handshake ends
  Error error_;
};

/// "certificate expired", "issuer not trusted", ...: verification flags in words.
std::string describe_verify_flags(std::uint32_t flags);

}  // namespace uvget
