// Connection attempts raced over a host's addresses (RFC 8305), one timer for staggers and
// deadlines, losers closed.
#include "net/tcp_connect.hpp"

#include <algorithm>

#include "uv/util.hpp"

namespace uvget {

// One attempt. Freed in its connect callback, which libuv runs exactly once: with the result, or
// with UV_ECANCELED after the handle was closed (owner is then null).
struct TcpConnect::Attempt {
  TcpConnect* owner;
  uv_tcp_t* tcp;  // null once handed over or closed
  uv_connect_t req{};
  sockaddr_storage addr;
  std::uint64_t deadline_ms;
};

struct TcpConnect::TimerBox {
  uv_timer_t timer{};
  TcpConnect* owner;  // null once closing
};

namespace {
void close_and_free(uv_tcp_t* tcp) {
  uv_close(as_handle(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}
}  // namespace

TcpConnect::TcpConnect(uv_loop_t* loop, std::shared_ptr<const AddressList> addresses,
                       std::uint64_t attempt_timeout_ms, std::uint64_t stagger_ms, Done done)
    : loop_(loop),
      addresses_(std::move(addresses)),
      attempt_timeout_ms_(attempt_timeout_ms),
      stagger_ms_(stagger_ms),
      done_(std::move(done)) {}

TcpConnect::~TcpConnect() {
  for (Attempt* a : running_) give_up(a);
  running_.clear();
  if (timer_) {
    timer_->owner = nullptr;
    uv_close(as_handle(&timer_->timer),
             [](uv_handle_t* h) { delete static_cast<TimerBox*>(h->data); });
  }
}

void TcpConnect::start() {
  timer_ = new TimerBox{{}, this};
  uv_timer_init(loop_, &timer_->timer);  // cannot fail for a valid loop
  timer_->timer.data = timer_;
  if (addresses_->empty()) {
    last_error_ = Error(Errc::connect, "no address to connect to");
    fail_if_over();
    return;
  }
  start_next();
}

// Starts attempts until one is running or none is left.
void TcpConnect::start_next() {
  while (next_ < addresses_->size() && !finished_) {
    const sockaddr_storage& addr = (*addresses_)[next_++];
    auto* tcp = new uv_tcp_t;
    if (int rc = uv_tcp_init(loop_, tcp); rc < 0) {
      delete tcp;
      last_error_ = Error(Errc::connect, "socket: " + uv_words(rc));
      continue;
    }
    tcp->data = nullptr;
    uv_tcp_nodelay(tcp, 1);
    auto* a = new Attempt{this, tcp, {}, addr, uv_now(loop_) + attempt_timeout_ms_};
    a->req.data = a;
    if (int rc =
            uv_tcp_connect(&a->req, tcp, reinterpret_cast<const sockaddr*>(&addr), &on_connect_cb);
        rc < 0) {
      last_error_ =
          Error(Errc::connect, "connect to " + address_string(addr) + ": " + uv_words(rc));
      close_and_free(tcp);
      delete a;  // no callback comes for a connect that never started
      continue;
    }
    running_.push_back(a);
    next_start_ms_ = uv_now(loop_) + stagger_ms_;
    break;
  }
  if (!fail_if_over()) arm_timer();
}

bool TcpConnect::fail_if_over() {
  if (finished_) return true;
  if (!running_.empty() || next_ < addresses_->size()) return false;
  finished_ = true;
  if (timer_) uv_timer_stop(&timer_->timer);
  auto done = std::move(done_);
  Error error = last_error_;  // this may be destroyed while done runs
  done(nullptr, {}, error);
  return true;
}

void TcpConnect::on_connect_cb(uv_connect_t* req, int status) noexcept {
  std::unique_ptr<Attempt> a(static_cast<Attempt*>(req->data));
  if (a->owner) a->owner->attempt_done(a.get(), status);
}

void TcpConnect::attempt_done(Attempt* a, int status) {
  std::erase(running_, a);
  a->owner = nullptr;
  if (status < 0) {
    last_error_ =
        Error(Errc::connect, "connect to " + address_string(a->addr) + ": " + uv_words(status));
    close_and_free(a->tcp);
    a->tcp = nullptr;
    return start_next();  // a failure starts the next address at once
  }
  finished_ = true;
  for (Attempt* other : running_) give_up(other);
  running_.clear();
  uv_timer_stop(&timer_->timer);
  uv_tcp_t* won = a->tcp;
  a->tcp = nullptr;
  auto done = std::move(done_);
  done(won, a->addr, {});  // may destroy this
}

// The attempt's connect callback still comes (UV_ECANCELED) and frees it.
void TcpConnect::give_up(Attempt* a) {
  a->owner = nullptr;
  if (a->tcp) close_and_free(a->tcp);
  a->tcp = nullptr;
}

void TcpConnect::arm_timer() {
  std::uint64_t now = uv_now(loop_), at = UINT64_MAX;
  if (next_ < addresses_->size()) at = next_start_ms_;
  for (Attempt* a : running_) at = std::min(at, a->deadline_ms);
  if (at == UINT64_MAX) {
    uv_timer_stop(&timer_->timer);
    return;
  }
  uv_timer_start(
      &timer_->timer,
      [](uv_timer_t* t) {
        if (auto* self = static_cast<TimerBox*>(t->data)->owner) self->on_timer();
      },
      at > now ? at - now : 0, 0);
}

void TcpConnect::on_timer() {
  std::uint64_t now = uv_now(loop_);
  for (std::size_t i = 0; i < running_.size();) {
    Attempt* a = running_[i];
    if (a->deadline_ms > now) {
      ++i;
      continue;
    }
    last_error_ =
        Error(Errc::connect_timeout, "connect to " + address_string(a->addr) + " timed out after " +
                                         std::to_string(attempt_timeout_ms_) + " ms");
    running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    give_up(a);
    next_start_ms_ = now;  // the next address starts now
  }
  if (next_ < addresses_->size() && next_start_ms_ <= now) return start_next();
  if (!fail_if_over()) arm_timer();
}

}  // namespace uvget
