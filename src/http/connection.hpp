// Connection: one TCP connection to one origin, running one request/response exchange at a time.
// Owns its uv_tcp_t and uv_timer_t and frees itself after their close callbacks; it does not
// own the exchange (the transfer) nor decide about pooling (the client does).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

#include "http/response_parser.hpp"
#include "net/resolver.hpp"
#include "tls/tls.hpp"
#include "url.hpp"

namespace uvget {

class Connection;

/// What a connection needs from the client that owns it.
struct ConnectionOwner {
  virtual Resolver& resolver() = 0;
  virtual const ClientOptions& options() const = 0;
  /// The one read buffer every connection of this loop shares: a read is consumed before the
  /// next one starts, so one buffer serves them all.
  virtual uv_buf_t read_buffer() = 0;
  /// Where decrypted bytes land, shared the same way.
  virtual uv_buf_t plain_buffer() = 0;
  /// The client's TLS context, or an error saying why there is none (no CA bundle...).
  virtual Result<TlsContext*> tls() = 0;
  virtual void tls_handshake_done(bool resumed) = 0;
  virtual void connection_established(Connection& c) = 0;
  /// `c` stops being usable now (closed by anyone); drop it from pools and counts.
  virtual void connection_closing(Connection& c) = 0;
  /// Every handle of `c` is closed; `c` is deleted right after this returns.
  virtual void connection_freed(Connection& c) = 0;
  /// This pass of the loop has spent its time slice on reads: later reads wait for the next
  /// pass (defer), so the host's timers and handles get their turn.
  virtual bool slice_spent() const = 0;
  virtual bool slicing() const = 0;  // a slice is set at all
  virtual void charge_slice(std::uint64_t ns) = 0;
  /// Calls c.resume_after_slice() on a later pass.
  virtual void defer(Connection& c) = 0;
  /// Bytes a read may take now under the rate limit (SIZE_MAX without one; 0: wait), and the
  /// bytes a read took.
  virtual std::size_t read_allowance() = 0;
  virtual void charge_bytes(std::size_t n) = 0;
  /// `c` raised its SO_RCVLOWAT: the owner calls c.relax_wakeups() if it then goes quiet.
  virtual void watch_wakeups(Connection& c) = 0;

 protected:
  ~ConnectionOwner() = default;
};

/// One request/response on a connection, seen from the transfer.
struct Exchange {
  virtual void on_exchange_head(Response& head) = 0;
  virtual void on_exchange_body(std::span<const std::byte> bytes) = 0;
  /// Exactly once per exchange, last. `retry_safe`: the request went over a reused connection
  /// and no byte of a response came back, so it may be repeated on a fresh connection.
  virtual void on_exchange_done(const Error& error, bool retry_safe) = 0;

 protected:
  ~Exchange() = default;
};

class Connection final : private ResponseParser::Handler {
 public:
  enum class State { resolving, connecting, handshaking, ready, busy, parked, closing };

  /// Starts resolving and connecting at once; begin() may be called before that completes.
  static Connection* open(uv_loop_t* loop, ConnectionOwner& owner, const Url& url);

  /// Sends `request` and reports the response to `exchange`. The connection must be ready or
  /// still connecting, with no exchange.
  void begin(Exchange* exchange, std::string request, bool head_request);
  /// Stops reading until resume_reading() (backpressure). The idle timer stops too.
  void pause_reading();
  void resume_reading();
  /// The exchange is over and the connection can carry another: keep it in the background.
  void park();
  /// Closes now. The exchange, if any, is not called back.
  void close();
  /// Reads again after the owner's slice for a pass was spent (see ConnectionOwner::defer).
  void resume_after_slice();

  bool reusable() const noexcept { return reusable_; }
  bool paused() const noexcept { return paused_; }
  State state() const noexcept { return state_; }
  const std::string& origin() const noexcept { return origin_; }
  std::uint64_t requests() const noexcept { return requests_; }
  std::uint64_t last_activity() const noexcept { return last_activity_; }
  /// Back to waking for every byte (a stream that went quiet must not keep bytes in the kernel).
  void relax_wakeups() {
    wake_watched_ = false;
    set_rcvlowat(1);
  }
  std::uint64_t parked_at() const noexcept { return parked_at_; }

 private:
  Connection(uv_loop_t* loop, ConnectionOwner& owner, const Url& url);
  ~Connection() = default;

  void start_resolve();
  void on_resolved(int status, std::shared_ptr<const AddressList> addresses);
  void try_next_address();
  void on_connected(uv_connect_t* req, int status);
  void on_connect_timeout();
  void connect_failed(const Error& error);
  void start_tls();
  void drive_handshake();
  struct HandshakeJob;
  static void on_handshake_step_cb(uv_work_t* req, int status) noexcept;
  void after_handshake_step(TlsSession::Step step);
  void handshake_read_failed(int status);
  void end_lead();
  void established();
  void start_exchange_io();
  void write_request();
  void send_bytes(std::string bytes);
  void flush_tls();
  void process(const char* data, std::size_t len);
  void drain_tls();
  void handle_eof();
  void on_write_done(int status);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_read_now(ssize_t nread, const uv_buf_t* buf);
  void tune_wakeups(std::size_t last_read);
  void set_rcvlowat(int bytes);
  void on_timer();
  void arm_timer(std::uint64_t ms);
  void finish_exchange(const Error& error);
  void fail_exchange(Errc code, std::string detail);
  void close_tcp();
  void handle_closed();

  void on_response_head(Response& head) override;
  void on_response_body(std::span<const std::byte> bytes) override;

  static void on_alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_connect_cb(uv_connect_t* req, int status) noexcept;
  static void on_write_cb(uv_write_t* req, int status) noexcept;
  static void on_timer_cb(uv_timer_t* t) noexcept;
  static void on_close_cb(uv_handle_t* h) noexcept;

  uv_loop_t* loop_;
  ConnectionOwner& owner_;
  const std::string origin_;
  const std::string host_;
  const std::uint16_t port_;
  const bool https_;
  State state_ = State::resolving;
  uv_timer_t timer_{};                // connect, idle or keep-alive timeout, by state
  uv_tcp_t* tcp_ = nullptr;           // the current attempt's handle; non-null from connecting on
  int live_handles_ = 0;              // handles not yet through their close callback
  std::uint64_t resolve_ticket_ = 0;  // non-zero while a lookup is pending
  std::shared_ptr<const AddressList> addresses_;  // set once resolved
  std::size_t next_address_ = 0;                  // index of the address to try next
  Error last_connect_error_;
  ResponseParser parser_;
  std::unique_ptr<TlsSession> tls_;  // non-null from the TLS handshake on (https only)
  int rcvlowat_ = 1;                 // SO_RCVLOWAT now set on the socket
  bool wake_watched_ = false;        // listed by the owner's watch_wakeups()
  bool slice_deferred_ = false;      // reading stopped until the owner's next pass
  HandshakeJob* tls_job_ = nullptr;  // a handshake step running on the threadpool
  std::string tls_pending_;          // ciphertext that arrived while it ran
  bool tls_again_ = false;           // and so the handshake must run once more
  int tls_eof_ = 0;                  // the read error or EOF that came while it ran
  bool tls_waiting_ = false;         // waiting for another connection's full handshake to resume it
  bool tls_leading_ = false;         // this connection's full handshake is the one others wait for
  bool tls_closed_ = false;          // the server sent close_notify
  Exchange* exchange_ = nullptr;     // non-null from begin() until on_exchange_done
  std::string pending_request_;      // waits here while connecting
  bool head_request_ = false;
  bool reading_ = false;   // uv_read_start is in effect
  bool paused_ = false;    // the exchange asked to stop reading
  bool reusable_ = false;  // the last response allows another request on this connection
  bool reused_ = false;    // the current exchange is not the connection's first
  std::uint64_t requests_ = 0;
  std::uint64_t last_activity_ = 0;  // uv_now of the last byte read or written
  std::uint64_t parked_at_ = 0;
  std::uint64_t timer_ms_ = 0;  // what the idle timer is measuring against
};

}  // namespace uvget
