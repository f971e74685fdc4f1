// Runner: N worker threads, each with its own uv loop and Client, fed by a dispatcher on the
// host's loop. Shared state is small and explicit: each worker's inbox (jobs, cancels, stop) and
// stats snapshot under the worker's mutex, one outbox of results under the runner's mutex, and
// two uv_async_t wake-ups. Connection limits are split between the loops once, at creation, so
// opening a connection or moving a byte takes no lock.
#include <uvget/runner.hpp>

#include <sched.h>
#include <uv.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/check_request.hpp"
#include "core/checksum.hpp"
#include "core/client_impl.hpp"
#include "core/segment_pool.hpp"
#include "http/request_writer.hpp"
#include "url.hpp"
#include "uv/util.hpp"

namespace uvget {
namespace {

constexpr std::uint64_t kPublishMs = 100;

void add_stats(ClientStats& sum, const ClientStats& s) {
  sum.connections_opened += s.connections_opened;
  sum.requests_sent += s.requests_sent;
  sum.requests_reused += s.requests_reused;
  sum.dns_lookups += s.dns_lookups;
  sum.dns_cache_hits += s.dns_cache_hits;
  sum.connect_attempts += s.connect_attempts;
  sum.tls_chains_verified += s.tls_chains_verified;
  sum.tls_chain_cache_hits += s.tls_chain_cache_hits;
  sum.tls_sessions_kept += s.tls_sessions_kept;
  sum.origins_tracked += s.origins_tracked;
  sum.transfers_done += s.transfers_done;
  sum.transfers_failed += s.transfers_failed;
  sum.body_bytes += s.body_bytes;
  sum.tls_full_handshakes += s.tls_full_handshakes;
  sum.tls_resumed_handshakes += s.tls_resumed_handshakes;
  sum.active += s.active;
  sum.queued += s.queued;
  sum.open_connections += s.open_connections;
}

}  // namespace

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

// Hidden, although nested in an exported class: nothing of it is public API.
struct __attribute__((visibility("hidden"))) Runner::Impl {
  struct Job {
    std::uint64_t id;
    Request request;
    Callbacks callbacks;  // on_head and on_data; on_done stays with the host
  };
  struct Done {
    std::uint64_t id;
    TransferResult result;
    bool retry = false;  // not the end: an on_retry note (result.error, attempts, delay)
    std::uint64_t delay_ms = 0;
  };

  struct Worker;
  // The other loops, as one worker's client sees them for split downloads: segment requests go
  // round-robin over every loop (this one included) as closures through the workers' task
  // queues, and their results come back the same way.
  struct Pool final : SegmentPool {
    Worker* self = nullptr;
    std::uint64_t tokens = 0;                              // loop thread only
    std::size_t turn = 0;                                  // loop thread only
    std::unordered_map<std::uint64_t, std::size_t> where;  // token -> worker index
    std::uint64_t run(Request request, std::function<void(TransferResult)> on_done) override;
    void cancel(std::uint64_t token) override;
  };

  struct Worker {
    Impl* owner = nullptr;
    std::size_t index = 0;
    Pool pool;
    uv_loop_t loop{};
    uv_async_t wake{};
    uv_timer_t publish{};
    std::unique_ptr<Client> client;
    int weight_total = 1;  // this loop's share of the limits, for the dispatcher
    int weight_host = 1;
    std::thread thread;
    // Loop thread only.
    std::unordered_map<std::uint64_t, TransferId> running;   // runner id -> client id
    std::unordered_map<std::uint64_t, TransferId> segments;  // pool key -> client id
    bool stopping = false;
    // Shared with the host thread, under mu.
    std::mutex mu;
    std::vector<Job> inbox;
    std::vector<std::uint64_t> cancels;
    std::vector<std::function<void()>> tasks;  // from other workers (segments, their results)
    bool closed = false;                       // its client is closed: no more tasks
    bool stop = false;
    ClientStats snapshot;

    /// Runs `task` on this worker's loop; false once it no longer takes any.
    bool post(std::function<void()> task);
    void main();
    void on_wake();
    void submit(Job job);
    void publish_stats();
  };

  struct Pending {
    std::function<void(const TransferResult&)> on_done;
    std::function<void(const Error&, int, std::uint64_t)> on_retry;
    std::size_t worker;
    std::string origin;
  };

  Impl(uv_loop_t* host) : host_(host) {}

  Result<TransferId> get(Request request, Callbacks callbacks);
  void cancel(std::uint64_t id);
  void close(std::function<void()> on_closed);
  void destroy();  // the Runner is gone
  ClientStats stats() const;

  void deliver(std::uint64_t id, TransferResult result);  // any worker thread
  void deliver_retry(std::uint64_t id, const Error& why, int attempt, std::uint64_t delay_ms);
  void worker_exited();  // any worker thread
  static void on_host_wake(uv_async_t* a) noexcept;
  static void on_host_closed(uv_handle_t* h) noexcept;
  void drain_results();
  std::size_t pick(const std::string& origin);
  void join_all();
  void update_ref();

  uv_loop_t* host_;
  uv_async_t host_wake_{};
  std::vector<std::unique_ptr<Worker>> workers_;
  // Host thread only.
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> per_origin_;  // in flight per loop
  std::vector<std::uint64_t> in_flight_;                                    // per loop
  bool pin_origins_ = false;  // each origin on one loop (pacing per origin)
  std::uint64_t next_id_ = 1;
  bool closing_ = false;
  bool joined_ = false;
  bool handle_closed_ = false;  // uv_close(host_wake_) called
  bool fully_closed_ = false;   // and its callback ran
  bool detached_ = false;
  std::function<void()> on_closed_;
  // Shared with the workers, under out_mu_.
  std::mutex out_mu_;
  std::vector<Done> outbox_;
  std::size_t exited_ = 0;
};

// ---- Worker (its own thread) ------------------------------------------------------------

void Runner::Impl::Worker::main() {
  uv_run(&loop, UV_RUN_DEFAULT);  // until close: the wake handle keeps it alive
  client.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  owner->worker_exited();
}

bool Runner::Impl::Worker::post(std::function<void()> task) {
  // The wake-up is sent under the lock: `closed` is set under it before `wake` is closed, so a
  // task accepted here never signals a handle that is gone.
  std::lock_guard lock(mu);
  if (closed) return false;
  tasks.push_back(std::move(task));
  uv_async_send(&wake);
  return true;
}

void Runner::Impl::Worker::on_wake() {
  std::vector<Job> jobs;
  std::vector<std::uint64_t> cancelled;
  std::vector<std::function<void()>> todo;
  bool stop_now;
  {
    std::lock_guard lock(mu);
    jobs.swap(inbox);
    cancelled.swap(cancels);
    todo.swap(tasks);
    stop_now = stop;
  }
  for (auto& job : jobs) submit(std::move(job));
  for (auto& task : todo) task();
  for (std::uint64_t id : cancelled)
    if (auto it = running.find(id); it != running.end()) client->cancel(it->second);
  if (stop_now && !stopping) {
    stopping = true;
    client->close([this] {
      publish_stats();
      std::vector<std::function<void()>> late;
      {
        std::lock_guard lock(mu);
        closed = true;
        late.swap(tasks);
      }
      for (auto& task : late) task();  // segment requests now fail: the client is closed
      uv_close(as_handle(&wake), nullptr);
      uv_close(as_handle(&publish), nullptr);
    });
  }
}

void Runner::Impl::Worker::submit(Job job) {
  std::uint64_t id = job.id;
  std::string url = job.request.url;
  Callbacks cbs = std::move(job.callbacks);
  cbs.on_done = [this, id](const TransferResult& r) {
    running.erase(id);
    owner->deliver(id, r);
    publish_stats();
  };
  if (cbs.on_retry)  // a marker: the host's on_retry is called on the host loop
    cbs.on_retry = [this, id](const Error& why, int attempt, std::uint64_t delay_ms) {
      owner->deliver_retry(id, why, attempt, delay_ms);
    };
  auto tid = client->get(std::move(job.request), std::move(cbs));
  if (!tid) {
    TransferResult r;
    r.url = std::move(url);
    r.error = tid.error();
    owner->deliver(id, std::move(r));
    return;
  }
  running.emplace(id, *tid);
}

std::uint64_t Runner::Impl::Pool::run(Request request,
                                      std::function<void(TransferResult)> on_done) {
  Impl& rt = *self->owner;
  std::size_t n = rt.workers_.size();
  std::size_t target = (self->index + 1 + turn++) % n;  // the next loop first
  std::uint64_t token = ++tokens;
  std::uint64_t key = (static_cast<std::uint64_t>(self->index) << 48) | token;
  Worker* there = rt.workers_[target].get();
  Worker* home = self;
  auto req = std::make_shared<Request>(std::move(request));
  auto done = std::make_shared<std::function<void(TransferResult)>>(std::move(on_done));
  bool taken = there->post([there, home, key, token, req, done] {
    auto report = [home, token, done](TransferResult r) {
      home->post([home, token, done, r = std::move(r)] {
        home->pool.where.erase(token);
        (*done)(r);
      });
    };
    Callbacks cbs;
    cbs.on_done = [there, key, report](const TransferResult& r) {
      there->segments.erase(key);
      report(r);
    };
    // At the front of its origin's queue there, as on the owner's loop: the file is open
    // and waiting for it. (Tasks run while the worker's client exists, closed or not.)
    std::string url = req->url;
    auto id = there->client->impl_->get(std::move(*req), std::move(cbs), true);
    if (!id) {
      TransferResult r;
      r.url = std::move(url);
      r.error = id.error();
      return report(std::move(r));
    }
    there->segments.emplace(key, *id);
  });
  if (!taken) return 0;
  where.emplace(token, target);
  return token;
}

void Runner::Impl::Pool::cancel(std::uint64_t token) {
  auto it = where.find(token);
  if (it == where.end()) return;
  Worker* there = self->owner->workers_[it->second].get();
  std::uint64_t key = (static_cast<std::uint64_t>(self->index) << 48) | token;
  there->post([there, key] {
    if (auto s = there->segments.find(key); s != there->segments.end())
      there->client->cancel(s->second);
  });
}

void Runner::Impl::Worker::publish_stats() {
  if (!client) return;
  ClientStats s = client->stats();
  std::lock_guard lock(mu);
  snapshot = s;
}

void Runner::Impl::deliver(std::uint64_t id, TransferResult result) {
  {
    std::lock_guard lock(out_mu_);
    outbox_.push_back({id, std::move(result)});
  }
  uv_async_send(&host_wake_);
}

void Runner::Impl::deliver_retry(std::uint64_t id, const Error& why, int attempt,
                                 std::uint64_t delay_ms) {
  Done d{id, {}, true, delay_ms};
  d.result.error = why;
  d.result.attempts = attempt;
  {
    std::lock_guard lock(out_mu_);
    outbox_.push_back(std::move(d));
  }
  uv_async_send(&host_wake_);
}

void Runner::Impl::worker_exited() {
  {
    std::lock_guard lock(out_mu_);
    ++exited_;
  }
  uv_async_send(&host_wake_);
}

// ---- Host side --------------------------------------------------------------------------

Result<std::unique_ptr<Runner>> Runner::create(uv_loop_s* host, RunnerOptions options) {
  if (!host) return Error(Errc::bad_request, "Runner::create: loop is null");
  const ClientOptions& base = options.client;
  if (base.max_connections < 1 || base.max_per_host < 1)
    return Error(Errc::bad_request, "connection limits must be at least 1");
  int n = options.loops > 0 ? options.loops : available_cores();
  // Pacing per origin holds across loops, and robots.txt is fetched once per origin, only if
  // each origin lives on one loop: then that loop has the whole per-host limit, and split
  // downloads keep their segments on it.
  const bool pin = base.max_rate_per_host > 0 || base.wait_ms > 0 || base.robots;
  // Every loop gets at least one connection overall and one per host.
  n = pin ? std::min(n, base.max_connections)
          : std::min({n, base.max_connections, base.max_per_host});
  auto impl = std::make_unique<Impl>(host);
  impl->pin_origins_ = pin;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->owner = impl.get();
    ClientOptions o = base;
    o.max_connections = base.max_connections / n + (i < base.max_connections % n ? 1 : 0);
    if (!pin) o.max_per_host = base.max_per_host / n + (i < base.max_per_host % n ? 1 : 0);
    if (base.initial_per_host > 0 && !pin)  // the same number unanswered for all loops together
      o.initial_per_host = std::max(1, base.initial_per_host / n);
    if (base.max_connecting_per_host > 0)  // split like the other limits
      o.max_connecting_per_host = std::max(1, base.max_connecting_per_host / n);
    o.loop_slice_us = 0;              // a worker loop runs nothing but its client
    if (base.limit_rate_bytes_per_s)  // split like the connection limits
      o.limit_rate_bytes_per_s =
          std::max<std::uint64_t>(1, base.limit_rate_bytes_per_s / static_cast<std::uint64_t>(n));
    w->weight_total = o.max_connections;
    w->weight_host = o.max_per_host;
    uv_loop_init(&w->loop);
    auto client = Client::create(&w->loop, std::move(o));
    if (!client) {
      uv_loop_close(&w->loop);
      for (auto& done : impl->workers_) {  // created, never started: close them here
        done->client.reset();
        uv_run(&done->loop, UV_RUN_DEFAULT);
        uv_loop_close(&done->loop);
      }
      return client.error();
    }
    w->client = std::move(*client);
    w->index = static_cast<std::size_t>(i);
    w->pool.self = w.get();
    if (n > 1 && !pin) w->client->impl_->set_segment_pool(&w->pool);  // segments on every loop
    impl->workers_.push_back(std::move(w));
  }
  impl->in_flight_.assign(impl->workers_.size(), 0);
  uv_async_init(host, &impl->host_wake_, &Impl::on_host_wake);
  impl->host_wake_.data = impl.get();
  uv_unref(as_handle(&impl->host_wake_));  // idle, the runner does not keep the host loop alive
  for (auto& w : impl->workers_) {
    Impl::Worker* wp = w.get();
    uv_async_init(&wp->loop, &wp->wake,
                  [](uv_async_t* a) noexcept { static_cast<Impl::Worker*>(a->data)->on_wake(); });
    wp->wake.data = wp;
    uv_timer_init(&wp->loop, &wp->publish);
    wp->publish.data = wp;
    uv_timer_start(
        &wp->publish, [](uv_timer_t* t) { static_cast<Impl::Worker*>(t->data)->publish_stats(); },
        kPublishMs, kPublishMs);
    uv_unref(as_handle(&wp->publish));
  }
  for (auto& w : impl->workers_) {
    Impl::Worker* wp = w.get();
    wp->thread = std::thread([wp] { wp->main(); });
  }
  return std::unique_ptr<Runner>(new Runner(impl.release()));
}

Runner::Runner(Impl* impl) : impl_(impl) {}
Runner::~Runner() {
  impl_->destroy();
}
Result<TransferId> Runner::get(Request request, Callbacks callbacks) {
  return impl_->get(std::move(request), std::move(callbacks));
}
void Runner::cancel(TransferId id) {
  impl_->cancel(static_cast<std::uint64_t>(id));
}
void Runner::close(std::function<void()> on_closed) {
  impl_->close(std::move(on_closed));
}
ClientStats Runner::stats() const {
  return impl_->stats();
}
int Runner::loops() const {
  return static_cast<int>(impl_->workers_.size());
}

Result<TransferId> Runner::Impl::get(Request request, Callbacks callbacks) {
  if (closing_) {
    Error e(Errc::client_closed, "the runner is closed");
    e.url = request.url;
    return e;
  }
  auto checked = check_request(request);
  if (!checked) return checked.error();
  std::uint64_t id = next_id_++;
  std::string origin = checked->url.origin();
  std::size_t w = pick(origin);
  ++per_origin_[origin][w];
  ++in_flight_[w];
  bool wants_retries = static_cast<bool>(callbacks.on_retry);
  pending_.emplace(id, Pending{std::move(callbacks.on_done), std::move(callbacks.on_retry), w,
                               std::move(origin)});
  callbacks.on_done = nullptr;
  callbacks.on_retry = nullptr;
  if (wants_retries)  // the worker only needs to know that there is one
    callbacks.on_retry = [](const Error&, int, std::uint64_t) {};
  Worker& worker = *workers_[w];
  {
    std::lock_guard lock(worker.mu);
    worker.inbox.push_back({id, std::move(request), std::move(callbacks)});
  }
  uv_async_send(&worker.wake);
  update_ref();
  return TransferId{id};
}

// The loop with the fewest transfers of this origin for its share of the per-host limit; ties go
// to the one with the fewest transfers overall for its share of the total.
std::size_t Runner::Impl::pick(const std::string& origin) {
  auto& counts = per_origin_[origin];
  if (counts.empty()) counts.assign(workers_.size(), 0);
  if (pin_origins_) return std::hash<std::string>{}(origin) % workers_.size();
  std::size_t best = 0;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    const Worker &a = *workers_[i], &b = *workers_[best];
    std::uint64_t ha = std::uint64_t{counts[i]} * static_cast<std::uint64_t>(b.weight_host);
    std::uint64_t hb = std::uint64_t{counts[best]} * static_cast<std::uint64_t>(a.weight_host);
    if (ha != hb) {
      if (ha < hb) best = i;
      continue;
    }
    std::uint64_t ta = in_flight_[i] * static_cast<std::uint64_t>(b.weight_total);
    std::uint64_t tb = in_flight_[best] * static_cast<std::uint64_t>(a.weight_total);
    if (ta < tb) best = i;
  }
  return best;
}

void Runner::Impl::cancel(std::uint64_t id) {
  if (closing_) return;  // close() cancels everything
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Worker& w = *workers_[it->second.worker];
  {
    std::lock_guard lock(w.mu);
    w.cancels.push_back(id);
  }
  uv_async_send(&w.wake);
}

ClientStats Runner::Impl::stats() const {
  ClientStats sum;
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    add_stats(sum, w->snapshot);
    sum.queued += w->inbox.size();
  }
  return sum;
}

void Runner::Impl::update_ref() {
  if (handle_closed_) return;
  if (pending_.empty() && !closing_)
    uv_unref(as_handle(&host_wake_));
  else
    uv_ref(as_handle(&host_wake_));
}

void Runner::Impl::on_host_wake(uv_async_t* a) noexcept {
  static_cast<Impl*>(a->data)->drain_results();
}

void Runner::Impl::drain_results() {
  std::vector<Done> done;
  std::size_t exited;
  {
    std::lock_guard lock(out_mu_);
    done.swap(outbox_);
    exited = exited_;
  }
  for (auto& d : done) {
    if (detached_) return;  // the Runner was destroyed by a callback
    auto it = pending_.find(d.id);
    if (it == pending_.end()) continue;
    if (d.retry) {
      if (it->second.on_retry) it->second.on_retry(d.result.error, d.result.attempts, d.delay_ms);
      continue;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    --in_flight_[p.worker];
    auto oit = per_origin_.find(p.origin);
    if (oit != per_origin_.end() && --oit->second[p.worker] == 0 &&
        std::all_of(oit->second.begin(), oit->second.end(), [](auto c) { return c == 0; }))
      per_origin_.erase(oit);
    if (p.on_done) p.on_done(d.result);
  }
  if (detached_) return;
  update_ref();
  if (closing_ && exited == workers_.size() && !joined_) {
    join_all();
    handle_closed_ = true;
    uv_close(as_handle(&host_wake_), &on_host_closed);
  }
}

void Runner::Impl::join_all() {
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  joined_ = true;
}

void Runner::Impl::close(std::function<void()> on_closed) {
  if (fully_closed_) {
    if (on_closed) on_closed();  // nothing left to wait for
    return;
  }
  if (on_closed) on_closed_ = std::move(on_closed);
  if (closing_) return;
  closing_ = true;
  update_ref();  // the host loop runs until the workers are gone
  for (auto& w : workers_) {
    {
      std::lock_guard lock(w->mu);
      w->stop = true;
    }
    uv_async_send(&w->wake);
  }
}

void Runner::Impl::on_host_closed(uv_handle_t* h) noexcept {
  auto* self = static_cast<Impl*>(h->data);
  self->fully_closed_ = true;
  auto cb = std::move(self->on_closed_);
  self->on_closed_ = nullptr;
  if (self->detached_) {
    delete self;
    return;  // the Runner is gone: nobody is waiting for on_closed
  }
  if (cb) cb();  // the host may destroy the Runner here
}

void Runner::Impl::destroy() {
  if (fully_closed_) {
    delete this;
    return;
  }
  detached_ = true;
  on_closed_ = nullptr;
  if (!joined_) {
    close(nullptr);
    join_all();  // the workers cancel their transfers and exit; their results are dropped
  }
  if (!handle_closed_) {
    handle_closed_ = true;
    uv_close(as_handle(&host_wake_), &on_host_closed);
  }
}

}  // namespace uvget
