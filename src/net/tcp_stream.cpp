// Reads under the loop's budget; writes in place when the socket takes them at once.
#include "net/tcp_stream.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "uv/util.hpp"

namespace uvget {
namespace {

struct WriteReq {
  uv_write_t req{};
  std::string bytes;  // owned until the write callback
};

}  // namespace

TcpStream::TcpStream(uv_tcp_t* tcp, ReadBudget& budget) : tcp_(tcp), budget_(budget) {
  tcp_->data = this;
  last_read_ms_ = uv_now(tcp_->loop);
}

void TcpStream::read_start() {
  want_reading_ = true;
  if (!deferred_) start_uv_read();
}

void TcpStream::read_stop() {
  want_reading_ = false;
  set_rcvlowat(1);
  stop_uv_read();
}

void TcpStream::start_uv_read() {
  if (uv_reading_ || closing_) return;
  if (int rc = uv_read_start(as_stream(tcp_), &on_alloc_cb, &on_read_cb); rc < 0) {
    if (handler_)
      handler_->on_stream_error(Fault::reading,
                                Error(Errc::connection_closed, "read: " + uv_words(rc)));
    return;
  }
  uv_reading_ = true;
}

void TcpStream::stop_uv_read() {
  if (!uv_reading_) return;
  uv_read_stop(as_stream(tcp_));
  uv_reading_ = false;
}

void TcpStream::resume_deferred() {
  deferred_ = false;
  if (want_reading_) start_uv_read();
}

void TcpStream::ref(bool on) {
  if (on)
    uv_ref(as_handle(tcp_));
  else
    uv_unref(as_handle(tcp_));
}

// A metered read takes no more than the budget allows and the layer above has room for: a whole
// read buffer above a sink's bound would be held in memory (with many large bodies at once, most
// of the client's memory). Once the pass's slice is spent, or no tokens are left, libuv gets no
// buffer at all (it reports UV_ENOBUFS): the stream stops reading until the budget's next pass,
// and the bytes wait in the kernel, in order, with no copy made.
void TcpStream::on_alloc_cb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<TcpStream*>(h->data);
  *buf = self->budget_.read_buffer();
  ReadWant want = self->handler_ ? self->handler_->read_want() : ReadWant{};
  if (!want.metered) return;
  std::size_t allowed = self->budget_.allowance();
  if (allowed == 0 || self->budget_.spent()) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  if (allowed < buf->len) buf->len = static_cast<unsigned>(allowed);
  constexpr std::size_t kMinRead = 16 * 1024;
  if (std::size_t room = std::max(want.room, kMinRead); room < buf->len)
    buf->len = static_cast<unsigned>(room);
}

void TcpStream::on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  static_cast<TcpStream*>(s->data)->on_read(nread, buf);
}

void TcpStream::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == UV_ENOBUFS) {
    stop_uv_read();
    if (!deferred_) {
      deferred_ = true;
      budget_.defer(*this);
    }
    return;
  }
  if (nread == 0 || closing_ || !handler_) return;
  if (nread > 0) {
    budget_.charge(static_cast<std::size_t>(nread));
    last_read_ms_ = uv_now(tcp_->loop);
  }
  std::uint64_t t0 = budget_.slicing() ? uv_hrtime() : 0;  // no clock reads without a slice
  budget_.began();
  if (nread > 0) {
    handler_->on_stream_data(buf->base, static_cast<std::size_t>(nread));
    if (!closing_) tune_wakeups(static_cast<std::size_t>(nread));
  } else {
    stop_uv_read();
    want_reading_ = false;
    if (nread == UV_EOF)
      handler_->on_stream_eof(true);
    else
      handler_->on_stream_error(
          Fault::reading,
          Error(nread == UV_ECONNRESET ? Errc::connection_reset : Errc::connection_closed,
                uv_words(static_cast<int>(nread))));
  }
  budget_.ended();
  if (t0) budget_.charge_time(uv_hrtime() - t0);
}

// While a large Content-Length body streams in fast, ask the kernel to wake us only once a good
// amount is waiting (SO_RCVLOWAT), never more than what is left of the body: a reader woken for
// every few kilobytes costs the sender (on loopback, nginx) a wake-up each time, and measured
// 20 % of the rate on a 1 GiB file. A slow read (< 64 KiB) or anything else: back to 1 byte.
void TcpStream::tune_wakeups(std::size_t last_read) {
  constexpr std::size_t kFastRead = 64 * 1024, kWakeBytes = 128 * 1024;
  int want = 1;
  if (want_reading_ && last_read >= kFastRead && handler_) {
    ReadWant w = handler_->read_want();
    if (w.metered && w.expect > 1)
      want = static_cast<int>(std::min<std::uint64_t>(w.expect, kWakeBytes));
  }
  set_rcvlowat(want);
}

void TcpStream::set_rcvlowat(int bytes) {
  if (bytes == rcvlowat_ || closing_) return;
  uv_os_fd_t fd;
  if (uv_fileno(as_handle(tcp_), &fd) == 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0) {
    rcvlowat_ = bytes;
    if (bytes > 1 && !watched_) {
      watched_ = true;
      budget_.watch(*this);
    }
  }
}

void TcpStream::write(std::string bytes) {
  if (closing_ || bytes.empty()) return;
  uv_buf_t b = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  int rc = uv_try_write(as_stream(tcp_), &b, 1);
  if (rc == static_cast<int>(bytes.size())) return;
  if (rc < 0 && rc != UV_EAGAIN) return write_failed(rc);
  auto* w = new WriteReq;
  w->bytes = bytes.substr(rc > 0 ? static_cast<std::size_t>(rc) : 0);
  w->req.data = this;
  uv_buf_t rest = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  if (rc = uv_write(&w->req, as_stream(tcp_), &rest, 1, &on_write_cb); rc < 0) {
    delete w;
    write_failed(rc);
  }
}

void TcpStream::on_write_cb(uv_write_t* req, int status) noexcept {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<TcpStream*>(req->data);
  delete w;
  if (status < 0) self->write_failed(status);
}

void TcpStream::write_failed(int status) {
  if (closing_ || status == UV_ECANCELED || !handler_) return;
  handler_->on_stream_error(
      Fault::writing, Error(status == UV_EPIPE || status == UV_ECONNRESET ? Errc::connection_reset
                                                                          : Errc::connection_closed,
                            uv_words(status)));
}

void TcpStream::close() {
  if (closing_) return;
  closing_ = true;
  budget_.forget(*this);
  uv_close(as_handle(tcp_), &on_close_cb);
}

void TcpStream::on_close_cb(uv_handle_t* h) noexcept {
  auto* self = static_cast<TcpStream*>(h->data);
  Handler* handler = self->handler_;
  delete reinterpret_cast<uv_tcp_t*>(h);
  delete self;
  if (handler) handler->on_stream_closed();
}

}  // namespace uvget
