// TcpConnect: one TCP connection to whichever of a host's addresses answers first, racing them
// the way RFC 8305 (Happy Eyeballs) says: the first address at once, the next one after a short
// delay while the first is still trying, and at once after one fails. The first to connect wins;
// every other attempt is closed. A host whose IPv6 path swallows connections costs the delay,
// not a connect timeout.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <uvget/error.hpp>

#include "net/resolver.hpp"

namespace uvget {

class TcpConnect {
 public:
  /// `tcp` is a connected handle that now belongs to the caller (its data pointer is null; it
  /// was allocated with new and is freed by whoever closes it), or null with `error` saying why
  /// the last attempt failed and how many were made.
  using Done = std::function<void(uv_tcp_t* tcp, const sockaddr_storage& peer, const Error& error)>;

  /// `addresses` in the order to try (Resolver gives families alternating). Each attempt may
  /// take `attempt_timeout_ms`; the next starts `stagger_ms` after the one before it unless
  /// that one failed sooner. Nothing happens before start().
  TcpConnect(uv_loop_t* loop, std::shared_ptr<const AddressList> addresses,
             std::uint64_t attempt_timeout_ms, std::uint64_t stagger_ms, Done done);
  /// Abandons every attempt (closed on the loop); `done` is never called after this.
  ~TcpConnect();
  TcpConnect(const TcpConnect&) = delete;
  TcpConnect& operator=(const TcpConnect&) = delete;

  void start();
  /// Attempts begun so far.
  std::size_t attempts() const noexcept { return next_; }

 private:
  struct Attempt;
  struct TimerBox;

  void start_next();
  void attempt_done(Attempt* a, int status);
  void give_up(Attempt* a);
  void arm_timer();
  void on_timer();
  bool fail_if_over();  // true: finished (done may have destroyed this)
  static void on_connect_cb(uv_connect_t* req, int status) noexcept;

  uv_loop_t* loop_;
  std::shared_ptr<const AddressList> addresses_;
  const std::uint64_t attempt_timeout_ms_;
  const std::uint64_t stagger_ms_;
  Done done_;
  std::size_t next_ = 0;             // index of the next address to try
  std::uint64_t next_start_ms_ = 0;  // uv_now when it starts if nothing fails first
  std::vector<Attempt*> running_;    // attempts still connecting
  TimerBox* timer_ = nullptr;        // the next stagger or attempt deadline
  Error last_error_;
  bool finished_ = false;
};

}  // namespace uvget
