// Connection: one TCP connection to one origin, running one request/response exchange at a time,
// or, pipelined, several whose requests went out before the first response ended. Owns its uv_tcp_t
// and uv_timer_t and frees itself after their close callbacks; it does not own the exchange (the
// transfer) nor decide about pooling (the client does).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>

#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

#include "http/response_parser.hpp"
#include "net/resolver.hpp"
#include "net/tcp_connect.hpp"
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
  /// `n` TCP connects were begun for one connection (Happy Eyeballs may race several).
  virtual void count_connect_attempts(std::size_t n) = 0;
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
  /// The response of an abandoned exchange was read to its end and thrown away, and no
  /// exchange is left: park `c` or close it, as after any exchange.
  virtual void release(Connection& c) = 0;
  /// A read callback of any of the owner's connections is running (nested calls count).
  virtual void read_began() = 0;
  virtual void read_ended() = 0;
  virtual bool reading() const = 0;
  /// Calls c.flush_pipelined() once this pass's reads are all handled, so that the requests
  /// pipelined meanwhile leave in one write per connection.
  virtual void flush_after_reads(Connection& c) = 0;

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
  /// Instead of on_exchange_done, for a pipelined request: the connection ended before a byte of
  /// its response came, so it may be sent again and the try does not count. `server_broke`: the
  /// server dropped pipelined requests without saying so (no `Connection: close`), so pipelining
  /// to it is not safe.
  virtual void on_exchange_unanswered(bool server_broke) = 0;
  /// Body bytes the exchange takes now without pausing (a read for it is cut to this, or 16 KiB).
  virtual std::size_t body_room() const { return SIZE_MAX; }

 protected:
  ~Exchange() = default;
};

class Connection final : private ResponseParser::Handler {
 public:
  enum class State { resolving, connecting, handshaking, ready, busy, parked, closing };

  /// Starts resolving and connecting at once; begin() may be called before that completes.
  static Connection* open(uv_loop_t* loop, ConnectionOwner& owner, const Url& url);

  /// Sends `request` and reports the response to `exchange`. The connection must be ready or
  /// still connecting, with no exchange; or busy, when can_pipeline(): then the request goes
  /// out now and its response is read after the ones before it.
  void begin(Exchange* exchange, std::string request, bool head_request);
  /// Another request may go out behind the `in_flight()` ones, keeping at most `depth`: the
  /// connection has kept alive once, is not paused, and the response being read is not a large
  /// one (the requests behind would wait for all of it).
  bool can_pipeline(std::size_t depth) const noexcept;
  std::size_t in_flight() const noexcept { return (exchange_ ? 1 : 0) + behind_.size(); }
  /// `exchange`'s response is the one being read (not one still waiting behind).
  bool answering(const Exchange* exchange) const noexcept { return exchange_ == exchange; }
  /// `exchange` wants no more of its response. The one being read closes the connection (its
  /// requests behind are unanswered); one behind it has its response read and thrown away.
  void abandon(Exchange* exchange);
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
  /// Sends the pipelined requests that wait (see ConnectionOwner::flush_after_reads).
  void flush_pipelined();
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
  void on_resolved(const Error& error, std::shared_ptr<const AddressList> addresses);
  void on_connected(uv_tcp_t* tcp, const Error& error);
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
  void pipeline_request(std::string request);
  void next_exchange();
  void on_read_inner(ssize_t nread, const uv_buf_t* buf);
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
  std::unique_ptr<TcpConnect> connect_;           // while connecting
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
  struct Behind {
    Exchange* exchange;  // a no-op exchange once abandoned
    bool head_request;
  };
  std::deque<Behind> behind_;    // pipelined: requests sent, responses after exchange_'s
  std::string pipelined_out_;    // plain requests pipelined during a read, sent as it ends
  bool in_read_ = false;         // inside on_read_now: TLS output waits for its end
  bool flush_listed_ = false;    // the owner will call flush_pipelined()
  bool pipelined_ = false;       // exchange_'s request went out before the previous response ended
  bool kept_alive_ = false;      // a response has left this connection usable for another
  bool server_broke_ = false;    // the server dropped pipelined requests unannounced
  std::string pending_request_;  // waits here while connecting
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
