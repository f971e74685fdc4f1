// Connection: one connection to one origin. It resolves the host, connects (Happy Eyeballs over
// its addresses), builds the stream chain (TCP, then TLS for https), and carries an
// Http1Session over it: one exchange at a time, or several pipelined. It owns its timer and its
// stream and frees itself once both are closed; it does not own the exchanges (the transfers)
// nor decide about pooling (the client does).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include <uvget/client.hpp>
#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

#include "http/http1_session.hpp"
#include "net/read_budget.hpp"
#include "net/resolver.hpp"
#include "net/stream.hpp"
#include "net/tcp_connect.hpp"
#include "tls/tls.hpp"
#include "url.hpp"

namespace uvget {

class Connection;
class TlsStream;

/// What a connection needs from the client that owns it.
struct ConnectionOwner {
  virtual Resolver& resolver() = 0;
  virtual const ClientOptions& options() const = 0;
  virtual ReadBudget& budget() = 0;
  /// The client's TLS context, or an error saying why there is none (no CA bundle...).
  virtual Result<TlsContext*> tls() = 0;
  /// Connects begun (Happy Eyeballs may race several for one connection), handshakes made.
  virtual ClientStats& counters() = 0;
  /// `c` is connected, and its TLS handshake done.
  virtual void connection_established(Connection& c) = 0;
  /// `c` stops being usable now (closed by anyone); drop it from pools and counts.
  virtual void connection_closing(Connection& c) = 0;
  /// Every handle of `c` is closed; `c` is deleted right after this returns.
  virtual void connection_freed(Connection& c) = 0;
  /// The response of an abandoned exchange was read to its end and thrown away, and no
  /// exchange is left: park `c` or close it, as after any exchange.
  virtual void release(Connection& c) = 0;
  /// Calls c.flush_pipelined() once this pass's reads are all handled, so that the requests
  /// pipelined meanwhile leave in one write per connection.
  virtual void flush_after_reads(Connection& c) = 0;

 protected:
  ~ConnectionOwner() = default;
};

class Connection final : private Http1Session::Link, private Stream::Handler {
 public:
  enum class State { resolving, connecting, handshaking, ready, busy, parked, closing };

  /// Nothing happens before the first begin(), which starts resolving and connecting.
  static Connection* open(uv_loop_t* loop, ConnectionOwner& owner, const Url& url);

  /// Sends `request` and reports the response to `exchange`. The connection must be ready,
  /// parked or still connecting, with no exchange; or busy, when can_pipeline(): then the
  /// request goes out now and its response is read after the ones before it.
  void begin(Exchange* exchange, std::string request, bool head_request);
  /// Another request may go out behind the in_flight() ones (see Http1Session::can_pipeline),
  /// and the connection is not paused.
  bool can_pipeline(std::size_t depth) const noexcept {
    return state_ == State::busy && !paused_ && session_.can_pipeline(depth);
  }
  std::size_t in_flight() const noexcept { return session_.in_flight(); }
  /// `exchange`'s response is the one being read (not one still waiting behind).
  bool answering(const Exchange* exchange) const noexcept {
    return session_.answering() == exchange;
  }
  /// `exchange` wants no more of its response (see Http1Session::abandon).
  void abandon(Exchange* exchange) { session_.abandon(exchange); }
  /// Stops reading until resume_reading() (backpressure). The idle timer stops too.
  void pause_reading();
  void resume_reading();
  /// The exchange is over and the connection can carry another: keep it in the background.
  void park();
  /// Closes now. The exchange, if any, is not called back; those behind it go unanswered.
  void close();
  /// Sends the pipelined requests that wait (see ConnectionOwner::flush_after_reads).
  void flush_pipelined();

  bool reusable() const noexcept { return session_.reusable(); }
  bool paused() const noexcept { return paused_; }
  State state() const noexcept { return state_; }
  const std::string& origin() const noexcept { return origin_; }
  std::uint64_t requests() const noexcept { return session_.requests(); }
  std::uint64_t parked_at() const noexcept { return parked_at_; }

 private:
  Connection(uv_loop_t* loop, ConnectionOwner& owner, const Url& url);
  ~Connection() = default;

  void start_resolve();
  void on_resolved(const Error& error, std::shared_ptr<const AddressList> addresses);
  void on_connected(uv_tcp_t* tcp, const Error& error);
  void on_handshake(const Error& error);
  void connect_failed(const Error& error);
  void established();
  void start_exchange_io();
  void close_stream();
  void on_timer();
  void arm_timer(std::uint64_t ms);
  void handle_closed();

  // Http1Session::Link
  void exchange_ending() override;
  void next_response() override;
  void must_close() override { close(); }
  void released() override { owner_.release(*this); }

  // Stream::Handler
  void on_stream_data(const char* data, std::size_t n) override;
  void on_stream_eof(bool clean) override;
  void on_stream_error(Stream::Fault fault, const Error& error) override;
  ReadWant read_want() const override;
  void on_stream_closed() override { handle_closed(); }

  static void on_timer_cb(uv_timer_t* t) noexcept;
  static void on_close_cb(uv_handle_t* h) noexcept;

  uv_loop_t* loop_;
  ConnectionOwner& owner_;
  const std::string origin_;
  const std::string host_;
  const std::uint16_t port_;
  const bool https_;
  State state_ = State::resolving;
  uv_timer_t timer_{};                // connect, handshake, idle or keep-alive timeout, by state
  int live_handles_ = 0;              // the timer and the stream, until their close callbacks
  std::uint64_t resolve_ticket_ = 0;  // non-zero while a lookup is pending
  std::shared_ptr<const AddressList> addresses_;  // set once resolved
  std::unique_ptr<TcpConnect> connect_;           // while connecting
  Stream* stream_ = nullptr;                      // the top of the chain, once connected
  TlsStream* tls_ = nullptr;                      // its TLS layer, for https
  Http1Session session_;
  bool paused_ = false;              // the exchange asked to stop reading
  bool flush_listed_ = false;        // the owner will call flush_pipelined()
  std::uint64_t last_activity_ = 0;  // uv_now of the last byte read or written
  std::uint64_t parked_at_ = 0;
  std::uint64_t timer_ms_ = 0;  // what the timer is measuring against
};

}  // namespace uvget
