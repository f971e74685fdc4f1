// A download's state machine: exchange, redirects, the sink, the result.
#include "core/transfer.hpp"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <deque>
#include <map>
#include <optional>

#include "core/client_impl.hpp"
#include "core/policies.hpp"
#include "core/segment_pool.hpp"
#include "http/headers.hpp"
#include "http/request_writer.hpp"
#include "text.hpp"

namespace uvget {

// A part's pace as steal() sees it: bytes a second over the last window of 200 ms or more
// (so a part that slows down shows it), or since its start before the first such window.
struct Pace {
  std::uint64_t since = 0;     // uv_now when the part began
  std::uint64_t mark_ms = 0;   // start of the current window
  std::uint64_t mark_got = 0;  // bytes at that time
  std::uint64_t per_s = 0;     // over the last full window; 0: none yet
  std::uint64_t eta_ms(std::uint64_t now, std::uint64_t got, std::uint64_t left,
                       std::uint64_t stalled_ms) {
    if (mark_ms == 0) mark_ms = since;
    if (got < mark_got) mark_got = got;  // the part started over (a retry)
    if (now >= mark_ms + 200) {
      per_s = (got - mark_got) * 1000 / (now - mark_ms);
      mark_ms = now;
      mark_got = got;
    } else if (per_s == 0 && now > since && got > 0) {
      return left * 1000 / std::max<std::uint64_t>(1, got * 1000 / (now - since));
    }
    if (per_s == 0) return now >= since + stalled_ms ? UINT64_MAX : 0;
    return left / per_s * 1000 + left % per_s * 1000 / per_s;
  }
};

struct Transfer::Split {
  ~Split() {
    if (!steal_timer) return;
    steal_timer->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(steal_timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  SplitFile* file = nullptr;
  uv_timer_t* steal_timer = nullptr;  // looks again for a slow part while connections are free
  Pace stream_pace;                   // of the first stream, since the split began
  std::uint64_t total = 0;
  std::string validator;              // If-Range of every segment request
  std::deque<ByteRange> queue;        // segments not started
  ByteRange stream;                   // the segment this transfer's own response covers
  std::uint64_t stream_pos = 0;       // of it, bytes written so far
  std::unique_ptr<Sink> stream_sink;  // null once the stream's segment ended
  std::unique_ptr<Sink> retired;      // the stream's sink once ended (see retire_stream_sink)
  bool sink_ending = false;           // the file sink's finish or abort has been called
  bool stream_ending = false;         // end_stream() ran
  struct Child {
    std::uint64_t id = 0;  // transfer id here, or the SegmentPool's token
    bool remote = false;
    std::shared_ptr<std::atomic<std::uint64_t>> written;  // remote: bytes it wrote
    ByteRange range;  // its part: range.to moves down when it is cut (steal())
    Pace pace;
    std::size_t source = 0;  // index into sources
    std::shared_ptr<SegmentCut> cut;
    bool cut_short = false;  // steal() moved its end
  };
  // Where segments are asked for: [0] the URL being fetched, then Request::mirrors. One that
  // failed a segment gets no more.
  struct Source {
    std::string url;
    bool failed = false;
  };
  std::vector<Source> sources;
  std::size_t next_source = 0;
  std::size_t last_done_source = SIZE_MAX;  // of the part that finished last, until used
  std::size_t avoid_source = SIZE_MAX;      // the source of the part steal() just cut
  std::map<std::uint64_t, Child> children;  // segment start -> its request
  bool file_open = false;                   // with a SegmentPool: the .part exists
  bool waiting_open = false;
  bool stopping = false;  // failing: waiting for every segment to end
  Error error;            // why, when stopping
};

namespace {

// Segments are never smaller than this (a Range request costs a round trip, maybe a handshake).
constexpr std::uint64_t kMinSegment = 1 << 20;
// Work taken from a part still coming (steal()) is smaller: by then a connection to the source
// that takes it is open, and the slow part it shortens is what the download waits for.
constexpr std::uint64_t kMinTaken = 256 << 10;

}  // namespace

Transfer::Transfer(Client::Impl& client, std::uint64_t id, Request request, Url url,
                   Callbacks callbacks, std::unique_ptr<BodyHash> hash)
    : client_(client),
      id_(id),
      requested_url_(std::move(request.url)),
      url_(std::move(url)),
      method_(request.method),
      headers_(std::move(request.headers)),
      sink_(std::move(request.sink)),
      hash_(std::move(hash)),
      fail_on_http_error_(request.fail_on_http_error),
      cbs_(std::move(callbacks)),
      decompress_(request.decompress),
      split_n_(request.split),
      max_body_(request.max_body_bytes),
      min_split_(request.min_split_size),
      mirrors_(std::move(request.mirrors)),
      steal_ms_(request.split_steal_ms),
      started_ns_(uv_hrtime()) {
  // The caller's own Range is theirs: never replaced by a resume.
  for (auto& h : headers_)
    if (iequals(h.first, "Range") || iequals(h.first, "If-Range")) ranges_off_ = own_range_ = true;
  if (method_ != Method::get) ranges_off_ = true;
}

Transfer::~Transfer() = default;

void Transfer::admit(bool front) {
  if (!sink_) return client_.admit(this, front);
  phase_ = Phase::preparing;
  sink_->prepare(client_.loop(), [this, front] {
    if (phase_ != Phase::preparing) return;
    auto queue = [this, front] {
      phase_ = Phase::queued;
      client_.admit(this, front);
    };
    // A checksum must cover every byte: what an earlier run left is hashed first (on the
    // threadpool; nothing else touches hash_ meanwhile), so that it can be continued.
    if (!hash_ || ranges_off_ || sink_->held().bytes == 0) return queue();
    hash_->restart();
    bool replaying = sink_->replay_held(
        [h = hash_.get()](std::span<const std::byte> bytes) { h->update(bytes); },
        [this, queue](Error e) {
          if (phase_ != Phase::preparing) return;
          if (e) hash_->restart();  // unreadable: the body comes whole, as without a resume
          queue();
        });
    if (!replaying) queue();
  });
}

// The URL the caller asked for leads the line (it is what they look for in their list), and
// the one that failed follows when a redirect led elsewhere (Error::message).
Error Transfer::with_url(Error e) const {
  if (!e) return e;
  e.url = requested_url_;
  std::string at = url_.str();
  e.at = at == requested_url_ ? std::string() : std::move(at);
  return e;
}

void Transfer::start(Connection* c) {
  phase_ = Phase::running;
  conn_ = c;
  needs_fresh_ = false;
  keep_body_ = false;
  redirect_to_.clear();
  deferred_error_ = {};
  status_ = 0;
  bytes_ = 0;
  ++attempts_;
  moved_ = speed_mark_ = speed_mark_ms_ = slow_since_ms_ = 0;
  range_from_ = resumed_from_ = 0;
  start_over_ = held_complete_ = ranged_ = false;
  decoder_.reset();
  undecoded_.clear();
  encoded_bytes_ = 0;
  decode_paused_ = settle_pending_ = false;
  if (sink_ && !ranges_off_) {
    held_ = sink_->held();
    // Something held (a prefix, or a segmented .part's ranges). A checksum must cover every
    // byte: continue only what this transfer hashed itself.
    bool some = held_.bytes > 0 || held_.total > 0 || !held_.validator.empty();
    if (some && (!hash_ || hash_->bytes() == held_.bytes)) {
      ranged_ = true;
      range_from_ = held_.bytes;
    }
  }
  auto has = [](const HeaderList& list, std::string_view name) {
    return std::any_of(list.begin(), list.end(), [&](auto& h) { return iequals(h.first, name); });
  };
  bool accept_encoding = decompress_ && !has(headers_, "Accept-Encoding") &&
                         !has(client_.opts().headers, "Accept-Encoding");
  std::string req;
  req.reserve(256);
  if (!ranged_ && !accept_encoding) {
    write_request(req, method_, url_, client_.opts().user_agent, client_.opts().headers, headers_);
  } else {
    HeaderList more = headers_;
    if (ranged_) {
      more.emplace_back("Range", "bytes=" + std::to_string(range_from_) + "-");
      if (!held_.validator.empty()) more.emplace_back("If-Range", held_.validator);
    }
    if (accept_encoding) more.emplace_back("Accept-Encoding", std::string(accepted_encodings()));
    write_request(req, method_, url_, client_.opts().user_agent, client_.opts().headers, more);
  }
  client_.count_request(c->requests() > 0);
  reused_ = c->requests() > 0;
  c->begin(this, std::move(req), method_ == Method::head);
}

void Transfer::on_exchange_head(Response& head) {
  status_ = head.status;
  etag_ = std::string(head.header("ETag").value_or(""));
  last_modified_ = std::string(head.header("Last-Modified").value_or(""));
  first_byte_ns_ = uv_hrtime();
  if (conn_) client_.connection_answered(*conn_);
  retry_after_ms_ = 0;
  retry_after_too_long_ = false;
  if (auto ra = head.header("Retry-After"); ra && (head.status == 429 || head.status >= 500)) {
    if (auto ms = parse_retry_after(*ra, std::time(nullptr))) {
      retry_after_ms_ = *ms;
      retry_after_too_long_ = *ms > client_.opts().retry_after_max_ms;
    }
  }
  client_.host_answered(*this,
                        head.status == 429   ? HostLimit::Answer::too_many
                        : head.status == 503 ? HostLimit::Answer::unavailable
                                             : HostLimit::Answer::ok,
                        retry_after_ms_);
  if (is_redirect(head.status)) {
    auto location = head.header("Location");
    if (!location || location->empty()) {
      deferred_error_ =
          Error(Errc::bad_redirect, "HTTP " + std::to_string(head.status) + " without a Location");
    } else if (redirects_ >= client_.opts().max_redirects) {
      deferred_error_ =
          Error(Errc::too_many_redirects,
                "more than " + std::to_string(client_.opts().max_redirects) + " redirects");
    } else {
      redirect_to_ = std::string(*location);
    }
    return;  // the body of a redirect is drained, not kept
  }
  if (ranged_ && (head.status == 206 || head.status == 416)) {
    // The held bytes are decoded ones; a range of an encoded body does not continue them.
    if (head.status == 206 && decompress_ &&
        is_encoded(head.header("Content-Encoding").value_or(""))) {
      start_over_ = true;
      return;
    }
    auto range_header = head.header("Content-Range");
    auto cr = range_header ? parse_content_range(*range_header) : std::nullopt;
    bool total_ok = cr && cr->length && (!held_.total || *cr->length == held_.total);
    if (head.status == 206 && total_ok && cr->first == range_from_ && *cr->last + 1 == *cr->length)
      return continue_held(head, *cr->length);
    if (head.status == 416 && total_ok && !cr->first && *cr->length == range_from_) {
      held_complete_ = true;  // finished in on_exchange_done, once this body is drained
      return;
    }
    start_over_ = true;  // a range we did not ask for, or a changed length: drain, then again
    return;
  }
  if (head.status == 206 && !ranges_off_ && !ranged_) {
    deferred_error_ = Error(Errc::http_status, "HTTP 206 to a request for the whole body");
    return;
  }
  if (fail_on_http_error_ && (head.status < 200 || head.status > 299)) {
    deferred_error_ = Error(Errc::http_status, "HTTP " + std::to_string(head.status) +
                                                   (head.reason.empty() ? "" : " " + head.reason));
    return;
  }
  if (decompress_ && method_ != Method::head) {
    auto coding = make_content_decoder(head.header("Content-Encoding").value_or(""));
    if (!coding) {
      deferred_error_ = coding.error();
      return;
    }
    decoder_ = std::move(*coding);
  }
  if (!decoder_ && method_ != Method::head && head.content_length() &&
      over_max(*head.content_length(), true))
    return;
  keep_body_ = true;
  if (hash_) hash_->restart();  // this response's body is the one to check
  if (cbs_.on_head) cbs_.on_head(head);
  if (phase_ != Phase::running) return;  // cancelled from on_head
  if (sink_) {
    if (!decoder_ && head.status == 200 && try_split(head, head.content_length(), false)) return;
    sink_opened_ = true;
    Error e;
    if (!decoder_) {
      e = sink_->open(client_.loop(), head, sink_events());
    } else {
      // The sink sees the decoded body: the encoded length and coding are not its.
      Response decoded = head;
      std::erase_if(decoded.headers, [](auto& h) {
        return iequals(h.first, "Content-Length") || iequals(h.first, "Content-Encoding");
      });
      e = sink_->open(client_.loop(), decoded, sink_events());
    }
    if (e) fail(std::move(e));
  }
}

// What a sink this transfer writes to may tell it: reading may go on, or the sink failed.
Sink::Events Transfer::sink_events() {
  Sink::Events ev;
  ev.drained = [this] {
    if (decode_paused_) return resume_decoding();
    if (conn_) conn_->resume_reading();
  };
  ev.failed = [this](Error e) { fail(std::move(e)); };
  return ev;
}

void Transfer::continue_held(Response& head, std::uint64_t total) {
  if (total > 0 && over_max(total, true)) return;
  keep_body_ = true;
  resumed_from_ = range_from_;
  if (cbs_.on_head) cbs_.on_head(head);
  if (phase_ != Phase::running) return;  // cancelled from on_head
  if (try_split(head, total, true)) return;
  sink_opened_ = true;
  if (Error e = sink_->open_continued(client_.loop(), head, sink_events())) fail(std::move(e));
}

void Transfer::start_over() {
  ranges_off_ = true;
  --attempts_;  // the server's answer to the range, not a failure
  phase_ = Phase::queued;
  client_.requeue(this);
}

void Transfer::on_exchange_body(std::span<const std::byte> bytes) {
  moved_ += bytes.size();
  if (!keep_body_) return;
  if (split_) return split_body(bytes);
  if (decoder_) return decode_body(bytes);
  if (!deliver(bytes) && phase_ == Phase::running && conn_) conn_->pause_reading();
}

bool Transfer::over_max(std::uint64_t total, bool announced) {
  if (max_body_ == 0 || total <= max_body_) return false;
  fail(Error(Errc::body_too_large,
             (announced ? "the body is " + std::to_string(total) + " bytes"
                        : "the body passed " + std::to_string(max_body_) + " bytes") +
                 ", over the limit of " + std::to_string(max_body_) + " bytes"));
  return true;
}

bool Transfer::deliver(std::span<const std::byte> bytes) {
  if (over_max(resumed_from_ + bytes_ + bytes.size(), false)) return true;
  bytes_ += bytes.size();
  if (hash_) hash_->update(bytes);
  client_.count_body(bytes.size());
  if (cbs_.on_data) {
    cbs_.on_data(bytes);
    if (phase_ != Phase::running) return true;
  }
  return !sink_ || sink_->write(bytes);
}

void Transfer::decode_body(std::span<const std::byte> bytes) {
  encoded_bytes_ += bytes.size();
  if (decode_paused_) {  // the rest of a read that came in after the pause
    undecoded_.insert(undecoded_.end(), bytes.begin(), bytes.end());
    return;
  }
  if (decoded_.empty()) decoded_.resize(64 * 1024);
  std::span<const std::byte> in = bytes;
  for (;;) {
    std::size_t in_before = in.size();
    auto got = decoder_->decode(in, decoded_);
    if (!got) return fail(got.error());
    bool full = *got == decoded_.size();
    if (*got > 0) {
      bool more = deliver(std::span(decoded_.data(), *got));
      if (phase_ != Phase::running) return;
      if (!more) {
        decode_paused_ = true;
        undecoded_.assign(in.begin(), in.end());
        if (conn_) conn_->pause_reading();
        return;
      }
    }
    if (!full && (in.empty() || in.size() == in_before)) return;
  }
}

void Transfer::resume_decoding() {
  decode_paused_ = false;
  std::vector<std::byte> waiting = std::move(undecoded_);
  undecoded_.clear();
  encoded_bytes_ -= waiting.size();  // counted again as decode_body takes them
  decode_body(waiting);
  if (phase_ != Phase::running || decode_paused_) return;
  if (settle_pending_) {
    settle_pending_ = false;
    return settle({});
  }
  if (conn_) conn_->resume_reading();
}

void Transfer::on_exchange_done(const Error& error, bool retry_safe) {
  Connection* c = conn_;
  conn_ = nullptr;
  // A connection refused or reset before any answer tells the host's limit (a stale keep-alive
  // the server closed while idle does not).
  if (error && status_ == 0 && !retry_safe &&
      (error.code == Errc::connect || error.code == Errc::connection_reset))
    client_.host_answered(*this, HostLimit::Answer::refused_or_reset, 0);
  if (c) client_.release(c);
  if (phase_ != Phase::running) return;
  if (split_) {
    // The stream ended before its segment did (a segment that ends with the body ends the
    // exchange itself, in split_body): the rest becomes a segment request of its own.
    if (split_->stream_sink) end_stream();
    return;
  }
  if (error && retry_safe && !stale_retry_used_ && !sink_opened_) {
    // The server dropped a kept-alive connection as the request went out: repeat once.
    stale_retry_used_ = true;
    needs_fresh_ = true;
    phase_ = Phase::queued;
    --attempts_;
    client_.requeue(this);
    return;
  }
  if (!error && decode_paused_) {
    settle_pending_ = true;  // once what waits is decoded and written (resume_decoding)
    return;
  }
  settle(error);
}

void Transfer::settle(const Error& error) {
  if (error) {
    decode_paused_ = false;  // what waits is of a body that broke
    undecoded_.clear();
    return fail_or_retry(error);
  }
  if (deferred_error_) return fail_or_retry(deferred_error_);
  if (!redirect_to_.empty()) return follow_redirect();
  if (start_over_) return start_over();
  if (held_complete_) {
    resumed_from_ = range_from_;
    sink_opened_ = true;
    Response head;
    head.status = status_;
    if (Error e = sink_->open_continued(client_.loop(), head, sink_events()))
      return fail(std::move(e));
    keep_body_ = true;  // so that the checksum below covers the held bytes
  }
  if (decoder_ && keep_body_ && encoded_bytes_ > 0 && !decoder_->finished()) {
    return fail_or_retry(Error(Errc::size_mismatch, "the " + decoder_->name() +
                                                        " body stops before the end of its "
                                                        "compressed data (truncated)"));
  }
  phase_ = Phase::finishing;
  if (hash_ && keep_body_) {
    if (Error e = hash_->verify()) {
      phase_ = Phase::running;  // so that fail() aborts the sink: no final file
      return fail(std::move(e));
    }
  }
  if (!sink_) return complete({});
  sink_->finish([this](Error e) { complete(std::move(e)); });
}

void Transfer::on_exchange_unanswered(bool server_broke) {
  conn_ = nullptr;
  if (phase_ != Phase::running) return;
  if (server_broke) client_.stop_pipelining(url_.origin());
  --attempts_;  // it was never answered: not a try
  phase_ = Phase::queued;
  if (client_.closing()) return;  // Client::close() fails every transfer
  // Queued, not started here: those told after it (the connection tells the last first) go
  // in front of it, so the order of the list holds.
  client_.admit(this, true);
}

bool Transfer::pipelinable() const {
  if (split_n_ >= 2 || needs_fresh_ || own_range_) return false;  // a segment has its Range
  if (!sink_ || ranges_off_) return true;
  // A resume asks for a range and may be split: never behind others.
  const Sink::Held& h = sink_->held();
  return h.bytes == 0 && h.total == 0 && h.validator.empty();
}

void Transfer::follow_redirect() {
  auto next = redirect_target(url_, redirect_to_, client_.opts().allow_https_downgrade);
  if (!next) return fail(next.error());
  drop_credentials_leaving(url_, *next, headers_);
  url_ = std::move(*next);
  ++redirects_;
  attempts_ = 0;
  stale_retry_used_ = false;
  phase_ = Phase::queued;
  client_.requeue(this);
}

void Transfer::check_speed(std::uint64_t now_ms, std::uint64_t min_bytes_per_s,
                           std::uint64_t for_ms) {
  if (phase_ != Phase::running || !conn_) return;
  // Our own sink holds it back, or it waits behind other pipelined requests: not its fault.
  if (conn_->paused() || !conn_->answering(this) || speed_mark_ms_ == 0) {
    speed_mark_ = moved_;
    speed_mark_ms_ = now_ms;
    slow_since_ms_ = 0;
    return;
  }
  std::uint64_t elapsed = now_ms - speed_mark_ms_;
  if (elapsed == 0) return;
  std::uint64_t rate = (moved_ - speed_mark_) * 1000 / elapsed;
  speed_mark_ = moved_;
  speed_mark_ms_ = now_ms;
  if (rate >= min_bytes_per_s) {
    slow_since_ms_ = 0;
    return;
  }
  if (slow_since_ms_ == 0) slow_since_ms_ = now_ms - elapsed;
  if (now_ms - slow_since_ms_ < for_ms) return;
  Connection* c = conn_;
  conn_ = nullptr;
  c->abandon(this);  // its callbacks never come
  if (split_) {      // the stream's segment goes on as a segment request of its own
    if (split_->stream_sink) end_stream();
    return;
  }
  fail_or_retry(Error(Errc::too_slow, "slower than " + std::to_string(min_bytes_per_s) +
                                          " bytes/s for " + std::to_string(for_ms / 1000) + " s (" +
                                          std::to_string(moved_) + " bytes so far)"));
}

void Transfer::fail_or_retry(Error error) {
  const ClientOptions& o = client_.opts();
  if (!retryable(error, status_) || attempts_ > o.retries || client_.closing())
    return fail(std::move(error));
  if (retry_after_too_long_) {
    error.detail += " (Retry-After of " + std::to_string(retry_after_ms_ / 1000) +
                    " s is over the limit: not retried)";
    return fail(std::move(error));
  }
  std::uint64_t delay =
      std::max(backoff_ms(attempts_, o.retry_wait_ms, o.retry_max_wait_ms), retry_after_ms_);
  phase_ = Phase::waiting;
  if (cbs_.on_retry) {
    cbs_.on_retry(with_url(error), attempts_ + 1, delay);
    if (phase_ != Phase::waiting) return;  // cancelled from the callback
  }
  auto again = [this, delay] {
    if (phase_ == Phase::waiting) client_.retry_later(this, delay);
  };
  if (sink_ && sink_opened_) {
    sink_opened_ = false;
    // Keep what arrived when the sink can (the next request asks for the rest), else drop it.
    // (A decoded body is not continued: a range would count the encoded bytes.)
    if (!ranges_off_ && !decoder_ && sink_->suspend(again)) return;
    if (!sink_->restart(again)) {
      phase_ = Phase::running;  // so that fail() runs
      error.detail += " (not retried: the sink cannot start over)";
      return fail(std::move(error));
    }
    return;
  }
  again();
}

void Transfer::fail(Error error) {
  if (phase_ == Phase::done || phase_ == Phase::finishing) return;
  if (phase_ == Phase::waiting) client_.forget_retry(this);
  phase_ = Phase::finishing;
  decode_paused_ = settle_pending_ = false;
  if (conn_) {
    Connection* c = conn_;
    conn_ = nullptr;
    c->abandon(this);
  }
  Error e = std::move(error);
  if (split_) {
    // Every segment ends first: they write into the file the sink is about to close.
    split_->stopping = true;
    split_->error = std::move(e);
    for (auto& [from, child] : split_->children) {
      if (child.remote)
        client_.segment_pool()->cancel(child.id);
      else
        client_.cancel(child.id);
    }
    if (split_->stream_sink)
      split_->stream_sink->abort(split_->error, [this] {
        retire_stream_sink();
        split_progress();
      });
    else
      split_progress();
    return;
  }
  if (!sink_) return complete(std::move(e));
  Sink* sink = sink_.get();
  sink->abort(e, [this, e]() mutable { complete(std::move(e)); });
}

bool Transfer::try_split(const Response& head, std::optional<std::uint64_t> total,
                         bool continuing) {
  if (split_n_ < 2 || hash_ || !total || *total < min_split_ || *total == 0) return false;
  auto* file = dynamic_cast<SplitFile*>(sink_.get());
  if (!file || (continuing && !file->held_on_disk())) return false;
  if (!continuing) {
    auto ranges = head.header("Accept-Ranges");
    if (!ranges || ranges->find("bytes") == std::string_view::npos) return false;
  }
  std::vector<ByteRange> done;
  if (continuing) {
    done = file->done_ranges();
    add_range(done, {0, range_from_});
  }
  auto tasks = plan_segments(*total, done, range_from_, split_n_, kMinSegment);
  if (tasks.empty() || tasks[0].from != range_from_) return false;
  // A fresh body in one piece needs no split; a segmented .part stays one (its holes).
  if (tasks.size() < 2 && done.empty()) return false;
  split_ = std::make_unique<Split>();
  Split& sp = *split_;
  sp.file = file;
  sp.total = *total;
  sp.validator = continuing && !held_.validator.empty() ? held_.validator : validator_of(head);
  sp.stream = tasks[0];
  sp.queue.assign(tasks.begin() + 1, tasks.end());
  sp.sources.push_back({url_.str()});
  for (const std::string& m : mirrors_) sp.sources.push_back({m});
  sp.next_source = sp.sources.size() > 1 ? 1 : 0;  // the URL itself has the first stream
  sp.stream_pace.since = uv_now(client_.loop());
  resumed_from_ = 0;
  for (const ByteRange& d : done) resumed_from_ += d.size();
  sink_opened_ = true;
  if (Error e = file->open_split(client_.loop(), head, *total, continuing, sink_events())) {
    fail(std::move(e));
    return true;
  }
  sp.stream_sink = file->segment(sp.stream, false, nullptr);  // cut by sp.stream.to (steal)
  if (Error e = sp.stream_sink->open(client_.loop(), head, sink_events())) {
    fail(std::move(e));
    return true;
  }
  spawn_segments();
  return true;
}

void Transfer::split_body(std::span<const std::byte> bytes) {
  Split& sp = *split_;
  if (!sp.stream_sink) return;
  std::uint64_t room = sp.stream.size() - sp.stream_pos;
  auto mine = bytes.first(static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size())));
  sp.stream_pos += mine.size();
  bytes_ += mine.size();
  client_.count_body(mine.size());
  if (cbs_.on_data) {
    cbs_.on_data(mine);
    if (phase_ != Phase::running) return;
  }
  bool more = sp.stream_sink->write(mine);
  if (phase_ != Phase::running) return;  // the write failed
  if (sp.stream_pos == sp.stream.size()) return end_stream();
  if (!more && conn_) conn_->pause_reading();
}

void Transfer::end_stream() {
  Split& sp = *split_;
  if (sp.stream_ending) return;
  sp.stream_ending = true;
  if (conn_) {  // the segment is complete: the rest of this response belongs to other segments
    Connection* c = conn_;
    conn_ = nullptr;
    c->abandon(this);  // its callbacks never come
  }
  // Every byte handed to the stream's sink is written (finish flushes; a short segment is
  // fine for the stream's own sink), so the rest starts exactly where the stream stopped.
  if (sp.stream_pos < sp.stream.size())
    sp.queue.push_front({sp.stream.from + sp.stream_pos, sp.stream.to});
  sp.stream_sink->finish([this](Error e) {
    retire_stream_sink();
    if (e) return fail(std::move(e));
    split_progress();
  });
}

void Transfer::retire_stream_sink() {
  // Not destroyed here: this may run inside the sink's own callback, with its frames still on
  // the stack. It goes with the transfer.
  split_->retired = std::move(split_->stream_sink);
}

void Transfer::spawn_segments() {
  Split& sp = *split_;
  SegmentPool* pool = client_.segment_pool();
  if (pool && !sp.file_open) {
    // Segments on other loops open the .part by name: it must exist first.
    if (!sp.waiting_open) {
      sp.waiting_open = true;
      sp.file->when_open([this] {
        split_->file_open = true;
        if (!split_->stopping) split_progress();
      });
    }
    return;
  }
  while (!sp.stopping &&
         static_cast<int>(sp.children.size()) + (sp.stream_sink ? 1 : 0) < split_n_) {
    // Nothing queued: a free connection takes half of the largest part still coming, or looks
    // again in a while (a part may slow down later).
    if (sp.queue.empty() && !steal()) return look_again_later();
    std::size_t source = pick_source();
    if (source == SIZE_MAX) return;  // none left: the failure that took the last one ends it
    ByteRange r = sp.queue.front();
    sp.queue.pop_front();
    auto cut = std::make_shared<SegmentCut>(r.to);
    std::uint64_t now = uv_now(client_.loop());
    auto request = [&] {
      Request req;
      req.url = sp.sources[source].url;
      req.headers = headers_;
      if (source != 0) {
        // Another server: no credentials unless it is the same origin, and no If-Range (its
        // validator is its own); the 206's total is what says it is the same file.
        auto to = Url::parse(req.url);
        if (to) drop_credentials_leaving(url_, *to, req.headers);
      }
      req.headers.emplace_back("Range",
                               "bytes=" + std::to_string(r.from) + "-" + std::to_string(r.to - 1));
      if (!sp.validator.empty() && source == 0) req.headers.emplace_back("If-Range", sp.validator);
      return req;
    };
    if (pool) {
      Request req = request();
      auto written = std::make_shared<std::atomic<std::uint64_t>>(0);
      req.sink = sp.file->remote_segment(r, written, cut);
      std::uint64_t token = pool->run(
          std::move(req), [this, from = r.from](TransferResult res) { segment_done(from, res); });
      if (token) {
        sp.children.emplace(
            r.from, Split::Child{token, true, std::move(written), r, Pace{now}, source, cut});
        continue;
      }
    }
    Request req = request();  // here, on this loop
    req.sink = sp.file->segment(r, true, cut);
    Callbacks cbs;
    cbs.on_done = [this, from = r.from](const TransferResult& res) { segment_done(from, res); };
    auto id = client_.get(std::move(req), std::move(cbs), true);
    if (!id) {
      if (source == 0 || !drop_source(source, r)) return fail(id.error());
      continue;
    }
    sp.children.emplace(r.from, Split::Child{static_cast<std::uint64_t>(*id), false, nullptr, r,
                                             Pace{now}, source, cut});
  }
}

void Transfer::look_again_later() {
  Split& sp = *split_;
  if (steal_ms_ == 0 || sp.stopping || (sp.children.empty() && !sp.stream_sink)) return;
  if (!sp.steal_timer) {
    sp.steal_timer = new uv_timer_t;
    uv_timer_init(client_.loop(), sp.steal_timer);
    uv_unref(reinterpret_cast<uv_handle_t*>(sp.steal_timer));  // never keeps a loop alive
  }
  sp.steal_timer->data = this;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(sp.steal_timer))) return;
  uv_timer_start(
      sp.steal_timer,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<Transfer*>(t->data);
        if (!self || !self->split_ || self->split_->stopping || self->phase_ != Phase::running)
          return;
        self->spawn_segments();
      },
      std::max<std::uint64_t>(100, steal_ms_ / 2), 0);
}

// The part still to come that is largest (the first stream's, or a segment's) is cut in two at
// its middle, and the second half queued: a connection that finished early (a fast mirror)
// takes work from a slow one instead of waiting for it. Only parts of two pieces or more.
bool Transfer::steal() {
  Split& sp = *split_;
  std::uint64_t now = uv_now(client_.loop());
  // How long a part would still take at its own pace so far (in ms; "long" when it has run a
  // while with nothing to show). Parts that end soon are left alone: taking work costs a
  // request and the victim's connection, and pays only against a slow part.
  if (steal_ms_ == 0) return false;
  std::uint64_t best_eta = 0, best_left = 0, best_at = 0;
  Split::Child* victim = nullptr;
  bool stream = false;
  if (sp.stream_sink && !sp.stream_ending) {
    std::uint64_t at = sp.stream.from + sp.stream_pos;
    if (sp.stream.to > at) {
      best_left = sp.stream.to - at;
      best_eta = sp.stream_pace.eta_ms(now, sp.stream_pos, best_left, steal_ms_);
      best_at = at;
      stream = true;
    }
  }
  for (auto& [from, child] : sp.children) {
    std::lock_guard<std::mutex> lock(child.cut->mutex);
    std::uint64_t at = from + child.cut->accepted;
    if (child.cut->end <= at) continue;
    std::uint64_t left = child.cut->end - at;
    std::uint64_t e = child.pace.eta_ms(now, child.cut->accepted, left, steal_ms_);
    if (e > best_eta || (e == best_eta && left > best_left)) {
      best_eta = e;
      best_left = left;
      best_at = at;
      victim = &child;
      stream = false;
    }
  }
  if (best_left < 2 * kMinTaken || best_eta < steal_ms_) return false;
  std::uint64_t mid = best_at + best_left / 2;
  mid -= mid % 4096;
  std::uint64_t end = 0;
  if (stream) {
    end = sp.stream.to;
    sp.stream.to = mid;
    sp.avoid_source = 0;
  } else {
    std::lock_guard<std::mutex> lock(victim->cut->mutex);
    // The sink may have taken more since it was looked at: the cut stays past what it took.
    if (victim->range.from + victim->cut->accepted + kMinTaken > mid) return false;
    end = victim->cut->end;
    victim->cut->end = mid;
    victim->range.to = mid;
    victim->cut_short = true;
    sp.avoid_source = victim->source;
  }
  sp.queue.push_back({mid, end});
  return true;
}

std::size_t Transfer::pick_source() {
  Split& sp = *split_;
  // The source with the fewest parts running (a mirror may allow one connection), in turn
  // among equals.
  std::vector<std::size_t> busy(sp.sources.size(), 0);
  if (sp.stream_sink) ++busy[0];
  for (auto& [from, child] : sp.children) ++busy[child.source];
  // Work taken from a slow part goes elsewhere than its source, when there is elsewhere.
  std::size_t avoid = sp.avoid_source;
  sp.avoid_source = SIZE_MAX;
  std::size_t best = SIZE_MAX;
  for (std::size_t k = 0; k < sp.sources.size(); ++k) {
    std::size_t i = (sp.next_source + k) % sp.sources.size();
    if (sp.sources[i].failed) continue;
    if (best == SIZE_MAX || (best == avoid && i != avoid) || (i != avoid && busy[i] < busy[best]))
      best = i;
  }
  // The source that just finished a part (the fast one, when work is taken from a slow one)
  // goes first among equals.
  std::size_t last = sp.last_done_source;
  if (best != SIZE_MAX && last < sp.sources.size() && !sp.sources[last].failed && last != avoid &&
      busy[last] == busy[best])
    best = last;
  if (best != SIZE_MAX) sp.next_source = best + 1;
  sp.last_done_source = SIZE_MAX;
  return best;
}

bool Transfer::drop_source(std::size_t source, ByteRange r) {
  Split& sp = *split_;
  sp.sources[source].failed = true;
  bool any_left = std::any_of(sp.sources.begin(), sp.sources.end(),
                              [](const Split::Source& s) { return !s.failed; });
  if (!any_left) return false;
  bytes_ += requeue_lacking(r);  // what it wrote stays; what it did not goes back in line
  return true;
}

std::uint64_t Transfer::requeue_lacking(ByteRange r) {
  Split& sp = *split_;
  std::vector<ByteRange> lacking;
  std::uint64_t at = r.from, missing = 0;
  for (const ByteRange& d : sp.file->done_ranges()) {
    if (d.to <= at || d.from >= r.to) continue;
    if (d.from > at) lacking.push_back({at, d.from});
    at = std::max(at, d.to);
  }
  if (at < r.to) lacking.push_back({at, r.to});
  for (auto it = lacking.rbegin(); it != lacking.rend(); ++it) {
    sp.queue.push_front(*it);
    missing += it->size();
  }
  return r.size() - missing;
}

void Transfer::segment_done(std::uint64_t from, const TransferResult& r) {
  std::size_t source = 0;
  ByteRange range{from, from};
  bool cut_short = false;
  if (auto it = split_->children.find(from); it != split_->children.end()) {
    if (it->second.remote)  // its bytes are on disk; the sidecar is this loop's to keep
      if (std::uint64_t n = it->second.written->load())
        split_->file->record_range({from, from + n});
    source = it->second.source;
    range = it->second.range;
    cut_short = it->second.cut_short;
    split_->children.erase(it);
  }
  if (cut_short && !split_->stopping && (r.ok() || r.error.code == Errc::cancelled)) {
    // Ended at a cut (steal()), or with its body just before it: what it wrote counts, and
    // anything it lacks goes back in line.
    bytes_ += requeue_lacking(range);
    split_->last_done_source = source;
  } else if (r.ok()) {
    bytes_ += r.bytes;
    split_->last_done_source = source;
  } else if (!split_->stopping) {
    // Another URL of the file takes over what this one left, unless none is left. A failure
    // of our own (the disk, a limit) is no mirror's: it ends the download.
    bool ours = r.error.code == Errc::cancelled || r.error.code == Errc::file_io ||
                r.error.code == Errc::body_too_large;
    if (ours || !drop_source(source, range)) {
      std::string others = split_->sources.size() < 2 || ours
                               ? std::string()
                               : " (the file's other URLs had failed already)";
      fail(Error(r.error.code,
                 "segment from byte " + std::to_string(from) + ": " + r.error.cause() + others));
      return;
    }
  }
  split_progress();
}

void Transfer::split_progress() {
  Split& sp = *split_;
  if (!sp.stopping) spawn_segments();
  if (!sp.children.empty() || sp.stream_sink || sp.sink_ending) return;
  if (sp.stopping) {
    sp.sink_ending = true;
    Error e = sp.error;
    sink_->abort(e, [this, e]() mutable { complete(std::move(e)); });
    return;
  }
  if (!sp.queue.empty() || phase_ != Phase::running) return;
  if (!sp.file->covers_all()) {  // never a file with a hole under its final name
    return fail(Error(Errc::size_mismatch, "the segments left part of the file unwritten"));
  }
  sp.sink_ending = true;
  phase_ = Phase::finishing;
  sink_->finish([this](Error e) { complete(std::move(e)); });
}

void Transfer::complete(Error error) {
  phase_ = Phase::done;
  TransferResult r;
  r.url = requested_url_;
  r.final_url = url_.str();
  r.status = status_;
  r.bytes = bytes_;
  r.resumed_from = resumed_from_;
  r.attempts = attempts_;
  r.redirects = redirects_;
  r.reused_connection = reused_;
  r.host_limit = host_limit_;
  r.etag = etag_;
  r.last_modified = last_modified_;
  std::uint64_t now = uv_hrtime();
  r.seconds = static_cast<double>(now - started_ns_) / 1e9;
  r.ttfb_seconds = first_byte_ns_ ? static_cast<double>(first_byte_ns_ - started_ns_) / 1e9 : 0;
  r.error = with_url(std::move(error));
  if (!r.error && sink_) r.path = sink_->location();
  client_.transfer_done(this, r, cbs_);  // deletes this
}

}  // namespace uvget
