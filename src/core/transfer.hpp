// Transfer: one download's life: queued, on a connection, following redirects, finishing its
// sink, done. Owns the request's sink; borrows a connection from the client for each exchange.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <uvget/client.hpp>

#include "core/checksum.hpp"
#include "http/connection.hpp"
#include "http/content_decoder.hpp"
#include "sink/split_file.hpp"
#include "url.hpp"

namespace uvget {

class Transfer final : public Exchange {
 public:
  /// waiting: failed, and waiting (in the client's retry schedule, or for its sink to restart)
  /// before running again.
  /// preparing: the sink looks for what an earlier run left (Sink::prepare) before queueing.
  enum class Phase { preparing, queued, running, waiting, finishing, done };

  Transfer(Client::Impl& client, std::uint64_t id, Request request, Url url, Callbacks callbacks,
           std::unique_ptr<BodyHash> hash);
  ~Transfer();

  /// Right after get(): lets the sink prepare, then joins the client's queue (at its front
  /// when `front`: a segment of a download already running).
  void admit(bool front);
  /// Runs the current URL's request on `c` (fresh or parked).
  void start(Connection* c);
  /// Fails with `error`: closes the connection, aborts the sink, then completes.
  void fail(Error error);

  std::uint64_t id() const noexcept { return id_; }
  Phase phase() const noexcept { return phase_; }
  const Url& url() const noexcept { return url_; }
  bool needs_fresh_connection() const noexcept { return needs_fresh_; }
  /// Its request may be pipelined behind others: a plain GET or HEAD, not split, not resumed.
  bool pipelinable() const;
  std::uint64_t timeout_ms() const noexcept { return timeout_ms_; }
  void set_timeout(std::uint64_t ms) noexcept { timeout_ms_ = ms; }
  /// Called every second by the client when a lowest speed is set: fails the transfer when it
  /// has been too slow for too long.
  void check_speed(std::uint64_t now_ms, std::uint64_t min_bytes_per_s, std::uint64_t for_ms);
  /// The retry delay is over: back to the queue.
  void set_queued() noexcept { phase_ = Phase::queued; }
  /// The origin's HostLimit ticket of the request about to start (see HostLimit::sent).
  void set_limit_ticket(std::uint64_t ticket) noexcept { limit_ticket_ = ticket; }
  std::uint64_t limit_ticket() const noexcept { return limit_ticket_; }
  int attempts() const noexcept { return attempts_; }
  /// A robots.txt fetch of the client's own: never held back by robots.txt itself.
  void set_robots_exempt() noexcept { robots_exempt_ = true; }
  bool robots_exempt() const noexcept { return robots_exempt_; }
  /// An answer to this transfer changed its host's connection limit to `limit`.
  void note_host_limit(int limit) noexcept { host_limit_ = limit; }

 private:
  void on_exchange_head(Response& head) override;
  void on_exchange_body(std::span<const std::byte> bytes) override;
  std::size_t body_room() const override {
    return !split_ && sink_ ? sink_->room() : SIZE_MAX;  // from the first read, head and all
  }
  void on_exchange_done(const Error& error, bool retry_safe) override;
  void on_exchange_unanswered(bool server_broke) override;
  /// Hands body bytes (decoded ones when decoding) to the checksum, on_data and the sink;
  /// false when the sink asks the reader to pause. Check phase_ after it.
  bool deliver(std::span<const std::byte> bytes);
  /// Decodes `bytes`, pulling one buffer at a time, until the input is used up or the sink is
  /// full: then the rest of the input waits in undecoded_ and reading pauses.
  void decode_body(std::span<const std::byte> bytes);
  /// The sink drained while decoding was paused: decode what waits, then read again (or, when
  /// the response had ended meanwhile, settle it).
  void resume_decoding();
  /// The exchange ended and every byte of it is delivered: what comes next.
  void settle(const Error& error);
  void follow_redirect();
  /// The server refused or garbled the range: ask again for the whole body (not an attempt).
  void start_over();
  /// A 206 continuing the held bytes, or a 416 saying they are complete: the sink appends.
  void continue_held(Response& head, std::uint64_t total);
  Sink::Events sink_events();
  // Segmented download (Request::split).
  struct Split;
  /// Splits this response's body when the request, the sink and the server allow; true if so.
  bool try_split(const Response& head, std::optional<std::uint64_t> total, bool continuing);
  void split_body(std::span<const std::byte> bytes);
  /// This transfer's own stream stops: its segment is complete, or the rest of it (when the
  /// stream broke) goes back to the queue for a segment request of its own.
  void end_stream();
  void spawn_segments();
  void retire_stream_sink();
  void segment_done(std::uint64_t from, const TransferResult& r);
  /// The next source for a segment (round robin over those that have not failed); SIZE_MAX if
  /// none is left.
  std::size_t pick_source();
  /// `source` failed segment `r`: it gets no more, and what `r` lacks goes back to the queue.
  /// False when no source is left (the download fails).
  bool drop_source(std::size_t source, ByteRange r);
  /// The parts of `r` not on disk go to the front of the queue; returns the bytes of `r` that
  /// are on disk.
  std::uint64_t requeue_lacking(ByteRange r);
  /// Halves the largest part still coming and queues its second half; false if none is worth it.
  bool steal();
  /// steal() found nothing worth taking while connections are free: it runs again in a while.
  void look_again_later();
  /// Every segment over: finish (or, when stopping, abort) the sink.
  void split_progress();
  /// A failed exchange: retried when the error may pass and attempts are left, else failed.
  void fail_or_retry(Error error);
  void complete(Error error);
  Error with_url(Error e) const;

  Client::Impl& client_;
  const std::uint64_t id_;
  const std::string requested_url_;
  Url url_;  // the URL being fetched now (changes on redirects)
  Method method_;
  HeaderList headers_;
  std::unique_ptr<Sink> sink_;      // null: no sink
  std::unique_ptr<BodyHash> hash_;  // null: no checksum to verify
  const bool fail_on_http_error_;
  Callbacks cbs_;
  Phase phase_ = Phase::queued;
  Connection* conn_ = nullptr;  // non-null while an exchange runs
  bool needs_fresh_ = false;    // a stale keep-alive failed once: use a new connection
  bool stale_retry_used_ = false;
  bool keep_body_ = false;  // the current response's body goes to the sink
  bool sink_opened_ = false;
  std::string redirect_to_;  // Location of a redirect being drained
  Error deferred_error_;     // reported once the current body is drained
  int status_ = 0;
  int attempts_ = 0;
  std::uint64_t retry_after_ms_ = 0;  // the last response's Retry-After; 0: none
  std::uint64_t moved_ = 0;           // bytes received in this attempt (head and body)
  std::uint64_t speed_mark_ = 0;      // moved_ at the last speed check
  std::uint64_t speed_mark_ms_ = 0;   // when; 0: not measured yet in this attempt
  std::uint64_t slow_since_ms_ = 0;   // below the lowest speed since; 0: not slow
  bool retry_after_too_long_ = false;
  Sink::Held held_;                 // what the sink held when the request went out
  std::uint64_t range_from_ = 0;    // the request asked for bytes from here on; 0: the whole
  std::uint64_t resumed_from_ = 0;  // the final response continued this many held bytes
  bool ranges_off_ = false;         // never ask for a range again (refused, or the caller's own)
  bool own_range_ = false;          // the caller's request carries a Range (a split's segment)
  bool start_over_ = false;         // the range answer cannot be used: ask for the whole body
  bool held_complete_ = false;      // 416: the held bytes are the whole body
  bool ranged_ = false;             // the request asked for a range (from range_from_)
  const bool decompress_;
  std::unique_ptr<ContentDecoder> decoder_;  // non-null: this response's body is decoded
  std::vector<std::byte> decoded_;           // the decoder's output buffer
  std::vector<std::byte> undecoded_;         // input waiting while the sink is full
  std::uint64_t encoded_bytes_ = 0;          // of this response, as it came
  bool decode_paused_ = false;               // decoding waits for the sink to drain
  bool settle_pending_ = false;              // the exchange ended while decoding waited
  const int split_n_;
  const std::uint64_t max_body_;  // Request::max_body_bytes
  /// The body would pass max_body_: fails the transfer (true) with what says so.
  bool over_max(std::uint64_t total, bool announced);
  const std::uint64_t min_split_;
  const std::vector<std::string> mirrors_;  // Request::mirrors
  const std::uint64_t steal_ms_;            // Request::split_steal_ms
  std::unique_ptr<Split> split_;            // non-null once the body is fetched in segments
  int redirects_ = 0;
  bool reused_ = false;
  std::uint64_t bytes_ = 0;
  std::uint64_t timeout_ms_ = 0;  // non-zero: an entry in the client's deadlines
  std::uint64_t started_ns_;
  std::uint64_t first_byte_ns_ = 0;
  std::uint64_t limit_ticket_ = 0;
  int host_limit_ = 0;                // TransferResult::host_limit
  std::string etag_, last_modified_;  // of the last response head
  bool robots_exempt_ = false;
};

}  // namespace uvget
