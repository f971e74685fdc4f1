// Client and its Impl: queues per origin served round-robin under total and per-origin limits,
// the keep-alive pool with LRU eviction, deferred callbacks, and the close protocol.
#include "core/client_impl.hpp"

#include <cctype>

#include "core/check_request.hpp"
#include "core/policies.hpp"
#include "http/request_writer.hpp"
#include "sink/body_buffers.hpp"
#include "trace.hpp"
#include "uv/util.hpp"

namespace uvget {
// ---- Client ------------------------------------------------------------------------------

Result<std::unique_ptr<Client>> Client::create(uv_loop_s* loop, ClientOptions options) {
  if (!loop) return Error(Errc::bad_request, "Client::create: loop is null");
  if (options.max_connections < 1 || options.max_per_host < 1)
    return Error(Errc::bad_request, "connection limits must be at least 1");
  if (options.max_redirects < 0) return Error(Errc::bad_request, "max_redirects must be >= 0");
  if (Error e = validate_headers(options.headers)) return e;
  for (char c : options.user_agent)
    if (c == '\r' || c == '\n' || c == '\0')
      return Error(Errc::bad_request, "user agent holds CR, LF or NUL");
  std::vector<std::pair<std::string, AddressList>> overrides;
  for (auto& [host, addresses] : options.resolve_overrides) {
    AddressList list;
    for (auto& a : addresses) {
      sockaddr_storage s;
      if (!parse_ip_literal(a, s))
        return Error(Errc::bad_request,
                     "resolve override for '" + host + "': '" + a + "' is not an IP address");
      list.push_back(s);
    }
    if (list.empty())
      return Error(Errc::bad_request, "resolve override for '" + host + "' has no address");
    std::string lower;
    for (char c : host)
      lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    overrides.emplace_back(std::move(lower), std::move(list));
  }
  // A CA file named here is parsed now, once per process (later clients share it); the system
  // bundle at the first handshake that needs it, on the threadpool (TlsContext::ensure_ca).
  auto tls = TlsContext::create(
      TlsSettings{options.tls_verify, options.ca_file, options.tls_session_cache});
  // A CA file that was asked for and cannot be used is an error now; without one, a missing
  // system bundle fails only the https downloads.
  if (!tls && !options.ca_file.empty()) return tls.error();
  auto* impl = new Impl(loop, std::move(options), std::move(tls));
  for (auto& [host, list] : overrides) impl->resolver().add_override(host, std::move(list));
  return std::unique_ptr<Client>(new Client(impl));
}

Client::Client(Impl* impl) : impl_(impl) {}
Downloader::~Downloader() = default;

Client::~Client() {
  impl_->detach();
}
Result<TransferId> Client::get(Request request, Callbacks callbacks) {
  return impl_->get(std::move(request), std::move(callbacks));
}
void Client::cancel(TransferId id) {
  impl_->cancel(static_cast<std::uint64_t>(id));
}
void Client::close(std::function<void()> on_closed) {
  impl_->close(std::move(on_closed));
}
ClientStats Client::stats() const {
  return impl_->stats();
}
const ClientOptions& Client::options() const {
  return impl_->opts();
}

// ---- Impl: set-up and requests ---------------------------------------------------------

Client::Impl::Impl(uv_loop_t* loop, ClientOptions options, Result<std::unique_ptr<TlsContext>> tls)
    : loop_(loop),
      opts_(std::move(options)),
      resolver_(loop, Resolver::Options{.kind = opts_.resolver,
                                        .cache_size = opts_.dns_cache_size,
                                        .max_ttl_ms = opts_.dns_cache_ttl_ms,
                                        .min_ttl_ms =
                                            std::min<std::uint64_t>(5'000, opts_.dns_cache_ttl_ms),
                                        .negative_ttl_ms = opts_.dns_negative_ttl_ms}),
      budget_(
          opts_.loop_slice_us, opts_.limit_rate_bytes_per_s, [this] { wake(); },
          [this] { watch_quiet(); }) {
  if (tls)
    tls_ = std::move(*tls);
  else
    tls_error_ = tls.error();
  robots_token_ = robots_token(opts_.user_agent);
  uv_idle_init(loop_, &poster_);
  poster_.data = this;
  uv_timer_init(loop_, &deadline_timer_);
  deadline_timer_.data = this;
  uv_unref(as_handle(&deadline_timer_));  // a deadline alone must not keep the loop alive
  uv_timer_init(loop_, &retry_timer_);
  retry_timer_.data = this;
  uv_timer_init(loop_, &quiet_timer_);
  quiet_timer_.data = this;
  uv_timer_init(loop_, &speed_timer_);
  speed_timer_.data = this;
  uv_timer_init(loop_, &rate_timer_);
  rate_timer_.data = this;
  if (opts_.low_speed_bytes_per_s > 0 && opts_.low_speed_time_ms > 0) {
    uv_timer_start(
        &speed_timer_,
        [](uv_timer_t* h) noexcept {
          auto* self = static_cast<Impl*>(h->data);
          std::vector<Transfer*> running;
          for (auto& [id, t] : self->transfers_)
            if (t->phase() == Transfer::Phase::running) running.push_back(t);
          std::uint64_t now = uv_now(self->loop_);
          for (Transfer* t : running)  // a failing transfer stays in transfers_ until on_done
            t->check_speed(now, self->opts_.low_speed_bytes_per_s, self->opts_.low_speed_time_ms);
        },
        1000, 1000);
    uv_unref(as_handle(&speed_timer_));
  }
  uv_prepare_init(loop_, &pass_start_);
  pass_start_.data = this;
  if (budget_.slicing())  // without a slice, nothing to reset on each pass
    uv_prepare_start(&pass_start_, [](uv_prepare_t* p) noexcept {
      static_cast<Impl*>(p->data)->budget_.new_pass();
    });
  uv_unref(as_handle(&pass_start_));
  uv_check_init(loop_, &flusher_);
  flusher_.data = this;
}

// Runs in the check phase, right after the poll phase whose reads pipelined the requests.
void Client::Impl::flush_after_reads(Connection& c) {
  to_flush_.push_back(&c);
  if (to_flush_.size() > 1 || handles_closed_) return;
  uv_check_start(&flusher_, [](uv_check_t* h) noexcept {
    auto* self = static_cast<Impl*>(h->data);
    std::vector<Connection*> now;
    now.swap(self->to_flush_);
    for (Connection* conn : now) conn->flush_pipelined();  // closing ones were unlisted
    if (self->to_flush_.empty()) uv_check_stop(h);
  });
}

// ---- Retries and held origins ------------------------------------------------------------

void Client::Impl::retry_later(Transfer* t, std::uint64_t delay_ms) {
  retries_.emplace(uv_now(loop_) + delay_ms, t->id());
  arm_retry_timer();
}

void Client::Impl::forget_retry(Transfer* t) {
  std::erase_if(retries_, [id = t->id()](const auto& kv) { return kv.second == id; });
  arm_retry_timer();
}

void Client::Impl::hold_origin(const std::string& origin, std::uint64_t delay_ms) {
  std::uint64_t until = uv_now(loop_) + delay_ms;
  Origin& o = this->origin(origin);
  if (until <= o.held_until) return;
  o.held_until = until;
  held_.emplace(until, origin);
  arm_retry_timer();
}

void Client::Impl::host_answered(Transfer& t, HostLimit::Answer answer,
                                 std::uint64_t retry_after_ms) {
  const std::string key = t.url().origin();
  Origin& o = origin(key);
  const std::uint64_t now = uv_now(loop_);
  const int before = o.limit.limit();
  if (o.limit.answered(answer, t.limit_ticket(), pool_.counts(key).open, now)) {
    t.note_host_limit(o.limit.limit());
    UVGET_TRACE("host %s: limit %d -> %d", key.c_str(), before, o.limit.limit());
    if (o.limit.limit() < before) {
      trim_idle(key);
    } else if (!o.queue.empty()) {
      mark_ready(key, o);  // room for one more connection
      schedule_pump();
    }
  }
  if (answer != HostLimit::Answer::too_many && answer != HostLimit::Answer::unavailable) return;
  bool asked = answer == HostLimit::Answer::too_many && retry_after_ms > 0;
  if (!asked && !origin(key).limit.mostly_overloaded()) return;
  hold_origin(key, retry_after_ms ? std::min(retry_after_ms, opts_.retry_after_max_ms)
                                  : backoff_ceiling(std::max(1, t.attempts()), opts_.retry_wait_ms,
                                                    opts_.retry_max_wait_ms));
}

double Client::Impl::pace_gap_ms(const std::string& key) {
  double gap = opts_.max_rate_per_host > 0 ? 1000.0 / opts_.max_rate_per_host : 0;
  if (opts_.wait_ms > 0) {
    double wait = static_cast<double>(opts_.wait_ms);
    if (opts_.random_wait) wait *= std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
    gap = std::max(gap, wait);
  }
  return std::max(gap, static_cast<double>(crawl_delay_ms(key)));
}

// ---- robots.txt ----------------------------------------------------------------------------

const Client::Impl::RobotsEntry* Client::Impl::robots_entry(const std::string& key) const {
  auto it = robots_.find(key);
  return it == robots_.end() ? nullptr : &it->second;
}

bool Client::Impl::robots_pending(const std::string& key) const {
  const RobotsEntry* e = robots_entry(key);
  return e && e->fetching;
}

std::uint64_t Client::Impl::crawl_delay_ms(const std::string& key) const {
  if (!opts_.robots) return 0;
  const RobotsEntry* e = robots_entry(key);
  return e && !e->fetching ? std::min(e->rules.crawl_delay_ms(), opts_.retry_after_max_ms) : 0;
}

bool Client::Impl::robots_admit(Transfer* t) {
  const std::string key = t->url().origin();
  const RobotsEntry* e = robots_entry(key);
  if (!e || (!e->fetching && e->expires_ms <= uv_now(loop_))) {
    fetch_robots(key);
    return true;  // it waits in the queue, behind the fetch
  }
  if (e->fetching || e->rules.allowed(t->url().target())) return true;
  fail_robots(t, *e);
  return false;
}

void Client::Impl::fail_robots(Transfer* t, const RobotsEntry& e) {
  std::string origin = t->url().origin();
  std::string why = e.failure.empty() ? "disallowed by " + origin + "/robots.txt (" +
                                            e.rules.refusing_rule(t->url().target()) + ")"
                                      : origin + "/robots.txt could not be fetched (" + e.failure +
                                            "): nothing is fetched from that host for now";
  t->fail(Error(Errc::robots_disallowed, std::move(why)));
}

void Client::Impl::fetch_robots(const std::string& key) {
  if (robots_.size() >= kRobotsKept) {  // forget what has expired, else anything not in flight
    std::uint64_t now = uv_now(loop_);
    std::erase_if(robots_, [now](const auto& kv) {
      return !kv.second.fetching && kv.second.expires_ms <= now;
    });
    for (auto it = robots_.begin(); robots_.size() >= kRobotsKept && it != robots_.end();)
      it = it->second.fetching ? std::next(it) : robots_.erase(it);
  }
  robots_[key] = RobotsEntry{};
  auto body = std::make_shared<std::string>();
  Request req;
  req.url = key + "/robots.txt";
  req.sink = make_discard_sink();
  Callbacks cbs;
  cbs.on_head = [body](const Response&) { body->clear(); };  // again for each attempt
  cbs.on_data = [body](std::span<const std::byte> b) {
    std::size_t room = RobotsRules::kMaxBytes - std::min(body->size(), RobotsRules::kMaxBytes);
    body->append(reinterpret_cast<const char*>(b.data()), std::min(room, b.size()));
  };
  cbs.on_done = [this, key, body](const TransferResult& r) { robots_done(key, r, *body); };
  auto id = get(std::move(req), std::move(cbs), /*front=*/true, /*robots_exempt=*/true);
  if (!id) {
    TransferResult r;
    r.error = id.error();
    robots_done(key, r, {});
  }
}

void Client::Impl::robots_done(const std::string& key, const TransferResult& r,
                               const std::string& body) {
  auto it = robots_.find(key);
  if (it == robots_.end()) return;
  RobotsEntry& e = it->second;
  if (r.error.code == Errc::cancelled || r.error.code == Errc::client_closed) {
    robots_.erase(it);  // closing, or cancelled by a deadline: the next URL asks again
    return;
  }
  const std::uint64_t now = uv_now(loop_);
  e.fetching = false;
  e.failure.clear();
  e.expires_ms = now + kRobotsTtlMs;
  if (r.ok()) {
    e.rules = RobotsRules::parse(body, robots_token_);
  } else if (r.status >= 400 && r.status < 500 && r.status != 429) {
    e.rules = RobotsRules();  // "unavailable": everything is allowed
  } else {                    // 5xx, 429, or no answer: nothing is allowed for now
    e.rules = RobotsRules::disallow_all();
    e.failure = r.error.cause();
    e.expires_ms = now + kRobotsRetryMs;
  }
  UVGET_TRACE("robots %s: %zu rules%s", key.c_str(), e.rules.rule_count(),
              e.failure.empty() ? "" : " (unreachable)");
  auto oit = origins_.find(key);
  if (oit == origins_.end()) return;
  std::vector<Transfer*> refused;
  for (Transfer* t : oit->second.queue)
    if (!t->robots_exempt() && !e.rules.allowed(t->url().target())) refused.push_back(t);
  for (Transfer* t : refused) {
    std::erase(oit->second.queue, t);
    --queued_;
  }
  const RobotsEntry verdict = e;  // failing may reach maps that hold e
  for (Transfer* t : refused) fail_robots(t, verdict);
  if (auto again = origins_.find(key); again != origins_.end()) {
    mark_ready(key, again->second);
    schedule_pump();
  }
}

void Client::Impl::trim_idle(const std::string& key) {
  while (over_limit(key)) {
    Connection* c = pool_.oldest_idle(key);
    if (!c) break;
    c->close();  // connection_closing() takes it out of the pool
  }
}

bool Client::Impl::over_limit(const std::string& key) const {
  auto it = origins_.find(key);
  return it != origins_.end() && it->second.limit.counts_connections(uv_now(loop_)) &&
         pool_.counts(key).open > it->second.limit.limit();
}

// While transfers wait (for a retry, or in the queue of a held origin) the timer keeps the loop
// alive: the host expects their on_done. A held origin with nothing waiting does not.
void Client::Impl::arm_retry_timer() {
  if (handles_closed_) return;
  std::uint64_t at = UINT64_MAX;
  if (!retries_.empty()) at = retries_.begin()->first;
  if (!held_.empty()) at = std::min(at, held_.begin()->first);
  if (at == UINT64_MAX) {
    uv_timer_stop(&retry_timer_);
    return;
  }
  std::uint64_t now = uv_now(loop_);
  if (retries_.empty() && transfers_.empty())
    uv_unref(as_handle(&retry_timer_));
  else
    uv_ref(as_handle(&retry_timer_));
  uv_timer_start(
      &retry_timer_, [](uv_timer_t* h) noexcept { static_cast<Impl*>(h->data)->run_retries(); },
      at > now ? at - now : 0, 0);
}

void Client::Impl::run_retries() {
  std::uint64_t now = uv_now(loop_);
  while (!held_.empty() && held_.begin()->first <= now) {
    std::string key = std::move(held_.begin()->second);
    held_.erase(held_.begin());
    if (auto it = origins_.find(key); it != origins_.end()) {
      if (it->second.held_until <= now) it->second.held_until = 0;
      mark_ready(key, it->second);
    }
  }
  std::vector<std::uint64_t> due;
  while (!retries_.empty() && retries_.begin()->first <= now) {
    due.push_back(retries_.begin()->second);
    retries_.erase(retries_.begin());
  }
  for (std::uint64_t id : due) {
    auto it = transfers_.find(id);
    if (it == transfers_.end() || it->second->phase() != Transfer::Phase::waiting) continue;
    it->second->set_queued();
    enqueue(it->second, true);
  }
  arm_retry_timer();
  if (!closing_) pump();
}

// Sockets with SO_RCVLOWAT raised go back to waking for every byte once quiet: received bytes
// never wait in the kernel for long (within 2 ticks of this timer).
void Client::Impl::watch_quiet() {
  if (handles_closed_) return;
  uv_timer_start(
      &quiet_timer_,
      [](uv_timer_t* h) noexcept {
        auto* self = static_cast<Impl*>(h->data);
        if (self->budget_.relax_quiet(uv_now(h->loop))) uv_timer_stop(h);
      },
      ReadBudget::kQuietMs, ReadBudget::kQuietMs);
  uv_unref(as_handle(&quiet_timer_));
}

// On the idle phase of the next pass (right after the host's timers): deferred reads restart,
// and happen in that pass's poll phase under a fresh slice. Short of rate tokens, they sleep
// until a useful amount is back (not a busy idle loop).
void Client::Impl::run_deferred() {
  if (budget_.resume_deferred() || handles_closed_) return;
  uv_timer_start(
      &rate_timer_, [](uv_timer_t* h) noexcept { static_cast<Impl*>(h->data)->wake(); },
      budget_.ms_until_tokens(), 0);
}

Result<TransferId> Client::Impl::get(Request request, Callbacks callbacks, bool front,
                                     bool robots_exempt) {
  if (closing_) {
    Error e(Errc::client_closed, "the client is closed");
    e.url = request.url;
    return e;
  }
  auto checked = check_request(request);
  if (!checked) return checked.error();
  std::uint64_t id = next_id_++;
  std::uint64_t timeout = request.timeout_ms ? request.timeout_ms : opts_.timeout_ms;
  auto* t = new Transfer(*this, id, std::move(request), std::move(checked->url),
                         std::move(callbacks), std::move(checked->hash));
  transfers_.emplace(id, t);
  if (robots_exempt) t->set_robots_exempt();
  if (timeout) {
    deadlines_.emplace(uv_now(loop_) + timeout, id);
    t->set_timeout(timeout);
    arm_deadline_timer();
  }
  t->admit(front);  // queued now, or once its sink has looked for an earlier run's bytes
  return TransferId{id};
}

void Client::Impl::arm_deadline_timer() {
  if (deadlines_.empty() || handles_closed_) {
    uv_timer_stop(&deadline_timer_);
    return;
  }
  std::uint64_t now = uv_now(loop_), at = deadlines_.begin()->first;
  uv_timer_start(&deadline_timer_, &on_deadline_cb, at > now ? at - now : 0, 0);
}

void Client::Impl::on_deadline_cb(uv_timer_t* t) noexcept {
  static_cast<Impl*>(t->data)->expire_deadlines();
}

void Client::Impl::expire_deadlines() {
  std::uint64_t now = uv_now(loop_);
  std::vector<std::uint64_t> due;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    due.push_back(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
  }
  for (std::uint64_t id : due) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;
    Transfer* t = it->second;
    if (t->phase() == Transfer::Phase::queued) {
      std::erase(origin(t->url().origin()).queue, t);
      --queued_;
    }
    t->fail(Error(Errc::timeout, "timed out after " + std::to_string(t->timeout_ms()) + " ms"));
  }
  arm_deadline_timer();
}

void Client::Impl::cancel(std::uint64_t id) {
  posted_.push_back([this, id] {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;
    Transfer* t = it->second;
    if (t->phase() == Transfer::Phase::queued) {
      auto& q = origin(t->url().origin()).queue;
      std::erase(q, t);
      --queued_;
    }
    t->fail(Error(Errc::cancelled, "cancelled"));
  });
  wake();
}

ClientStats Client::Impl::stats() const {
  ClientStats s = stats_;
  s.dns_lookups = resolver_.stats().lookups;
  s.dns_cache_hits = resolver_.stats().cache_hits;
  if (tls_) {
    s.tls_chains_verified = tls_->chains_verified();
    s.tls_chain_cache_hits = tls_->chain_cache_hits();
    s.tls_sessions_kept = tls_->sessions_kept();
  }
  s.queued = queued_;
  s.active = transfers_.size() - queued_;
  s.open_connections = pool_.size();
  s.origins_tracked = origins_.size() + (tls_ ? tls_->origins_tracked() : 0);
  return s;
}

// ---- Scheduling ---------------------------------------------------------------------------

void Client::Impl::enqueue(Transfer* t, bool front) {
  if (opts_.robots && !t->robots_exempt() && !robots_admit(t)) return;
  std::string key = t->url().origin();
  Origin& o = origin(key);
  // Look the host up while the transfer waits for a connection: its turn then costs no lookup.
  if (opts_.dns_prefetch > 0 && o.queue.empty() && pool_.counts(key).open == 0)
    resolver_.prefetch(t->url().host, opts_.dns_prefetch);
  if (front)
    o.queue.push_front(t);
  else
    o.queue.push_back(t);
  ++queued_;
  mark_ready(key, o);
}

void Client::Impl::mark_ready(const std::string& key, Origin& o) {
  if (o.ready || o.queue.empty()) return;
  o.ready = true;
  ready_.push_back(key);
}

void Client::Impl::admit(Transfer* t, bool front) {
  if (closing_) return t->fail(Error(Errc::cancelled, "cancelled: client closed"));
  enqueue(t, front);
  schedule_pump();  // never start inline: on_done must not run before get() returns
}

void Client::Impl::requeue(Transfer* t) {
  if (closing_) return t->fail(Error(Errc::cancelled, "cancelled"));
  enqueue(t, true);
  pump();
}

void Client::Impl::schedule_pump() {
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  posted_.push_back([this] {
    pump_scheduled_ = false;
    pump();
  });
  wake();
}

void Client::Impl::pump() {
  if (pumping_) {
    pump_again_ = true;
    return;
  }
  pumping_ = true;
  do {
    pump_again_ = false;
    // Each pass serves every ready origin once at most, in turn: round-robin across hosts.
    while (!ready_.empty() && !closing_) {
      std::string key = std::move(ready_.front());
      ready_.pop_front();
      auto oit = origins_.find(key);
      if (oit == origins_.end()) continue;
      Origin& o = oit->second;
      o.ready = false;
      if (o.queue.empty()) continue;
      if (o.held_until > uv_now(loop_)) continue;  // run_retries() marks it ready again
      if (paced(key)) {
        // Within the same millisecond as the last start, a start is allowed while the bucket
        // is less than a whole millisecond ahead (rates above 1,000 a second).
        std::uint64_t now = uv_now(loop_);
        if (o.next_start_ms >= static_cast<double>(now) + 1) {
          hold_origin(key, static_cast<std::uint64_t>(o.next_start_ms) - now);
          continue;
        }
      }
      Transfer* t = o.queue.front();
      if (opts_.robots && !t->robots_exempt() && robots_pending(key)) {
        // robots.txt first (a retry or a redirect may have queued ahead of its fetch);
        // robots_done() makes the origin ready again.
        auto fetch = std::find_if(o.queue.begin(), o.queue.end(),
                                  [](Transfer* q) { return q->robots_exempt(); });
        if (fetch == o.queue.end()) continue;
        t = *fetch;
        o.queue.erase(fetch);
        o.queue.push_front(t);
      }
      Connection* c = nullptr;
      const PoolCounts n = pool_.counts(key);
      const int per_host = o.limit.limit();
      const auto total = static_cast<std::size_t>(opts_.max_connections);
      // The limit bounds the busy connections; idle ones above it wait parked for it to rise
      // (HostLimit closes them while the server counts connections). max_per_host bounds all.
      const int busy = n.open - n.idle;
      if (n.idle > 0 && !t->needs_fresh_connection() && busy < per_host) {
        c = pool_.take_idle(key);
      } else {
        bool full =
            busy >= per_host || n.open >= opts_.max_per_host || waits_for_answers(n) ||
            (opts_.max_connecting_per_host > 0 && n.opening >= opts_.max_connecting_per_host) ||
            (pool_.size() >= total && pool_.idle_count() == 0);
        if (full) c = pipeline_room(key, o, *t);  // all it may have are busy: queue behind one
      }
      if (!c) {
        if (opts_.max_connecting_per_host > 0 && n.opening >= opts_.max_connecting_per_host)
          continue;                          // connection_established() makes it ready again
        if (waits_for_answers(n)) continue;  // connection_answered() makes it ready again
        if (busy >= per_host) continue;      // a release of its own makes it ready again
        if (n.open >= opts_.max_per_host) {
          Connection* old = pool_.oldest_idle(key);
          if (!old) continue;  // waits for one of its own connections
          old->close();        // a retry needs a fresh one: give up an idle one
        }
        if (pool_.size() >= total && !evict_idle()) {
          // Every connection is busy: this origin is first in line when one frees.
          o.ready = true;
          ready_.push_front(key);
          break;
        }
        c = Connection::open(loop_, *this, t->url());
        pool_.add(c, key);
        ++live_conns_;
      }
      UVGET_TRACE("start transfer %llu on %p (%s, %zu open)",
                  static_cast<unsigned long long>(t->id()), static_cast<void*>(c),
                  c->requests() ? "reused" : "new", pool_.size());
      o.queue.pop_front();
      --queued_;
      mark_ready(key, o);
      t->set_limit_ticket(o.limit.sent());
      if (paced(key))
        o.next_start_ms =
            std::max(o.next_start_ms, static_cast<double>(uv_now(loop_))) + pace_gap_ms(key);
      t->start(c);  // may finish inline and re-enter: guarded by pumping_
    }
  } while (pump_again_ && !closing_);
  pumping_ = false;
}

Connection* Client::Impl::pipeline_room(const std::string& key, const Origin& o,
                                        const Transfer& t) {
  if (opts_.pipeline < 2 || o.no_pipelining || !t.pipelinable()) return nullptr;
  auto depth = static_cast<std::size_t>(opts_.pipeline);
  return pool_.least_loaded(
      key, [depth](Connection* c) { return c->can_pipeline(depth); },
      [](Connection* c) { return c->in_flight(); });
}

void Client::Impl::connection_answered(Connection& c) {
  const std::string* key = pool_.origin_of(&c);
  if (!key) return;
  bool waited = waits_for_answers(pool_.counts(*key));
  if (!pool_.answered(&c)) return;
  auto oit = origins_.find(*key);
  if (oit == origins_.end()) return;
  if (waited && !oit->second.queue.empty()) {
    mark_ready(oit->first, oit->second);
    schedule_pump();
  }
}

void Client::Impl::stop_pipelining(const std::string& origin) {
  if (auto it = origins_.find(origin); it != origins_.end()) it->second.no_pipelining = true;
}

bool Client::Impl::evict_idle() {
  Connection* c = pool_.oldest_idle();
  if (!c) return false;
  c->close();  // connection_closing() takes it out of the pool
  return true;
}

void Client::Impl::release(Connection* c) {
  UVGET_TRACE("release %p reusable=%d", static_cast<void*>(c), c->reusable());
  const std::string* key = pool_.origin_of(c);
  if (!key) return;                             // already closing
  if (c->state() == Connection::State::busy) {  // pipelined: the next response is being read
    mark_ready(*key, origin(*key));             // a place in its pipeline is free again
    pump();
    return;
  }
  if (!c->reusable() || closing_ || over_limit(*key)) {
    c->close();
  } else {
    c->park();
    pool_.park(c);
    mark_ready(*key, origin(*key));
  }
  pump();
}

void Client::Impl::connection_closing(Connection& c) {
  UVGET_TRACE("closing %p", static_cast<void*>(&c));
  if (!to_flush_.empty()) std::erase(to_flush_, &c);
  if (!pool_.contains(&c)) return;
  std::string key = pool_.remove(&c);
  auto oit = origins_.find(key);
  if (oit != origins_.end()) {
    mark_ready(key, oit->second);
    drop_origin_if_unused(key);
  }
  if (!closing_ && !ready_.empty()) schedule_pump();
}

void Client::Impl::connection_established(Connection& c) {
  ++stats_.connections_opened;
  const std::string* key = pool_.origin_of(&c);
  if (!key) return;
  int before = pool_.counts(*key).opening;
  if (!pool_.established(&c)) return;
  auto oit = origins_.find(*key);
  if (oit == origins_.end()) return;
  Origin& o = oit->second;
  if (before == opts_.max_connecting_per_host && !o.queue.empty()) {
    mark_ready(oit->first, o);  // it was waiting for this: the next connection may open
    schedule_pump();
  }
}

void Client::Impl::drop_origin_if_unused(const std::string& key) {
  auto it = origins_.find(key);
  if (it != origins_.end() && pool_.counts(key).open == 0 && it->second.queue.empty() &&
      !it->second.ready && it->second.held_until <= uv_now(loop_) && !it->second.no_pipelining &&
      !it->second.limit.adapted(uv_now(loop_)) &&
      it->second.next_start_ms <= static_cast<double>(uv_now(loop_)))
    origins_.erase(it);
}

void Client::Impl::connection_freed(Connection&) {
  --live_conns_;
  maybe_closed();
}

void Client::Impl::transfer_done(Transfer* t, const TransferResult& result, Callbacks& cbs) {
  transfers_.erase(t->id());
  if (t->timeout_ms()) {
    for (auto it = deadlines_.begin(); it != deadlines_.end(); ++it) {
      if (it->second == t->id()) {
        deadlines_.erase(it);
        break;
      }
    }
  }
  if (result.ok())
    ++stats_.transfers_done;
  else
    ++stats_.transfers_failed;
  if (transfers_.empty() && !handles_closed_)
    uv_unref(as_handle(&retry_timer_));  // nothing waits any more (see arm_retry_timer)
  // on_done runs on the next tick, never inside a callback of ours that is still on the stack.
  posted_.push_back([t, result, cb = std::move(cbs.on_done)]() mutable {
    std::unique_ptr<Transfer> owned(t);
    if (cb) cb(result);
  });
  wake();
  if (auto oit = origins_.find(t->url().origin()); oit != origins_.end())
    drop_origin_if_unused(oit->first);
}

// ---- Deferred work and closing -----------------------------------------------------------

void Client::Impl::wake() {
  if (!handles_closed_) uv_idle_start(&poster_, &on_idle_cb);
}

void Client::Impl::on_idle_cb(uv_idle_t* h) noexcept {
  static_cast<Impl*>(h->data)->run_posted();
}

void Client::Impl::run_posted() {
  run_deferred();
  // Tasks may post more tasks: those run on the next tick.
  auto tasks = std::move(posted_);
  posted_.clear();
  for (auto& task : tasks) task();
  // Deferred reads waiting for rate tokens wait on rate_timer_, not on a busy idle handle.
  bool waiting_for_tokens = budget_.has_deferred() && budget_.ms_until_tokens() > 0;
  if (posted_.empty() && (!budget_.has_deferred() || waiting_for_tokens) && !handles_closed_)
    uv_idle_stop(&poster_);
  maybe_closed();
}

void Client::Impl::close(std::function<void()> on_closed) {
  if (on_closed) on_closed_ = std::move(on_closed);
  if (closing_) return;
  closing_ = true;
  ready_.clear();
  retries_.clear();
  held_.clear();
  for (auto& [key, o] : origins_) {
    o.ready = false;
    queued_ -= o.queue.size();
    o.queue.clear();
  }
  std::vector<Transfer*> all;
  for (auto& [id, t] : transfers_) all.push_back(t);
  for (Transfer* t : all) t->fail(Error(Errc::cancelled, "cancelled: client closed"));
  for (Connection* c : pool_.all()) c->close();
  resolver_.close([this] {
    resolver_idle_ = true;
    maybe_closed();
  });
  wake();  // so maybe_closed() runs once the callbacks are out
}

void Client::Impl::maybe_closed() {
  if (!closing_ || handles_closed_ || !resolver_idle_ || live_conns_ > 0 || !transfers_.empty() ||
      !posted_.empty())
    return;
  handles_closed_ = true;
  uv_close(as_handle(&retry_timer_), &on_handle_closed);
  uv_close(as_handle(&quiet_timer_), &on_handle_closed);
  uv_close(as_handle(&speed_timer_), &on_handle_closed);
  uv_close(as_handle(&rate_timer_), &on_handle_closed);
  uv_close(as_handle(&pass_start_), &on_handle_closed);
  uv_close(as_handle(&flusher_), &on_handle_closed);
  uv_close(as_handle(&deadline_timer_), &on_handle_closed);
  uv_close(as_handle(&poster_), &on_handle_closed);
}

void Client::Impl::on_handle_closed(uv_handle_t* h) noexcept {
  auto* self = static_cast<Impl*>(h->data);
  if (--self->open_handles_ > 0) return;
  self->fully_closed_ = true;
  release_body_buffers();  // of this loop's thread: nothing is kept for downloads to come
  auto cb = std::move(self->on_closed_);
  self->on_closed_ = nullptr;
  if (self->detached_) {
    delete self;
    if (cb) cb();
    return;
  }
  if (cb) cb();  // the host may destroy the Client (and so this) or close its loop here
}

void Client::Impl::detach() {
  if (fully_closed_) {
    delete this;
    return;
  }
  detached_ = true;
  close(nullptr);
}

}  // namespace uvget
