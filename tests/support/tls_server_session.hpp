// TlsServerConfig and TlsServerSession: the server side of TLS 1.2 with mbedTLS over memory
// buffers (ciphertext in and out as bytes), with session tickets and a session cache.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace uvget::test {

// What every connection of one server shares: certificate and key, RNG, the session-ticket keys
// and the session cache. ALPN "http/1.1" is accepted when offered. Not thread-safe: create it on
// one thread, then use it and its sessions on one thread only.
class TlsServerConfig {
 public:
  // PEM files. Throws std::runtime_error (with mbedTLS's error text) when they do not load.
  TlsServerConfig(const std::string& cert_file, const std::string& key_file);
  ~TlsServerConfig();
  TlsServerConfig(const TlsServerConfig&) = delete;
  TlsServerConfig& operator=(const TlsServerConfig&) = delete;

  struct Impl;

 private:
  friend class TlsServerSession;
  std::unique_ptr<Impl> impl_;
};

// One connection. Feed it the ciphertext that arrives, send what take_output() returns.
class TlsServerSession {
 public:
  enum class Status {
    kHandshaking,  // needs more ciphertext
    kOpen,         // handshake complete, no close_notify yet
    kPeerClosed,   // the peer sent close_notify
    kFailed,       // a fatal error (error() says which); output may hold an alert to send
  };

  explicit TlsServerSession(TlsServerConfig& config);  // `config` must outlive the session
  ~TlsServerSession();
  TlsServerSession(const TlsServerSession&) = delete;
  TlsServerSession& operator=(const TlsServerSession&) = delete;

  // Takes `ciphertext`, advances the handshake and appends decrypted application data to
  // `plaintext`. Once kFailed or kPeerClosed, further input is ignored.
  Status receive(std::string_view ciphertext, std::string& plaintext);
  // Encrypts application data into the output (only once the handshake is complete).
  bool write(std::string_view plaintext);
  // Queues a close_notify alert.
  void close_notify();
  // The records produced so far (handshake, alerts, application data), in order; clears them.
  std::string take_output();

  Status status() const;
  bool handshake_complete() const;
  bool resumed() const;  // the completed (or running) handshake resumes an earlier session
  const std::string& error() const;
  const std::string& server_name() const;  // SNI sent by the client ("" without)
  std::string alpn() const;                // negotiated ALPN protocol ("" without)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace uvget::test
