// Resolve, connect (next address on failure, timeout per attempt), write the request, feed the
// response to the parser, and decide whether the connection can carry another request.
#include "http/connection.hpp"

#include <sys/socket.h>

#include "trace.hpp"
#include "uv/util.hpp"

namespace uvget {
namespace {

struct WriteReq {
  uv_write_t req{};
  std::string bytes;  // owned until the write callback
};

// Stands in for an abandoned exchange behind others: its response is read and dropped.
struct DiscardExchange final : Exchange {
  void on_exchange_head(Response&) override {}
  void on_exchange_body(std::span<const std::byte>) override {}
  void on_exchange_done(const Error&, bool) override {}
  void on_exchange_unanswered(bool) override {}
};
DiscardExchange discarded;

// A response with more than this still to come is not queued behind: the requests would wait
// for all of it.
constexpr std::uint64_t kPipelineBehindMax = 256 * 1024;

}  // namespace

Connection::Connection(uv_loop_t* loop, ConnectionOwner& owner, const Url& url)
    : loop_(loop),
      owner_(owner),
      origin_(url.origin()),
      host_(url.host),
      port_(url.port),
      https_(url.is_https()),
      parser_(*this, owner.options().max_header_bytes, owner.options().max_header_count) {}

Connection* Connection::open(uv_loop_t* loop, ConnectionOwner& owner, const Url& url) {
  auto* c = new Connection(loop, owner, url);
  uv_timer_init(loop, &c->timer_);  // cannot fail for a valid loop
  c->timer_.data = c;
  c->live_handles_ = 1;
  return c;
}

void Connection::begin(Exchange* exchange, std::string request, bool head_request) {
  if (state_ == State::busy) {
    behind_.push_back({exchange, head_request});
    ++requests_;
    pipeline_request(std::move(request));
    return;
  }
  exchange_ = exchange;
  pending_request_ = std::move(request);
  head_request_ = head_request;
  switch (state_) {
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
    case State::busy:
    case State::closing:
      break;  // the client never does this
  }
}

bool Connection::can_pipeline(std::size_t depth) const noexcept {
  if (state_ != State::busy || !kept_alive_ || paused_ || !exchange_ || in_flight() >= depth)
    return false;
  // Unknown length (chunked, or until close) counts as large once the head is in; a response
  // that ends the connection would leave the request unanswered.
  if (parser_.head_done() && (parser_.identity_body_left() > kPipelineBehindMax ||
                              parser_.identity_body_left() == 0 || parser_.ends_connection()))
    return false;
  return true;
}

void Connection::abandon(Exchange* exchange) {
  if (exchange != exchange_) {
    for (Behind& b : behind_)
      if (b.exchange == exchange) b.exchange = &discarded;
    return;
  }
  close();
}

void Connection::pipeline_request(std::string request) {
  if (tls_) {
    if (!tls_->write(request.data(), request.size())) {
      fail_exchange(Errc::connection_reset, tls_->error().message());
      return;
    }
  } else {
    pipelined_out_ += request;
  }
  if (owner_.reading()) {  // true inside our own read too
    if (!flush_listed_) {
      flush_listed_ = true;
      owner_.flush_after_reads(*this);
    }
    return;
  }
  flush_pipelined();
}

// Requests pipelined while reads were being handled go out together once they are all done.
void Connection::flush_pipelined() {
  flush_listed_ = false;
  if (!tcp_ || state_ == State::closing) {
    pipelined_out_.clear();
    return;
  }
  if (tls_) return flush_tls();
  if (pipelined_out_.empty()) return;
  std::string out = std::move(pipelined_out_);
  pipelined_out_.clear();
  send_bytes(std::move(out));
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
  if (error) {
    connect_failed(error);
    return;
  }
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
  owner_.count_connect_attempts(connect_->attempts());
  connect_.reset();  // it is done with us; no member of it is touched after this callback
  if (!tcp) {
    connect_failed(error);
    return;
  }
  tcp_ = tcp;
  tcp_->data = this;
  ++live_handles_;
  if (https_) {
    arm_timer(owner_.options().connect_timeout_ms);  // a fresh budget for the handshake
    state_ = State::handshaking;
    if (int rc = uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb); rc < 0) {
      connect_failed(Error(Errc::connect, "read: " + uv_words(rc)));
      return;
    }
    reading_ = true;
    start_tls();
    return;
  }
  established();
}

void Connection::established() {
  uv_timer_stop(&timer_);
  state_ = State::ready;
  owner_.connection_established(*this);
  if (exchange_) start_exchange_io();
}

void Connection::start_tls() {
  tls_waiting_ = false;
  if (state_ != State::handshaking) return;
  auto ctx = owner_.tls();
  if (!ctx) {
    connect_failed(ctx.error());
    return;
  }
  TlsContext& tc = **ctx;
  if (!tc.session_for(origin_)) {
    // Another connection is doing the full handshake: wait and resume its session.
    auto token = reinterpret_cast<std::uintptr_t>(this);
    if (tc.wait_for_leader(origin_, token, [this] { start_tls(); })) {
      tls_waiting_ = true;
      return;
    }
    tc.lead(origin_);
    tls_leading_ = true;
  }
  tls_ = std::make_unique<TlsSession>(tc, host_);
  tls_->offer(tc.session_for(origin_));
  drive_handshake();
}

void Connection::end_lead() {
  if (!tls_leading_) return;
  tls_leading_ = false;
  if (auto ctx = owner_.tls()) (*ctx)->leader_done(origin_);
}

// Handshake steps run on the threadpool: a full handshake's key exchange and certificate checks
// cost milliseconds of CPU in mbedTLS, which would hold the host's loop. The step owns the
// session while it runs; bytes arriving meanwhile wait in tls_pending_, and the job counts as a
// live handle, so the connection is not freed under it.
struct Connection::HandshakeJob {
  uv_work_t req{};
  Connection* conn;
  TlsSession* tls;
  TlsSession::Step step = TlsSession::Step::want_io;
};

void Connection::drive_handshake() {
  if (tls_job_) {
    tls_again_ = true;
    return;
  }
  tls_again_ = false;
  auto* job = new HandshakeJob{{}, this, tls_.get()};
  job->req.data = job;
  tls_job_ = job;
  ++live_handles_;
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<HandshakeJob*>(req->data);
        j->step = j->tls->handshake();
      },
      &on_handshake_step_cb);
  if (rc < 0) {
    tls_job_ = nullptr;
    --live_handles_;
    delete job;
    connect_failed(Error(Errc::tls_handshake, "TLS handshake: " + uv_words(rc)));
  }
}

void Connection::on_handshake_step_cb(uv_work_t* req, int) noexcept {
  std::unique_ptr<HandshakeJob> job(static_cast<HandshakeJob*>(req->data));
  Connection* self = job->conn;
  self->tls_job_ = nullptr;
  if (self->state_ != State::handshaking) {
    self->handle_closed();  // closed (or failed) meanwhile: may free the connection
    return;
  }
  --self->live_handles_;  // never the last one: the socket and timer are open while handshaking
  if (!self->tls_pending_.empty()) {
    self->tls_->append(self->tls_pending_.data(), self->tls_pending_.size());
    self->tls_pending_.clear();
  }
  self->after_handshake_step(job->step);
}

void Connection::handshake_read_failed(int status) {
  if (auto ctx = owner_.tls()) (*ctx)->forget_session(origin_);
  end_lead();
  connect_failed(Error(Errc::tls_handshake,
                       "connection closed during the TLS handshake: " + uv_words(status)));
}

void Connection::after_handshake_step(TlsSession::Step step) {
  flush_tls();
  if (state_ != State::handshaking) return;  // a write failed and closed us
  switch (step) {
    case TlsSession::Step::want_io:
      if (tls_again_)
        drive_handshake();  // bytes came while the step ran
      else if (tls_eof_)
        handshake_read_failed(tls_eof_);
      return;
    case TlsSession::Step::failed: {
      Error e = tls_->error();
      if (auto ctx = owner_.tls()) (*ctx)->forget_session(origin_);
      end_lead();
      connect_failed(e);
      return;
    }
    case TlsSession::Step::done:
      if (tls_eof_) return handshake_read_failed(tls_eof_);  // closed right after: useless
      break;
  }
  auto ctx = owner_.tls();
  if (Error e = tls_->check_peer()) {
    (*ctx)->forget_session(origin_);
    end_lead();
    connect_failed(e);
    return;
  }
  UVGET_TRACE("tls %s %s %s", origin_.c_str(), mbedtls_ssl_get_ciphersuite(tls_->ssl()),
              tls_->resumed() ? "resumed" : "full");
  owner_.tls_handshake_done(tls_->resumed());
  (*ctx)->save_session(origin_, tls_->ssl());
  end_lead();  // waiters now resume this session
  if (state_ == State::handshaking) established();
}

void Connection::connect_failed(const Error& error) {
  uv_timer_stop(&timer_);
  state_ = State::ready;
  reusable_ = false;
  Error e = error;
  bool address_specific = e.code == Errc::connect || e.code == Errc::connect_timeout;
  if (address_specific && addresses_ && addresses_->size() > 1)
    e.detail += " (tried " + std::to_string(addresses_->size()) + " addresses)";
  finish_exchange(e);
}

void Connection::start_exchange_io() {
  state_ = State::busy;
  pipelined_ = false;
  reused_ = requests_ > 0;
  ++requests_;
  reusable_ = false;
  paused_ = false;
  parser_.start(head_request_);
  uv_ref(as_handle(tcp_));
  uv_ref(as_handle(&timer_));
  last_activity_ = uv_now(loop_);
  if (!reading_) {
    if (int rc = uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb); rc < 0) {
      fail_exchange(Errc::connection_reset, "read: " + uv_words(rc));
      return;
    }
    reading_ = true;
  }
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
  write_request();
}

void Connection::write_request() {
  if (tls_) {
    std::string req = std::move(pending_request_);
    pending_request_.clear();
    if (!tls_->write(req.data(), req.size())) {
      fail_exchange(Errc::connection_reset, tls_->error().message());
      return;
    }
    flush_tls();
    return;
  }
  send_bytes(std::move(pending_request_));
  pending_request_.clear();
}

void Connection::flush_tls() {
  if (!tls_ || tls_->outgoing().empty()) return;
  std::string out = std::move(tls_->outgoing());
  tls_->outgoing().clear();
  send_bytes(std::move(out));
}

void Connection::send_bytes(std::string bytes) {
  uv_buf_t b = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  int rc = uv_try_write(as_stream(tcp_), &b, 1);
  if (rc == static_cast<int>(bytes.size())) return;
  if (rc < 0 && rc != UV_EAGAIN) {
    on_write_done(rc);
    return;
  }
  auto* w = new WriteReq;
  w->bytes = bytes.substr(rc > 0 ? static_cast<std::size_t>(rc) : 0);
  w->req.data = this;
  uv_buf_t rest = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  if (rc = uv_write(&w->req, as_stream(tcp_), &rest, 1, &on_write_cb); rc < 0) {
    delete w;
    on_write_done(rc);
  }
}

void Connection::on_write_cb(uv_write_t* req, int status) noexcept {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<Connection*>(req->data);
  delete w;
  self->on_write_done(status);
}

void Connection::on_write_done(int status) {
  if (status == UV_ECANCELED) return;
  if (state_ == State::handshaking && status < 0) {
    connect_failed(Error(Errc::tls_handshake, "sending the TLS handshake: " + uv_words(status)));
    return;
  }
  if (state_ != State::busy) return;
  last_activity_ = uv_now(loop_);
  if (status < 0)
    fail_exchange(status == UV_EPIPE || status == UV_ECONNRESET ? Errc::connection_reset
                                                                : Errc::connection_closed,
                  "sending the request: " + uv_words(status));
}

void Connection::on_alloc_cb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<Connection*>(h->data);
  if (self->state_ == State::busy && self->exchange_) {
    std::size_t allowed = self->owner_.read_allowance();
    if (allowed == 0 || self->owner_.slice_spent()) {
      *buf = uv_buf_init(nullptr, 0);  // not now: see on_read
      return;
    }
    *buf = self->owner_.read_buffer();
    if (allowed < buf->len) buf->len = static_cast<unsigned>(allowed);
    // No more than the body's sink takes now: a whole read buffer above its bound would be
    // held in memory (with many large bodies at once, most of the client's memory).
    constexpr std::size_t kMinRead = 16 * 1024;
    if (std::size_t room = std::max(self->exchange_->body_room(), kMinRead); room < buf->len)
      buf->len = static_cast<unsigned>(room);
    return;
  }
  *buf = self->owner_.read_buffer();
}

void Connection::on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  static_cast<Connection*>(s->data)->on_read(nread, buf);
}

// During an exchange, reads are timed against the owner's slice for this pass of the loop. Once
// it is spent, on_alloc_cb hands libuv no buffer, so the socket is not read at all (libuv reports
// UV_ENOBUFS): the connection stops reading and the owner restarts it on the next pass. The bytes
// wait in the kernel, in order, and no copy is made.
void Connection::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == UV_ENOBUFS) {
    if (reading_ && tcp_) {
      uv_read_stop(as_stream(tcp_));
      reading_ = false;
    }
    if (!slice_deferred_) {
      slice_deferred_ = true;
      owner_.defer(*this);
    }
    return;
  }
  if (nread > 0) owner_.charge_bytes(static_cast<std::size_t>(nread));
  if (!owner_.slicing()) return on_read_now(nread, buf);  // no clock reads per read
  std::uint64_t t0 = uv_hrtime();
  on_read_now(nread, buf);
  owner_.charge_slice(uv_hrtime() - t0);
}

void Connection::resume_after_slice() {
  slice_deferred_ = false;
  if (state_ == State::busy && tcp_ && !paused_ && !reading_ &&
      uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb) == 0)
    reading_ = true;
}

void Connection::on_read_now(ssize_t nread, const uv_buf_t* buf) {
  in_read_ = true;
  owner_.read_began();
  on_read_inner(nread, buf);
  owner_.read_ended();
  in_read_ = false;
  if (flush_listed_) return;  // with the owner's flush after the reads
  if (!pipelined_out_.empty() || (tls_ && state_ == State::busy)) flush_pipelined();
}

void Connection::on_read_inner(ssize_t nread, const uv_buf_t* buf) {
  if (state_ == State::parked) {
    close();  // the server closed it, or talks out of turn: never hand this one out
    return;
  }
  if (state_ == State::handshaking) {
    if (nread < 0) {
      // Bytes before it (an alert, say) are still with the step in flight: it speaks first.
      if (tls_job_)
        tls_eof_ = static_cast<int>(nread);
      else
        handshake_read_failed(static_cast<int>(nread));
      return;
    }
    if (tls_) {
      auto n = static_cast<std::size_t>(nread);
      if (tls_job_)
        tls_pending_.append(buf->base, n);  // the session is busy on the threadpool
      else
        tls_->append(buf->base, n);
      drive_handshake();
    }
    return;
  }
  if (state_ != State::busy || !exchange_) {
    if (nread < 0) close();
    return;
  }
  if (nread < 0) {
    if (nread == UV_EOF) {
      handle_eof();
      return;
    }
    std::string where = !parser_.started() ? "before any response"
                        : !parser_.head_done()
                            ? "in the response head"
                            : "after " + std::to_string(parser_.body_bytes()) + " body bytes";
    fail_exchange(nread == UV_ECONNRESET ? Errc::connection_reset : Errc::connection_closed,
                  "connection error " + where + ": " + uv_words(static_cast<int>(nread)));
    return;
  }
  last_activity_ = uv_now(loop_);
  if (tls_) {
    tls_->feed(buf->base, static_cast<std::size_t>(nread));
    drain_tls();
    tls_->stash();  // the read buffer is shared: keep what was not decrypted yet
  } else {
    process(buf->base, static_cast<std::size_t>(nread));
  }
  tune_wakeups(static_cast<std::size_t>(nread));
}

// While a large Content-Length body streams in fast, ask the kernel to wake us only once a good
// amount is waiting (SO_RCVLOWAT), never more than what is left of the body: a reader woken for
// every few kilobytes costs the sender (on loopback, nginx) a wake-up each time, and measured
// 20 % of the rate on a 1 GiB file. A slow read (< 64 KiB) or anything else: back to 1 byte.
void Connection::tune_wakeups(std::size_t last_read) {
  constexpr std::size_t kFastRead = 64 * 1024, kWakeBytes = 128 * 1024;
  int want = 1;
  if (state_ == State::busy && exchange_ && !paused_ && last_read >= kFastRead) {
    std::uint64_t left = parser_.identity_body_left();
    // Over TLS, up to a record of it may already sit decrypted-to-be in the session: only what
    // is surely still to come from the socket counts.
    constexpr std::uint64_t kTlsMargin = 32 * 1024;
    if (tls_) left = left > kTlsMargin ? left - kTlsMargin : 0;
    if (left > 1) want = static_cast<int>(std::min<std::uint64_t>(left, kWakeBytes));
  }
  set_rcvlowat(want);
}

void Connection::set_rcvlowat(int bytes) {
  if (bytes == rcvlowat_ || !tcp_) return;
  uv_os_fd_t fd;
  if (uv_fileno(as_handle(tcp_), &fd) == 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0) {
    rcvlowat_ = bytes;
    if (bytes > 1 && !wake_watched_) {
      wake_watched_ = true;
      owner_.watch_wakeups(*this);
    }
  }
}

void Connection::handle_eof() {
  if (parser_.finish_on_eof() != ResponseParser::Status::complete) {
    finish_exchange(parser_.error());
    return;
  }
  if (tls_ && !tls_closed_) {
    // Only close_notify ends a close-delimited body over TLS: a bare TCP close may be an
    // attacker truncating it.
    fail_exchange(Errc::connection_closed,
                  "TLS stream truncated: the connection closed without close_notify after " +
                      std::to_string(parser_.body_bytes()) + " body bytes");
    return;
  }
  reusable_ = false;
  finish_exchange({});
}

void Connection::drain_tls() {
  uv_buf_t plain = owner_.plain_buffer();
  while (state_ == State::busy && exchange_ && !paused_) {
    auto got = tls_->read(plain.base, plain.len);
    if (!in_read_) flush_tls();  // else at the end of the read, with any pipelined requests
    switch (got.kind) {
      case TlsSession::ReadResult::Kind::data:
        process(plain.base, got.bytes);
        continue;
      case TlsSession::ReadResult::Kind::want_more:
        return;
      case TlsSession::ReadResult::Kind::closed:
        tls_closed_ = true;
        handle_eof();
        return;
      case TlsSession::ReadResult::Kind::failed:
        finish_exchange(tls_->error());
        return;
    }
    return;
  }
}

void Connection::process(const char* data, std::size_t n) {
  std::string carry;  // what follows a pipelined response, kept across its callbacks
  for (;;) {
    auto progress = parser_.feed(data, n);
    if (state_ != State::busy || !exchange_) return;  // closed or cancelled from a callback
    if (progress.status == ResponseParser::Status::need_more) return;
    if (progress.status == ResponseParser::Status::failed) return finish_exchange(parser_.error());
    std::size_t rest = n - progress.consumed;
    if (behind_.empty() || !parser_.keep_alive()) {
      // Bytes after the response were never asked for: the connection is out of step. (With
      // requests behind and `Connection: close`, close() tells them they went unanswered.)
      reusable_ = parser_.keep_alive() && rest == 0 && !(tls_ && tls_->has_buffered_input());
      return finish_exchange({});
    }
    std::string next(data + progress.consumed, rest);  // `data` may point into `carry`
    carry.swap(next);
    next_exchange();
    if (state_ != State::busy || !exchange_ || carry.empty()) return;
    data = carry.data();
    n = carry.size();
  }
}

// The response being read ended and the connection stays: the first request behind it becomes
// the one whose response is read, and the finished exchange is told (it may queue more).
void Connection::next_exchange() {
  Exchange* done = exchange_;
  Behind next = behind_.front();
  behind_.pop_front();
  exchange_ = next.exchange;
  head_request_ = next.head_request;
  pipelined_ = true;
  reused_ = true;
  reusable_ = true;
  kept_alive_ = true;
  parser_.start(head_request_);
  last_activity_ = uv_now(loop_);
  if (paused_) {  // the finished exchange's sink was full; this one's has room
    paused_ = false;
    if (!reading_ && !slice_deferred_ && tcp_ &&
        uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb) == 0)
      reading_ = true;
  }
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
  done->on_exchange_done({}, false);
}

void Connection::on_response_head(Response& head) {
  if (exchange_ == &discarded) {
    // Nobody wants this answer: read it away only when it is small and known; else the
    // connection goes, and the requests behind it are sent again elsewhere.
    auto length = head.content_length();
    if (head_request_ || (length && *length <= kPipelineBehindMax)) return;
    close();
    return;
  }
  if (exchange_) exchange_->on_exchange_head(head);
}

void Connection::on_response_body(std::span<const std::byte> bytes) {
  if (exchange_) exchange_->on_exchange_body(bytes);
}

void Connection::pause_reading() {
  UVGET_TRACE("pause %p", static_cast<void*>(this));
  paused_ = true;
  set_rcvlowat(1);
  if (reading_ && tcp_) {
    uv_read_stop(as_stream(tcp_));
    reading_ = false;
  }
  if (state_ == State::busy) uv_timer_stop(&timer_);
}

void Connection::resume_reading() {
  UVGET_TRACE("resume %p paused=%d state=%d", static_cast<void*>(this), paused_,
              static_cast<int>(state_));
  if (!paused_) return;
  paused_ = false;
  if (state_ != State::busy || !tcp_) return;
  last_activity_ = uv_now(loop_);
  if (tls_) {
    drain_tls();  // records that arrived before the pause
    if (state_ != State::busy || paused_) return;
  }
  if (!reading_ && uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb) == 0) reading_ = true;
  if (owner_.options().idle_timeout_ms > 0) arm_timer(owner_.options().idle_timeout_ms);
}

void Connection::park() {
  state_ = State::parked;
  paused_ = false;
  set_rcvlowat(1);  // any byte or EOF on an idle connection must wake us
  parked_at_ = uv_now(loop_);
  if (!reading_ && uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb) == 0) reading_ = true;
  // A parked connection must not keep the host's loop alive.
  uv_unref(as_handle(tcp_));
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
      if (auto ctx = owner_.tls(); ctx && tls_waiting_)
        (*ctx)->cancel_wait(origin_, reinterpret_cast<std::uintptr_t>(this));
      tls_waiting_ = false;
      end_lead();
      connect_failed(Error(Errc::tls_handshake,
                           "TLS handshake timed out after " + std::to_string(timer_ms_) + " ms"));
      break;
    case State::busy: {
      std::uint64_t idle = uv_now(loop_) - last_activity_;
      if (idle >= timer_ms_) {
        std::string where = !parser_.started() ? "waiting for the response"
                            : !parser_.head_done()
                                ? "in the response head"
                                : "after " + std::to_string(parser_.body_bytes()) + " body bytes";
        fail_exchange(Errc::idle_timeout,
                      "no data for " + std::to_string(timer_ms_) + " ms " + where);
      } else {
        uv_timer_start(&timer_, &on_timer_cb, timer_ms_ - idle, 0);
      }
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

void Connection::finish_exchange(const Error& error) {
  if (state_ == State::busy) uv_timer_stop(&timer_);
  Exchange* ex = exchange_;
  exchange_ = nullptr;
  bool retry_safe = error && reused_ && !parser_.started() &&
                    (error.code == Errc::connection_closed || error.code == Errc::connection_reset);
  if (error) reusable_ = false;
  if (state_ == State::busy) state_ = State::ready;
  if (reusable_) kept_alive_ = true;
  if (error && pipelined_ && !parser_.started()) {
    // A pipelined request the server never answered (it closed, or ignored it until the idle
    // timeout): it and every request behind it go again, elsewhere.
    server_broke_ = true;
    close();
    if (ex) ex->on_exchange_unanswered(true);
    return;
  }
  if (ex == &discarded) {
    owner_.release(*this);  // parks it, or closes it (and tells those behind)
    return;
  }
  if (ex)
    ex->on_exchange_done(error, retry_safe);  // may park or close us: nothing after this
  else if (error)
    close();
}

void Connection::fail_exchange(Errc code, std::string detail) {
  finish_exchange(Error(code, std::move(detail)));
}

void Connection::close() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  exchange_ = nullptr;
  if (resolve_ticket_) {
    owner_.resolver().cancel(resolve_ticket_);
    resolve_ticket_ = 0;
  }
  if (tls_waiting_) {
    if (auto ctx = owner_.tls())
      (*ctx)->cancel_wait(origin_, reinterpret_cast<std::uintptr_t>(this));
    tls_waiting_ = false;
  }
  end_lead();
  connect_.reset();  // attempts still running are closed
  owner_.connection_closing(*this);
  uv_timer_stop(&timer_);
  uv_close(as_handle(&timer_), &on_close_cb);
  close_tcp();
  pipelined_out_.clear();
  // Requests pipelined behind go again; told last first, so that each going back to the front
  // of its queue keeps their order.
  std::deque<Behind> unanswered;
  unanswered.swap(behind_);
  for (auto it = unanswered.rbegin(); it != unanswered.rend(); ++it)
    it->exchange->on_exchange_unanswered(server_broke_);
}

void Connection::close_tcp() {
  if (!tcp_) return;
  uv_close(as_handle(tcp_), &on_close_cb);
  tcp_ = nullptr;
  reading_ = false;
}

void Connection::on_close_cb(uv_handle_t* h) noexcept {
  auto* self = static_cast<Connection*>(h->data);
  if (h != as_handle(&self->timer_)) delete reinterpret_cast<uv_tcp_t*>(h);
  self->handle_closed();
}

void Connection::handle_closed() {
  if (--live_handles_ == 0 && state_ == State::closing) {
    owner_.connection_freed(*this);
    delete this;
  }
}

}  // namespace uvget
