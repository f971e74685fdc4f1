// Resolver: host names to addresses for one client's loop. By default a c-ares channel driven by
// the loop itself (its sockets watched with uv_poll_t, its timeouts on a uv_timer_t): no
// threadpool, no thread of its own, thousands of lookups in flight. The system's getaddrinfo
// (through libuv's threadpool) stays available for name sources c-ares does not read (nsswitch
// modules). Either way: IP literals and overrides answered in place, a bounded cache that
// honours TTLs (capped) and keeps NXDOMAIN briefly, and one lookup per name in flight. Callbacks
// never run after close().
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <uvget/error.hpp>
#include <uvget/options.hpp>

namespace uvget {

using AddressList = std::vector<sockaddr_storage>;

class Resolver {
 public:
  /// An empty error and a non-empty list, or an error (Errc::resolve: the name has no address,
  /// worth no retry; Errc::dns_temporary: SERVFAIL, a timeout, a refusal: worth a retry) whose
  /// message names the host and the cause.
  using Callback = std::function<void(const Error& error, std::shared_ptr<const AddressList>)>;
  struct Stats {
    std::uint64_t lookups = 0;     // questions sent (c-ares) or getaddrinfo calls
    std::uint64_t cache_hits = 0;  // answered from the cache or by a lookup already running
  };
  struct Options {
    ResolverKind kind = ResolverKind::dns;
    std::size_t cache_size = 10'000;
    std::uint64_t max_ttl_ms = 300'000;     // a record's TTL is honoured up to this
    std::uint64_t min_ttl_ms = 5'000;       // and kept at least this long (/etc/hosts says 0)
    std::uint64_t negative_ttl_ms = 5'000;  // how long "no such host" is remembered
    /// Names being asked at once; more wait their turn. A burst of thousands of answers would
    /// overflow the socket's receive buffer, and each lost one costs a timeout and a retry.
    std::size_t max_asking = 512;
  };

  Resolver(uv_loop_t* loop, Options options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Answers `host` with `addresses` (port 0) from now on, without DNS.
  void add_override(const std::string& host, AddressList addresses);
  /// Calls `cb` inline for IP literals, overrides and cache hits, later otherwise. The list is
  /// ordered for connecting: IPv6 and IPv4 alternate, IPv6 first (RFC 8305). Returns a ticket
  /// for cancel(); 0 when the callback already ran.
  std::uint64_t resolve(const std::string& host, std::uint16_t port, Callback cb);
  /// Starts a lookup of `host` that nobody waits for yet, so that a later resolve() finds it
  /// cached or running; nothing when it is cached, running, a literal or an override, or when
  /// `limit` lookups are already in flight. Returns whether one started.
  bool prefetch(const std::string& host, std::size_t limit);
  /// The callback of `ticket` will not be called.
  void cancel(std::uint64_t ticket);
  /// Cancels every lookup; `on_idle` is called once nothing of the resolver is left on the loop.
  void close(std::function<void()> on_idle);
  const Stats& stats() const noexcept { return stats_; }
  std::size_t in_flight() const noexcept { return pending_.size(); }

  struct Backend;  // c-ares or getaddrinfo, in resolver.cpp

  // For the backends: a lookup of `host` ended with `error` or with `addresses` (port 0),
  // valid for `ttl_ms` (capped here).
  void finish(const std::string& host, const Error& error, AddressList addresses,
              std::uint64_t ttl_ms);

 private:
  struct Waiter {
    std::uint64_t ticket;
    std::uint16_t port;
    Callback cb;
  };
  struct Entry {
    std::shared_ptr<const AddressList> addresses;  // port 0; null: a negative entry
    Error error;                                   // of a negative entry
    std::uint64_t expires_ms;
    std::list<std::string>::iterator lru;
  };

  bool answer_now(const std::string& host, std::uint16_t port, Callback& cb);
  void start_lookup(const std::string& host);
  void remember(const std::string& host, Entry entry);
  void maybe_idle();

  uv_loop_t* loop_;
  const Options opts_;
  std::unique_ptr<Backend> backend_;
  std::uint64_t next_ticket_ = 1;
  std::unordered_map<std::string, AddressList> overrides_;
  std::unordered_map<std::string, Entry> cache_;
  std::list<std::string> lru_;                                    // most recently used first
  std::unordered_map<std::string, std::vector<Waiter>> pending_;  // name -> lookup in flight
  std::unordered_map<std::uint64_t, std::string> tickets_;        // ticket -> name
  std::deque<std::string> waiting_;  // pending, not yet asked (max_asking were being asked)
  std::size_t asking_ = 0;           // pending names the backend is asking now
  std::function<void()> on_idle_;    // set by close()
  bool closed_ = false;
  bool backend_idle_ = false;
  Stats stats_;
};

/// "127.0.0.1:80", "[::1]:443".
std::string address_string(const sockaddr_storage& addr);
/// An IPv4 or IPv6 literal (without brackets) with port 0, or false.
bool parse_ip_literal(const std::string& text, sockaddr_storage& out);
/// What /etc/resolv.conf (and then RES_OPTIONS, as glibc reads it) says of timeouts: the
/// `timeout:N` seconds (default 5, at most 30) and `attempts:N` (default 2, at most 5) options.
struct ResolvTimeouts {
  int timeout_ms = 5000;
  int attempts = 2;
};
ResolvTimeouts parse_resolv_timeouts(std::string_view conf, std::string_view res_options);

/// The order to connect in: IPv6 and IPv4 alternating, starting with IPv6, each family's own
/// order kept, duplicates dropped (RFC 8305 section 4).
AddressList interleave_families(const AddressList& in);

}  // namespace uvget
