// The handshake on the threadpool, session leaders and waiters, and records in the clear.
#include "tls/tls_stream.hpp"

#include "trace.hpp"
#include "uv/util.hpp"

namespace uvget {

// The step owns the session while it runs: bytes arriving meanwhile wait in pending_, and the
// stream is not freed under it (maybe_freed waits for it).
struct TlsStream::HandshakeJob {
  uv_work_t req{};
  TlsStream* stream;
  TlsSession* tls;
  TlsSession::Step step = TlsSession::Step::want_io;
};

TlsStream::TlsStream(uv_loop_t* loop, Stream* lower, TlsContext& ctx, std::string host,
                     std::string origin, ReadBudget& budget)
    : loop_(loop),
      lower_(lower),
      ctx_(ctx),
      host_(std::move(host)),
      origin_(std::move(origin)),
      budget_(budget) {
  lower_->set_handler(this);
}

void TlsStream::handshake(std::function<void(const Error&)> done) {
  done_ = std::move(done);
  state_ = State::handshaking;
  lower_->read_start();
  start_session();
}

void TlsStream::start_session() {
  waiting_ = false;
  if (state_ != State::handshaking || closing_) return;
  if (!ctx_.session_for(origin_)) {
    // Another connection is doing the full handshake: wait and resume its session.
    auto token = reinterpret_cast<std::uintptr_t>(this);
    if (ctx_.wait_for_leader(origin_, token, [this] { start_session(); })) {
      waiting_ = true;
      return;
    }
    ctx_.lead(origin_);
    leading_ = true;
  }
  tls_ = std::make_unique<TlsSession>(ctx_, host_);
  tls_->offer(ctx_.session_for(origin_));
  drive();
}

void TlsStream::end_lead() {
  if (!leading_) return;
  leading_ = false;
  ctx_.leader_done(origin_);
}

void TlsStream::drive() {
  if (job_) {
    again_ = true;
    return;
  }
  again_ = false;
  auto* job = new HandshakeJob{{}, this, tls_.get()};
  job->req.data = job;
  job_ = job;
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<HandshakeJob*>(req->data);
        j->step = j->tls->handshake();
      },
      &on_step_cb);
  if (rc < 0) {
    job_ = nullptr;
    delete job;
    handshake_failed(Error(Errc::tls_handshake, "TLS handshake: " + uv_words(rc)), false);
  }
}

void TlsStream::on_step_cb(uv_work_t* req, int) noexcept {
  std::unique_ptr<HandshakeJob> job(static_cast<HandshakeJob*>(req->data));
  TlsStream* self = job->stream;
  self->job_ = nullptr;
  if (self->closing_ || self->state_ != State::handshaking) return self->maybe_freed();
  if (!self->pending_.empty()) {
    self->tls_->append(self->pending_.data(), self->pending_.size());
    self->pending_.clear();
  }
  self->after_step(job->step);
}

void TlsStream::after_step(TlsSession::Step step) {
  flush();
  if (state_ != State::handshaking || closing_) return;  // a write failed meanwhile
  switch (step) {
    case TlsSession::Step::want_io:
      if (again_)
        drive();  // bytes came while the step ran
      else if (!ended_.empty())
        handshake_failed(Error(Errc::tls_handshake, ended_), true);
      return;
    case TlsSession::Step::failed:
      return handshake_failed(tls_->error(), true);
    case TlsSession::Step::done:
      if (!ended_.empty())  // closed right after: of no use
        return handshake_failed(Error(Errc::tls_handshake, ended_), true);
      break;
  }
  if (Error e = tls_->check_peer()) return handshake_failed(e, true);
  UVGET_TRACE("tls %s %s %s", origin_.c_str(), mbedtls_ssl_get_ciphersuite(tls_->ssl()),
              tls_->resumed() ? "resumed" : "full");
  ctx_.save_session(origin_, tls_->ssl());
  end_lead();  // waiters now resume this session
  state_ = State::open;
  lower_->read_stop();  // the layer above starts reading when it wants the response
  done_(Error{});
}

void TlsStream::handshake_failed(const Error& error, bool forget) {
  if (forget) ctx_.forget_session(origin_);
  end_lead();
  state_ = State::failed;
  lower_->read_stop();
  done_(error);
}

void TlsStream::on_stream_data(const char* data, std::size_t n) {
  if (closing_) return;
  if (state_ == State::handshaking) {
    if (!tls_) return;  // waiting for the leader: the server does not speak first
    if (job_)
      pending_.append(data, n);  // the session is busy on the threadpool
    else
      tls_->append(data, n);
    drive();
    return;
  }
  if (state_ != State::open) return;
  tls_->feed(data, n);
  drain();
  tls_->stash();  // the read buffer is shared: keep what was not decrypted yet
  flush();
}

void TlsStream::drain() {
  in_drain_ = true;
  uv_buf_t plain = budget_.plain_buffer();
  while (reading_ && !closing_ && !peer_closed_) {
    auto got = tls_->read(plain.base, plain.len);
    switch (got.kind) {
      case TlsSession::ReadResult::Kind::data:
        handler_->on_stream_data(plain.base, got.bytes);
        continue;
      case TlsSession::ReadResult::Kind::want_more:
        break;
      case TlsSession::ReadResult::Kind::closed:
        peer_closed_ = true;
        handler_->on_stream_eof(true);
        break;
      case TlsSession::ReadResult::Kind::failed:
        handler_->on_stream_error(Fault::protocol, tls_->error());
        break;
    }
    break;
  }
  in_drain_ = false;
}

void TlsStream::on_stream_eof(bool) {
  if (closing_) return;
  if (state_ == State::handshaking) {
    std::string why = "connection closed during the TLS handshake: " + uv_words(UV_EOF);
    if (job_)
      ended_ = why;  // bytes before it (an alert, say) are with the step: it speaks first
    else
      handshake_failed(Error(Errc::tls_handshake, why), true);
    return;
  }
  if (state_ != State::open || peer_closed_) return;
  // A bare TCP close: not a clean end over TLS (it may be an attacker cutting the stream).
  handler_->on_stream_eof(false);
}

void TlsStream::on_stream_error(Fault fault, const Error& error) {
  if (closing_) return;
  if (state_ == State::handshaking) {
    std::string why = (fault == Fault::writing ? "sending the TLS handshake: "
                                               : "connection closed during the TLS handshake: ") +
                      error.detail;
    if (job_ && fault == Fault::reading)
      ended_ = why;
    else
      handshake_failed(Error(Errc::tls_handshake, why), fault == Fault::reading);
    return;
  }
  if (state_ == State::open) handler_->on_stream_error(fault, error);
}

ReadWant TlsStream::read_want() const {
  if (state_ != State::open || !handler_) return {};
  ReadWant want = handler_->read_want();
  // Up to a record of what is still to come may already sit in the session: only what is surely
  // still to come from the socket counts.
  constexpr std::uint64_t kTlsMargin = 32 * 1024;
  want.expect = want.expect > kTlsMargin ? want.expect - kTlsMargin : 0;
  return want;
}

void TlsStream::read_start() {
  reading_ = true;
  if (state_ != State::open || closing_) return;
  // Records that came before a read_stop() are handed over first; from inside a drain the
  // loop there goes on (a nested one would reorder them).
  if (!in_drain_ && tls_->has_buffered_input()) {
    drain();
    if (!reading_ || closing_) return;
    flush();
  }
  lower_->read_start();
}

void TlsStream::read_stop() {
  reading_ = false;
  if (state_ == State::open) lower_->read_stop();
}

void TlsStream::write(std::string bytes) {
  if (state_ != State::open || closing_) return;
  if (!tls_->write(bytes.data(), bytes.size())) {
    handler_->on_stream_error(Fault::protocol,
                              Error(Errc::connection_reset, tls_->error().message()));
    return;
  }
  flush();
}

void TlsStream::flush() {
  if (!tls_ || tls_->outgoing().empty() || closing_) return;
  std::string out = std::move(tls_->outgoing());
  tls_->outgoing().clear();
  lower_->write(std::move(out));
}

void TlsStream::close() {
  if (closing_) return;
  closing_ = true;
  if (waiting_) {
    ctx_.cancel_wait(origin_, reinterpret_cast<std::uintptr_t>(this));
    waiting_ = false;
  }
  end_lead();
  lower_->close();
}

void TlsStream::on_stream_closed() {
  lower_closed_ = true;
  maybe_freed();
}

void TlsStream::maybe_freed() {
  if (!closing_ || !lower_closed_ || job_) return;
  Stream::Handler* handler = handler_;
  delete this;
  if (handler) handler->on_stream_closed();
}

}  // namespace uvget
