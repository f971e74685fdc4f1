// Client: many concurrent HTTP/1.1 downloads on an event loop that the host application owns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

struct uv_loop_s;

namespace uvget {

struct ClientStats {
  std::uint64_t connections_opened = 0;  // TCP connections established
  std::uint64_t connect_attempts = 0;    // TCP connects begun (several per connection when
                                         // addresses fail or race, Happy Eyeballs)
  std::uint64_t requests_sent = 0;
  std::uint64_t requests_reused = 0;  // requests sent over a kept-alive connection
  std::uint64_t dns_lookups = 0;      // names looked up (DNS questions or getaddrinfo calls)
  std::uint64_t dns_cache_hits = 0;   // answered from the cache or a lookup already running
  std::uint64_t transfers_done = 0;
  std::uint64_t transfers_failed = 0;
  std::uint64_t body_bytes = 0;
  std::uint64_t tls_full_handshakes = 0;
  std::uint64_t tls_resumed_handshakes = 0;
  /// Certificate chains verified, and chains found already verified (the same chain from
  /// another host or connection: only its dates and name were checked).
  std::uint64_t tls_chains_verified = 0;
  std::uint64_t tls_chain_cache_hits = 0;
  std::size_t tls_sessions_kept = 0;  // origins with a TLS session kept for resumption now
  std::size_t origins_tracked = 0;    // origins the client holds any state for now
  std::size_t active = 0;             // transfers on a connection now
  std::size_t queued = 0;             // transfers waiting for a connection
  std::size_t open_connections = 0;
};

/// What Client and Runner both are: downloads queued from a loop the host owns, reported on
/// that loop. Code that takes either (the command line does) holds a Downloader.
class UVGET_EXPORT Downloader {
 public:
  virtual ~Downloader();
  /// Queues a download. On success `on_done` is called exactly once, on the host loop, never
  /// before get() returns. On error no callback is ever called.
  virtual Result<TransferId> get(Request request, Callbacks callbacks) = 0;
  /// Fails the transfer with Errc::cancelled (on a later tick). Unknown or finished ids are
  /// ignored.
  virtual void cancel(TransferId id) = 0;
  /// Cancels every transfer, releases everything on the host loop, then calls `on_closed` once.
  virtual void close(std::function<void()> on_closed) = 0;
  virtual ClientStats stats() const = 0;
};

/// Runs on a loop that the host owns and runs; call every method from that loop's thread only.
/// Never calls uv_run, never starts threads, never blocks the loop, never touches loop->data.
/// Idle keep-alive connections do not keep the loop alive (their handles are unreferenced).
class UVGET_EXPORT Client final : public Downloader {
 public:
  static Result<std::unique_ptr<Client>> create(uv_loop_s* loop, ClientOptions options = {});
  /// Closes what is left as close() would, without a callback; handles are freed on later ticks
  /// of the loop, so the host runs the loop once more before uv_loop_close().
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Queues a download. On success `on_done` is called exactly once, never before get() returns.
  /// On error no callback is ever called.
  Result<TransferId> get(Request request, Callbacks callbacks) override;
  /// Fails the transfer with Errc::cancelled (on a later tick). Unknown or finished ids are
  /// ignored.
  void cancel(TransferId id) override;
  /// Cancels every transfer, closes every handle, then calls `on_closed` once. After that the
  /// loop holds nothing of this client and uv_loop_close() succeeds.
  void close(std::function<void()> on_closed) override;

  ClientStats stats() const override;
  const ClientOptions& options() const;

  struct Impl;

 private:
  friend class Runner;  // hands its workers' clients the other loops for split downloads
  explicit Client(Impl* impl);
  Impl* impl_;  // owned; frees itself once its last handle is closed
};

}  // namespace uvget
