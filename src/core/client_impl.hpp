// Client::Impl: the scheduler (queues per origin served round-robin, total and per-origin
// limits), the keep-alive pool, the resolver and the close protocol. Lives until its last
// handle is closed, even when the Client that owns it is gone.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <uvget/client.hpp>

#include "core/connection_pool.hpp"
#include "core/host_limit.hpp"
#include "core/robots.hpp"
#include "core/transfer.hpp"
#include "http/connection.hpp"
#include "net/resolver.hpp"
#include "tls/tls.hpp"

namespace uvget {

class SegmentPool;

// Hidden, although nested in an exported class: nothing of it is public API.
struct __attribute__((visibility("hidden"))) Client::Impl final : ConnectionOwner {
  Impl(uv_loop_t* loop, ClientOptions options, Result<std::unique_ptr<TlsContext>> tls);

  /// `front`: ahead of the transfers already queued for its origin (a segment of a download
  /// that is already running).
  Result<TransferId> get(Request request, Callbacks callbacks, bool front = false,
                         bool robots_exempt = false);
  void cancel(std::uint64_t id);
  void close(std::function<void()> on_closed);
  void detach();  // the Client is gone: free this once closed
  ClientStats stats() const;

  // For transfers.
  uv_loop_t* loop() const noexcept { return loop_; }
  const ClientOptions& opts() const noexcept { return opts_; }
  /// The exchange on `c` is over: keep it for reuse if it allows, else close it.
  void release(Connection* c);
  /// A new transfer joins its origin's queue: at the back, or at the front when `front`.
  void admit(Transfer* t, bool front);
  /// Back into the queue (retry on a fresh connection, or a redirect), at the front of its origin.
  void requeue(Transfer* t);
  /// `t` is done; called once, right before its on_done. Deletes `t` after the callback.
  void transfer_done(Transfer* t, const TransferResult& result, Callbacks& cbs);
  void count_request(bool reused) {
    ++stats_.requests_sent;
    if (reused) ++stats_.requests_reused;
  }
  void count_body(std::uint64_t n) { stats_.body_bytes += n; }
  bool closing() const noexcept { return closing_; }
  /// Other loops for split downloads' segments (the Runner sets it); null: this loop only.
  SegmentPool* segment_pool() const noexcept { return segment_pool_; }
  void set_segment_pool(SegmentPool* pool) noexcept { segment_pool_ = pool; }
  /// Retries: `t` runs again (back in its origin's queue) after `delay_ms`.
  void retry_later(Transfer* t, std::uint64_t delay_ms);
  void forget_retry(Transfer* t);
  /// No new request to `origin` starts for `delay_ms`.
  void hold_origin(const std::string& origin, std::uint64_t delay_ms);
  /// An answer (or a refused or reset connection) to `t`'s request: its origin's connection
  /// limit learns from it, and the origin rests when a 429 asks for it with Retry-After or most
  /// of its recent answers were overloads (`retry_after_ms`, else the backoff, is how long).
  void host_answered(Transfer& t, HostLimit::Answer answer, std::uint64_t retry_after_ms);
  /// The origin dropped pipelined requests: one request at a time to it from now on.
  void stop_pipelining(const std::string& origin);
  /// A response head came on `c`: its first makes room for another new connection to its
  /// origin (ClientOptions::initial_per_host).
  void connection_answered(Connection& c);

  // ConnectionOwner
  Resolver& resolver() override { return resolver_; }
  const ClientOptions& options() const override { return opts_; }
  ReadBudget& budget() override { return budget_; }
  Result<TlsContext*> tls() override {
    if (!tls_) return tls_error_;
    return tls_.get();
  }
  ClientStats& counters() override { return stats_; }
  void connection_established(Connection& c) override;
  void connection_closing(Connection& c) override;
  void connection_freed(Connection& c) override;
  void release(Connection& c) override { release(&c); }
  void flush_after_reads(Connection& c) override;

 private:
  // What the scheduler keeps of an origin; its connections are in pool_.
  struct Origin {
    explicit Origin(int max_per_host) : limit(max_per_host) {}
    std::deque<Transfer*> queue;   // waiting for a connection, in order
    HostLimit limit;               // connections it may have now
    double next_start_ms = 0;      // uv_now ms: a paced origin's next request not before
    bool no_pipelining = false;    // it dropped pipelined requests once
    std::uint64_t held_until = 0;  // uv_now ms: no new request before (429/503)
    bool ready = false;            // listed in ready_
  };

  void enqueue(Transfer* t, bool front);
  Origin& origin(const std::string& key) {
    return origins_.try_emplace(key, opts_.max_per_host).first->second;
  }
  /// Closes idle connections of `key` above its limit (the busy ones close when released),
  /// while the limit counts connections (HostLimit::counts_connections).
  void trim_idle(const std::string& key);
  bool over_limit(const std::string& key) const;
  /// Requests to an origin are paced (max_rate_per_host, wait_ms): the gap before the next.
  bool paced(const std::string& key) const {
    return opts_.max_rate_per_host > 0 || opts_.wait_ms > 0 || crawl_delay_ms(key) > 0;
  }
  double pace_gap_ms(const std::string& key);

  // robots.txt (ClientOptions::robots), per origin, kept apart from origins_ (which forgets
  // an origin with nothing queued or open).
  struct RobotsEntry {
    bool fetching = true;
    RobotsRules rules;
    std::uint64_t expires_ms = 0;  // uv_now ms; then asked again
    std::string failure;           // why robots.txt could not be had ("": it was)
  };
  static constexpr std::size_t kRobotsKept = 100'000;
  static constexpr std::uint64_t kRobotsTtlMs = 24 * 3600 * 1000ULL;
  static constexpr std::uint64_t kRobotsRetryMs = 5 * 60 * 1000ULL;
  /// `t` may go on: robots.txt of its origin is known and allows it, or is being fetched (the
  /// origin waits). false: `t` was failed with Errc::robots_disallowed.
  bool robots_admit(Transfer* t);
  const RobotsEntry* robots_entry(const std::string& key) const;
  bool robots_pending(const std::string& key) const;
  void fetch_robots(const std::string& key);
  void robots_done(const std::string& key, const TransferResult& r, const std::string& body);
  std::uint64_t crawl_delay_ms(const std::string& key) const;
  void fail_robots(Transfer* t, const RobotsEntry& e);
  /// `o` may not open another connection before one of its own answers.
  bool waits_for_answers(const PoolCounts& n) const {
    return opts_.initial_per_host > 0 && n.unanswered >= opts_.initial_per_host;
  }
  void mark_ready(const std::string& key, Origin& o);
  void schedule_pump();
  void pump();
  bool evict_idle();
  /// A busy connection of `o` with room for one more pipelined request, the least loaded; null
  /// if none (or pipelining is off).
  Connection* pipeline_room(const std::string& key, const Origin& o, const Transfer& t);
  void drop_origin_if_unused(const std::string& key);
  void run_posted();
  void wake();  // run posted_ on the next tick
  void maybe_closed();
  void run_deferred();
  void watch_quiet();
  static void on_idle_cb(uv_idle_t* h) noexcept;
  static void on_handle_closed(uv_handle_t* h) noexcept;
  static void on_deadline_cb(uv_timer_t* t) noexcept;
  void arm_deadline_timer();
  void expire_deadlines();
  void arm_retry_timer();
  void run_retries();

  uv_loop_t* loop_;
  ClientOptions opts_;
  Resolver resolver_;
  ReadBudget budget_;                // slice, rate and wake-ups of every connection's reads
  std::unique_ptr<TlsContext> tls_;  // null when it could not be set up:
  Error tls_error_;                  // then this says why
  uv_idle_t poster_{};               // runs posted_ on the next tick
  uv_timer_t deadline_timer_{};      // fires at the earliest entry of deadlines_
  uv_prepare_t pass_start_{};        // before each poll: a fresh slice for the reads
  uv_check_t flusher_{};             // after each poll: sends what to_flush_ pipelined
  std::vector<Connection*> to_flush_;
  uv_timer_t quiet_timer_{};  // while the budget watches sockets: relaxes the quiet ones
  uv_timer_t speed_timer_{};  // every second when a lowest speed is set
  uv_timer_t rate_timer_{};   // --limit-rate: restarts deferred reads once tokens return
  std::multimap<std::uint64_t, std::uint64_t> deadlines_;  // uv_now ms -> transfer id
  uv_timer_t retry_timer_{};  // fires at the earliest of retries_ and held_
  std::multimap<std::uint64_t, std::uint64_t> retries_;  // uv_now ms -> transfer id to requeue
  std::multimap<std::uint64_t, std::string> held_;       // uv_now ms -> held origin to resume
  int open_handles_ = 8;  // poster_, pass_start_, flusher_, the deadline/retry/quiet/speed/rate
                          // timers
  std::vector<std::function<void()>> posted_;
  bool pump_scheduled_ = false;
  bool pumping_ = false;  // re-entrancy guard for pump()
  bool pump_again_ = false;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Transfer*> transfers_;  // every transfer not yet done
  std::unordered_map<std::string, Origin> origins_;
  std::unordered_map<std::string, RobotsEntry> robots_;
  std::string robots_token_;                      // of opts_.user_agent
  std::deque<std::string> ready_;                 // origins with queued transfers to serve
  std::minstd_rand rng_{std::random_device{}()};  // random_wait
  ConnectionPool<Connection> pool_;               // open connections (not closing), by origin
  std::size_t live_conns_ = 0;                    // connections not yet freed
  std::size_t queued_ = 0;
  ClientStats stats_;
  bool closing_ = false;
  bool resolver_idle_ = false;   // resolver closed with nothing in flight
  bool handles_closed_ = false;  // poster_ closed: nothing of ours is left
  bool fully_closed_ = false;    // poster_'s close callback ran
  bool detached_ = false;        // the Client is gone
  std::function<void()> on_closed_;
  SegmentPool* segment_pool_ = nullptr;
};

}  // namespace uvget
