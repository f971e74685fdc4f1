// Resolver: uv_getaddrinfo with a small cache and one lookup per name in flight.
// IP literals never reach getaddrinfo. Owns its requests; callbacks never run after close().
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace uvget {

using AddressList = std::vector<sockaddr_storage>;

class Resolver {
 public:
  /// status 0 and a non-empty list, or a negative libuv status.
  using Callback = std::function<void(int status, std::shared_ptr<const AddressList> addresses)>;
  struct Stats {
    std::uint64_t lookups = 0;
    std::uint64_t cache_hits = 0;
  };

  Resolver(uv_loop_t* loop, std::size_t cache_size, std::uint64_t ttl_ms);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Answers `host` with `addresses` (port 0) from now on, without DNS.
  void add_override(const std::string& host, AddressList addresses);
  /// Calls `cb` inline for IP literals and cache hits, later otherwise. Returns a ticket for
  /// cancel(); 0 when the callback already ran.
  std::uint64_t resolve(const std::string& host, std::uint16_t port, Callback cb);
  /// The callback of `ticket` will not be called.
  void cancel(std::uint64_t ticket);
  /// Cancels every lookup; `on_idle` is called once no getaddrinfo request is in flight.
  void close(std::function<void()> on_idle);
  const Stats& stats() const noexcept { return stats_; }

 private:
  struct Waiter {
    std::uint64_t ticket;
    std::uint16_t port;
    Callback cb;
  };
  struct Lookup {  // one uv_getaddrinfo in flight for one name
    uv_getaddrinfo_t req{};
    Resolver* owner = nullptr;  // null once the resolver stopped caring
    std::string host;
    std::vector<Waiter> waiters;
  };
  struct Entry {
    std::shared_ptr<const AddressList> addresses;  // port 0: set per waiter
    std::uint64_t expires_ms;
  };

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  void finish(Lookup* lookup, int status, addrinfo* res);
  void maybe_idle();

  uv_loop_t* loop_;
  const std::size_t cache_size_;
  const std::uint64_t ttl_ms_;
  std::uint64_t next_ticket_ = 1;
  std::unordered_map<std::string, AddressList> overrides_;
  std::unordered_map<std::string, Entry> cache_;
  std::deque<std::string> cache_order_;               // insertion order, for eviction
  std::unordered_map<std::string, Lookup*> pending_;  // name -> lookup in flight
  std::size_t in_flight_ = 0;                         // requests libuv still holds
  std::function<void()> on_idle_;                     // set by close()
  bool closed_ = false;
  Stats stats_;
};

/// "127.0.0.1:80", "[::1]:443".
std::string address_string(const sockaddr_storage& addr);
/// An IPv4 or IPv6 literal (without brackets) with port 0, or false.
bool parse_ip_literal(const std::string& text, sockaddr_storage& out);

}  // namespace uvget
