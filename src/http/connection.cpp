// Resolve, connect, build the stream chain, and carry the HTTP/1 session over it: its output
// written, what is read fed to it, the stream's end and failures told to it, and the timers
// that bound each phase.
#include "http/connection.hpp"

#include "net/tcp_stream.hpp"
#include "tls/tls_stream.hpp"
#include "trace.hpp"
#include "uv/util.hpp"

namespace uvget {

Connection::Connection(uv_loop_t* loop, ConnectionOwner& owner, const Url& url)
    : loop_(loop),
      owner_(owner),
      origin_(url.origin()),
      host_(url.host),
      port_(url.port),
      https_(url.is_https()),
      session_(*this, owner.options().max_header_bytes, owner.options().max_header_count) {}

Connection* Connection::open(uv_loop_t* loop, ConnectionOwner& owner, const Url& url) {
  auto* c = new Connection(loop, owner, url);
  uv_timer_init(loop, &c->timer_);  // cannot fail for a valid loop
  c->timer_.data = c;
  c->live_handles_ = 1;
  return c;
}

void Connection::begin(Exchange* exchange, std::string request, bool head_request) {
  session_.submit(exchange, request, head_request);
  switch (state_) {
    case State::busy:
      // Pipelined: requests made while reads are being handled leave together once they are
      // all done.
      if (owner_.budget().reading()) {
        if (!flush_listed_) {
          flush_listed_ = true;
          owner_.flush_after_reads(*this);
        }
        return;
      }
      flush_pipelined();
      break;
    case State::resolving:
      arm_timer(owner_.options().connect_timeout_ms);  // covers the lookup too
      start_resolve();
      break;
    case State::connecting:
    case State::handshaking:
      break;  // start_exchange_io() runs once connected
    case State::ready:
    case State::parked:
      start_exchange_io();
      break;
    case State::closing:
      break;  // the client never does this
  }
}

void Connection::flush_pipelined() {
  flush_listed_ = false;
  if (!stream_ || state_ == State::closing) {
    session_.take_output();
    return;
  }
  if (session_.has_output()) stream_->write(session_.take_output());
}

void Connection::start_resolve() {
  resolve_ticket_ = owner_.resolver().resolve(
      host_, port_, [this](const Error& error, std::shared_ptr<const AddressList> addresses) {
        on_resolved(error, std::move(addresses));
      });
}

void Connection::on_resolved(const Error& error, std::shared_ptr<const AddressList> addresses) {
  resolve_ticket_ = 0;
  if (state_ == State::closing) return;
  if (error) return connect_failed(error);
  addresses_ = std::move(addresses);
  state_ = State::connecting;
  uv_timer_stop(&timer_);  // each attempt has its own deadline
  connect_ = std::make_unique<TcpConnect>(
      loop_, addresses_, owner_.options().connect_timeout_ms,
      owner_.options().happy_eyeballs_delay_ms,
      [this](uv_tcp_t* tcp, const sockaddr_storage&, const Error& why) { on_connected(tcp, why); });
  connect_->start();  // may report at once
}

void Connection::on_connected(uv_tcp_t* tcp, const Error& error) {
  owner_.counters().connect_attempts += connect_->attempts();
  connect_.reset();  // it is done with us; no member of it is touched after this callback
  if (!tcp) return connect_failed(error);
  stream_ = new TcpStream(tcp, owner_.budget());
  stream_->set_handler(this);
  ++live_handles_;
  if (!https_) return established();
  auto ctx = owner_.tls();
  if (!ctx) return connect_failed(ctx.error());
  arm_timer(owner_.options().connect_timeout_ms);  // a fresh budget for the handshake
  state_ = State::handshaking;
  tls_ = new TlsStream(loop_, stream_, **ctx, host_, origin_, owner_.budget());
  stream_ = tls_;
  tls_->set_handler(this);
  tls_->handshake([this](const Error& e) { on_handshake(e); });
}

void Connection::on_handshake(const Error& error) {
  if (state_ != State::handshaking) return;
  if (error) return connect_failed(error);
  ++(tls_->resumed() ? owner_.counters().tls_resumed_handshakes
                     : owner_.counters().tls_full_handshakes);
  established();
}

void Connection::established() {
  uv_timer_stop(&timer_);
  state_ = State::ready;
  owner_.connection_established(*this);
  if (session_.answering()) start_exchange_io();
}

void Connection::connect_failed(const Error& error) {
  uv_timer_stop(&timer_);
  state_ = State::ready;
  Error e = error;
  bool address_specific = e.code == Errc::connect || e.code == Errc::connect_timeout;
  if (address_specific && addresses_ && addresses_->size() > 1)
    e.detail += " (tried " + std::to_string(addresses_->size()) + " addresses)";
  session_.fail(e);
}

void Connection::start_exchange_io() {
  state_ = State::busy;
  paused_ = false;
  stream_->ref(true);
  uv_ref(as_handle(&timer_));
  last_activity_ = uv_now(loop_);
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
  stream_->read_start();
  if (state_ != State::busy) return;  // failed to start reading
  stream_->write(session_.take_output());
}

void Connection::on_stream_data(const char* data, std::size_t n) {
  last_activity_ = uv_now(loop_);
  if (state_ != State::busy && state_ != State::parked) return;
  session_.receive(data, n, stream_ && stream_->has_buffered_input());
}

void Connection::on_stream_eof(bool clean) {
  if (state_ == State::busy) return session_.on_eof(clean);
  if (state_ == State::parked) close();  // the server closed an idle connection
}

void Connection::on_stream_error(Stream::Fault fault, const Error& error) {
  if (state_ == State::parked) return close();
  if (state_ != State::busy) return;
  switch (fault) {
    case Stream::Fault::reading:
      return session_.fail(
          Error(error.code, "connection error " + session_.where() + ": " + error.detail));
    case Stream::Fault::writing:
      return session_.fail(Error(error.code, "sending the request: " + error.detail));
    case Stream::Fault::protocol:
      return session_.fail(error);
  }
}

ReadWant Connection::read_want() const {
  Exchange* ex = session_.answering();
  if (state_ != State::busy || !ex) return {};
  return {true, ex->body_room(), session_.identity_body_left()};
}

void Connection::exchange_ending() {
  if (state_ != State::busy) return;
  uv_timer_stop(&timer_);
  state_ = State::ready;
}

// A pipelined response follows: the finished exchange's sink may have paused reading, and this
// one's has room.
void Connection::next_response() {
  last_activity_ = uv_now(loop_);
  if (paused_) {
    paused_ = false;
    if (stream_) stream_->read_start();
  }
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
}

void Connection::pause_reading() {
  UVGET_TRACE("pause %p", static_cast<void*>(this));
  paused_ = true;
  if (stream_ && state_ == State::busy) stream_->read_stop();
  if (state_ == State::busy) uv_timer_stop(&timer_);
}

void Connection::resume_reading() {
  if (!paused_) return;
  paused_ = false;
  if (state_ != State::busy || !stream_) return;
  last_activity_ = uv_now(loop_);
  stream_->read_start();  // records that came before the pause are handed over first
  if (state_ != State::busy || paused_) return;
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
}

void Connection::park() {
  state_ = State::parked;
  paused_ = false;
  parked_at_ = uv_now(loop_);
  stream_->wake_every_byte();  // any byte or EOF on an idle connection must wake us
  stream_->read_start();
  // A parked connection must not keep the host's loop alive.
  stream_->ref(false);
  arm_timer(owner_.options().keepalive_timeout_ms);
  uv_unref(as_handle(&timer_));
}

void Connection::arm_timer(std::uint64_t ms) {
  timer_ms_ = ms;
  uv_timer_start(&timer_, &on_timer_cb, ms, 0);
}

void Connection::on_timer_cb(uv_timer_t* t) noexcept {
  static_cast<Connection*>(t->data)->on_timer();
}

void Connection::on_timer() {
  switch (state_) {
    case State::resolving:
      owner_.resolver().cancel(resolve_ticket_);
      resolve_ticket_ = 0;
      connect_failed(Error(Errc::dns_temporary, "DNS lookup of '" + host_ + "' timed out after " +
                                                    std::to_string(timer_ms_) + " ms"));
      break;
    case State::connecting:
      break;  // TcpConnect times each attempt
    case State::handshaking:
      close_stream();  // gives up its place among the origin's handshakes
      connect_failed(Error(Errc::tls_handshake,
                           "TLS handshake timed out after " + std::to_string(timer_ms_) + " ms"));
      break;
    case State::busy: {
      std::uint64_t idle = uv_now(loop_) - last_activity_;
      if (idle < timer_ms_) {
        uv_timer_start(&timer_, &on_timer_cb, timer_ms_ - idle, 0);
        break;
      }
      std::string where =
          session_.answer_started() ? session_.where() : std::string("waiting for the response");
      session_.fail(
          Error(Errc::idle_timeout, "no data for " + std::to_string(timer_ms_) + " ms " + where));
      break;
    }
    case State::parked:
      close();
      break;
    case State::ready:
    case State::closing:
      break;
  }
}

void Connection::close_stream() {
  if (!stream_) return;
  stream_->close();  // on_stream_closed() follows
  stream_ = nullptr;
  tls_ = nullptr;
}

void Connection::close() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  if (resolve_ticket_) {
    owner_.resolver().cancel(resolve_ticket_);
    resolve_ticket_ = 0;
  }
  connect_.reset();  // attempts still running are closed
  owner_.connection_closing(*this);
  uv_timer_stop(&timer_);
  uv_close(as_handle(&timer_), &on_close_cb);
  close_stream();
  session_.shut();  // the requests pipelined behind go again
}

void Connection::on_close_cb(uv_handle_t* h) noexcept {
  static_cast<Connection*>(h->data)->handle_closed();
}

void Connection::handle_closed() {
  if (--live_handles_ == 0 && state_ == State::closing) {
    owner_.connection_freed(*this);
    delete this;
  }
}

}  // namespace uvget
