// Host names to addresses on the client's loop: c-ares driven by uv_poll_t and uv_timer_t (the
// default), or getaddrinfo on the threadpool; a TTL cache, merged lookups, overrides, literals.
#include "net/resolver.hpp"

#include <ares.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "uv/util.hpp"

namespace uvget {
namespace {

std::shared_ptr<const AddressList> with_port(const AddressList& in, std::uint16_t port) {
  auto out = std::make_shared<AddressList>(in);
  for (auto& a : *out) {
    if (a.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a)->sin_port = htons(port);
    if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a)->sin6_port = htons(port);
  }
  return out;
}

// A configuration file's text ("" when it cannot be read); at most 64 KiB.
std::string read_small_file(const char* path) {
  std::string text;
  if (FILE* f = std::fopen(path, "re")) {
    char buf[4096];
    std::size_t n;
    while (text.size() < 65536 && (n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

Error lookup_error(Errc code, const std::string& host, const std::string& why) {
  return Error(code, "cannot resolve host '" + host + "': " + why);
}

// Counts a backend's handles until their close callbacks ran, beyond the backend's own life.
struct HandleCount {
  int live = 0;
  bool owner_alive = true;
  std::function<void()> on_zero;  // set while the owner waits for the count to reach 0
  void closed() {
    if (--live == 0 && owner_alive && on_zero) {
      auto cb = std::move(on_zero);
      on_zero = nullptr;
      cb();
    }
  }
};

}  // namespace

bool parse_ip_literal(const std::string& host, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (uv_ip4_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in*>(&out)) == 0) return true;
  if (host.find(':') != std::string::npos &&
      uv_ip6_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&out)) == 0)
    return true;
  return false;
}

std::string address_string(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(a, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
  uv_ip6_name(a, ip, sizeof ip);
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
}

ResolvTimeouts parse_resolv_timeouts(std::string_view conf, std::string_view res_options) {
  ResolvTimeouts t;
  auto apply = [&](std::string_view words) {
    while (!words.empty()) {
      std::size_t start = words.find_first_not_of(" \t");
      if (start == std::string_view::npos) break;
      words.remove_prefix(start);
      std::size_t end = words.find_first_of(" \t");
      std::string_view w = words.substr(0, end);
      words.remove_prefix(end == std::string_view::npos ? words.size() : end);
      auto number = [&](std::string_view prefix, int& out, int lo, int hi) {
        if (!w.starts_with(prefix) || w.size() == prefix.size()) return;
        int n = 0;
        for (char c : w.substr(prefix.size())) {
          if (c < '0' || c > '9') return;
          n = std::min(n * 10 + (c - '0'), 1000);
        }
        out = std::clamp(n, lo, hi);
      };
      int secs = -1;
      number("timeout:", secs, 0, 30);
      if (secs >= 0) t.timeout_ms = std::max(secs, 1) * 1000;
      number("attempts:", t.attempts, 1, 5);
    }
  };
  while (!conf.empty()) {
    std::size_t nl = conf.find('\n');
    std::string_view line = conf.substr(0, nl);
    conf.remove_prefix(nl == std::string_view::npos ? conf.size() : nl + 1);
    if (line.starts_with("options") && line.size() > 7 && (line[7] == ' ' || line[7] == '\t'))
      apply(line.substr(7));
  }
  apply(res_options);
  return t;
}

AddressList interleave_families(const AddressList& in) {
  AddressList v6, v4, out;
  auto seen = [&](const sockaddr_storage& s) {
    std::size_t len = s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    for (auto& e : out)
      if (e.ss_family == s.ss_family && std::memcmp(&e, &s, len) == 0) return true;
    return false;
  };
  for (auto& a : in) (a.ss_family == AF_INET6 ? v6 : v4).push_back(a);
  for (std::size_t i = 0; i < std::max(v6.size(), v4.size()); ++i) {
    if (i < v6.size() && !seen(v6[i])) out.push_back(v6[i]);
    if (i < v4.size() && !seen(v4[i])) out.push_back(v4[i]);
  }
  return out;
}

struct Resolver::Backend {
  virtual ~Backend() = default;
  /// Looks `host` up and calls Resolver::finish() for it once (possibly inline).
  virtual void lookup(const std::string& host) = 0;
  /// Abandons every lookup (no finish() after this) and calls `done` once no handle or request
  /// of the backend is left on the loop.
  virtual void close(std::function<void()> done) = 0;
};

namespace {

// c-ares on the loop, the way Node drives it: c-ares tells which sockets it wants watched
// (sock_state_cb), a uv_poll_t per socket reports readiness back (ares_process_fd), and one
// timer fires at the next timeout c-ares has pending. /etc/resolv.conf (nameservers, search,
// ndots, timeout, attempts, rotate) and /etc/hosts are read by c-ares as the system's resolver
// reads them.
class AresBackend final : public Resolver::Backend {
 public:
  AresBackend(uv_loop_t* loop, Resolver& owner) : loop_(loop), owner_(owner) {
    static std::once_flag once;
    static int lib = ARES_SUCCESS;
    std::call_once(once, [] { lib = ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options o{};
    o.sock_state_cb = &on_sock_state;
    o.sock_state_cb_data = this;
    // c-ares 1.18 reads nameservers, search, ndots and rotate from resolv.conf but not timeout
    // and attempts (its own defaults are 5 s and 4 tries, doubling: 75 s for a dead server).
    ResolvTimeouts t =
        parse_resolv_timeouts(read_small_file("/etc/resolv.conf"),
                              std::getenv("RES_OPTIONS") ? std::getenv("RES_OPTIONS") : "");
    o.timeout = t.timeout_ms;
    o.tries = t.attempts;
    // Room for a burst of answers (the kernel's default holds about 300 small datagrams).
    o.socket_receive_buffer_size = 1 << 20;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_RCVBUF;
    int rc = lib != ARES_SUCCESS ? lib : ares_init_options(&channel_, &o, mask);
    if (rc != ARES_SUCCESS) {
      init_error_ = std::string("c-ares: ") + ares_strerror(rc);
      channel_ = nullptr;
    }
    timer_ = new TimerBox{{}, this, count_};
    uv_timer_init(loop_, &timer_->timer);
    timer_->timer.data = timer_;
    uv_unref(as_handle(&timer_->timer));
    ++count_->live;
  }

  ~AresBackend() override {
    count_->owner_alive = false;
    destroying_ = true;
    if (channel_) ares_destroy(channel_);  // callbacks see destroying_; sockets close polls
    channel_ = nullptr;
    close_timer();
  }

  void lookup(const std::string& host) override {
    if (!channel_) {
      owner_.finish(host, lookup_error(Errc::dns_temporary, host, init_error_), {}, 0);
      return;
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // No RFC 6724 sort: it opens and connects a UDP socket per address, on the loop. The
    // connection attempts that follow alternate families and race them (Happy Eyeballs).
    hints.ai_flags = ARES_AI_NOSORT;
    auto* q = new Query{this, host};
    ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &on_answer, q);
    arm_timer();
  }

  void close(std::function<void()> done) override {
    destroying_ = true;
    if (channel_) ares_destroy(channel_);
    channel_ = nullptr;
    close_timer();
    if (count_->live == 0) return done();
    count_->on_zero = std::move(done);
  }

 private:
  struct Query {
    AresBackend* self;
    std::string host;
  };
  struct TimerBox {
    uv_timer_t timer;
    AresBackend* self;  // null once closing
    std::shared_ptr<HandleCount> count;
  };
  struct PollBox {
    uv_poll_t poll;
    AresBackend* self;  // null once closing
    ares_socket_t fd;
    std::shared_ptr<HandleCount> count;
  };

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
    static_cast<AresBackend*>(data)->sock_state(fd, readable != 0, writable != 0);
  }

  void sock_state(ares_socket_t fd, bool readable, bool writable) {
    auto it = polls_.find(fd);
    if (!readable && !writable) {
      if (it == polls_.end()) return;
      PollBox* box = it->second;
      polls_.erase(it);
      box->self = nullptr;
      uv_close(as_handle(&box->poll), &on_poll_closed);
      return;
    }
    PollBox* box;
    if (it == polls_.end()) {
      box = new PollBox{{}, this, fd, count_};
      if (uv_poll_init_socket(loop_, &box->poll, fd) < 0) {
        delete box;  // c-ares sees no answer on this socket and times the query out
        return;
      }
      box->poll.data = box;
      uv_unref(as_handle(&box->poll));
      ++count_->live;
      polls_.emplace(fd, box);
    } else {
      box = it->second;
    }
    uv_poll_start(&box->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  &on_poll);
  }

  static void on_poll(uv_poll_t* h, int status, int events) noexcept {
    auto* box = static_cast<PollBox*>(h->data);
    AresBackend* self = box->self;
    if (!self || !self->channel_) return;
    ares_socket_t fd = box->fd, r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;
    if (status < 0) {
      r = w = fd;  // c-ares reads the error and moves on to the next server
    } else {
      if (events & UV_READABLE) r = fd;
      if (events & UV_WRITABLE) w = fd;
    }
    ares_process_fd(self->channel_, r, w);  // may close this poll (box) and finish lookups
    self->arm_timer();
  }

  static void on_poll_closed(uv_handle_t* h) noexcept {
    std::unique_ptr<PollBox> box(static_cast<PollBox*>(h->data));
    box->count->closed();
  }

  static void on_timer(uv_timer_t* t) noexcept {
    auto* box = static_cast<TimerBox*>(t->data);
    AresBackend* self = box->self;
    if (!self || !self->channel_) return;
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    self->arm_timer();
  }

  void arm_timer() {
    if (!channel_ || !timer_) return;
    timeval tv{};
    if (!ares_timeout(channel_, nullptr, &tv)) {
      uv_timer_stop(&timer_->timer);
      return;
    }
    auto ms = static_cast<std::uint64_t>(tv.tv_sec) * 1000 +
              static_cast<std::uint64_t>((tv.tv_usec + 999) / 1000);
    uv_timer_start(&timer_->timer, &on_timer, ms, 0);
  }

  void close_timer() {
    if (!timer_) return;
    timer_->self = nullptr;
    uv_close(as_handle(&timer_->timer), [](uv_handle_t* h) {
      std::unique_ptr<TimerBox> box(static_cast<TimerBox*>(h->data));
      box->count->closed();
    });
    timer_ = nullptr;
  }

  static void on_answer(void* arg, int status, int timeouts, ares_addrinfo* res) noexcept {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    AresBackend* self = q->self;
    if (self->destroying_) {
      if (res) ares_freeaddrinfo(res);
      return;
    }
    AddressList list;
    std::uint64_t ttl_ms = UINT64_MAX;
    if (status == ARES_SUCCESS && res) {
      for (ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) || !n->ai_addr) continue;
        sockaddr_storage s{};
        std::memcpy(&s, n->ai_addr, std::min<std::size_t>(n->ai_addrlen, sizeof s));
        list.push_back(s);
        ttl_ms = std::min<std::uint64_t>(ttl_ms,
                                         static_cast<std::uint64_t>(std::max(0, n->ai_ttl)) * 1000);
      }
      for (ares_addrinfo_cname* c = res->cnames; c; c = c->next)
        ttl_ms =
            std::min<std::uint64_t>(ttl_ms, static_cast<std::uint64_t>(std::max(0, c->ttl)) * 1000);
    }
    if (res) ares_freeaddrinfo(res);
    if (ttl_ms == UINT64_MAX) ttl_ms = 0;
    Error error;
    if (status == ARES_SUCCESS && list.empty()) status = ARES_ENODATA;
    if (status != ARES_SUCCESS) error = describe(q->host, status, timeouts);
    self->owner_.finish(q->host, error, std::move(list), ttl_ms);
  }

  static Error describe(const std::string& host, int status, int timeouts) {
    switch (status) {
      case ARES_ENOTFOUND:
        return lookup_error(Errc::resolve, host, "no such host (NXDOMAIN)");
      case ARES_ENODATA:
        return lookup_error(Errc::resolve, host, "the name has no address (NODATA)");
      case ARES_EBADNAME:
        return lookup_error(Errc::resolve, host, "not a valid host name");
      case ARES_ESERVFAIL:
        return lookup_error(Errc::dns_temporary, host, "the name server failed (SERVFAIL)");
      case ARES_EREFUSED:
        return lookup_error(Errc::dns_temporary, host, "the name server refused (REFUSED)");
      case ARES_ETIMEOUT:
        return lookup_error(Errc::dns_temporary, host,
                            "no answer from the name server (" + std::to_string(timeouts) +
                                (timeouts == 1 ? " try" : " tries") + " timed out)");
      case ARES_ECONNREFUSED:  // c-ares 1.18 says this for SERVFAIL and REFUSED answers too
        return lookup_error(Errc::dns_temporary, host,
                            "the name server failed, refused or could not be reached "
                            "(SERVFAIL, REFUSED or no route)");
      default:
        return lookup_error(Errc::dns_temporary, host, ares_strerror(status));
    }
  }

  uv_loop_t* loop_;
  Resolver& owner_;
  ares_channel channel_ = nullptr;
  std::string init_error_;
  bool destroying_ = false;
  std::shared_ptr<HandleCount> count_ = std::make_shared<HandleCount>();
  TimerBox* timer_ = nullptr;
  std::unordered_map<ares_socket_t, PollBox*> polls_;
};

// getaddrinfo on libuv's threadpool (--resolver system): whatever nsswitch says, at the price of
// a threadpool thread per lookup in flight (4 by default, shared with files and handshakes).
class SystemBackend final : public Resolver::Backend {
 public:
  SystemBackend(uv_loop_t* loop, Resolver& owner, std::uint64_t ttl_ms)
      : loop_(loop), owner_(owner), ttl_ms_(ttl_ms) {}
  ~SystemBackend() override {
    count_->owner_alive = false;
    for (Lookup* l : running_) l->self = nullptr;  // freed by on_resolved
  }

  void lookup(const std::string& host) override {
    auto* l = new Lookup{{}, this, host, count_};
    l->req.data = l;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (int rc = uv_getaddrinfo(loop_, &l->req, &on_resolved, host.c_str(), nullptr, &hints);
        rc < 0) {
      delete l;
      owner_.finish(host, lookup_error(Errc::dns_temporary, host, uv_words(rc)), {}, 0);
      return;
    }
    ++count_->live;
    running_.push_back(l);
  }

  void close(std::function<void()> done) override {
    for (Lookup* l : running_) {
      l->self = nullptr;
      uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));  // fails harmlessly once running
    }
    running_.clear();
    if (count_->live == 0) return done();
    count_->on_zero = std::move(done);
  }

 private:
  struct Lookup {
    uv_getaddrinfo_t req;
    SystemBackend* self;  // null once nobody waits
    std::string host;
    std::shared_ptr<HandleCount> count;
  };

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
    std::unique_ptr<Lookup> l(static_cast<Lookup*>(req->data));
    AddressList list;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      sockaddr_storage s{};
      std::memcpy(&s, ai->ai_addr, std::min<std::size_t>(ai->ai_addrlen, sizeof s));
      list.push_back(s);
    }
    uv_freeaddrinfo(res);
    auto count = l->count;  // the backend may be gone; the count outlives it
    if (SystemBackend* self = l->self) {
      std::erase(self->running_, l.get());
      if (status == 0 && list.empty()) status = UV_EAI_NODATA;
      Error error;
      if (status < 0)
        error = lookup_error(status == UV_EAI_AGAIN ? Errc::dns_temporary : Errc::resolve, l->host,
                             uv_words(status));
      self->owner_.finish(l->host, error, std::move(list), self->ttl_ms_);
    }
    count->closed();
  }

  uv_loop_t* loop_;
  Resolver& owner_;
  const std::uint64_t ttl_ms_;
  std::shared_ptr<HandleCount> count_ = std::make_shared<HandleCount>();
  std::vector<Lookup*> running_;
};

}  // namespace

Resolver::Resolver(uv_loop_t* loop, Options options) : loop_(loop), opts_(options) {
  if (opts_.kind == ResolverKind::system)
    backend_ = std::make_unique<SystemBackend>(loop, *this,
                                               std::min<std::uint64_t>(opts_.max_ttl_ms, 60'000));
  else
    backend_ = std::make_unique<AresBackend>(loop, *this);
}

Resolver::~Resolver() {
  closed_ = true;  // a backend's last callbacks (while it is destroyed) find nobody waiting
  pending_.clear();
  backend_.reset();
}

void Resolver::add_override(const std::string& host, AddressList addresses) {
  overrides_[host] = std::move(addresses);
}

bool Resolver::answer_now(const std::string& host, std::uint16_t port, Callback& cb) {
  sockaddr_storage literal;
  if (parse_ip_literal(host, literal)) {
    cb({}, with_port(AddressList{literal}, port));
    return true;
  }
  if (auto it = overrides_.find(host); it != overrides_.end()) {
    cb({}, with_port(it->second, port));
    return true;
  }
  auto it = cache_.find(host);
  if (it == cache_.end()) return false;
  if (it->second.expires_ms <= uv_now(loop_)) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
    return false;
  }
  ++stats_.cache_hits;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  if (it->second.addresses)
    cb({}, with_port(*it->second.addresses, port));
  else
    cb(it->second.error, nullptr);
  return true;
}

std::uint64_t Resolver::resolve(const std::string& host, std::uint16_t port, Callback cb) {
  if (closed_) {
    cb(Error(Errc::cancelled, "cannot resolve host '" + host + "': the client is closing"),
       nullptr);
    return 0;
  }
  if (answer_now(host, port, cb)) return 0;
  std::uint64_t ticket = next_ticket_++;
  tickets_.emplace(ticket, host);
  if (auto it = pending_.find(host); it != pending_.end()) {
    ++stats_.cache_hits;
    it->second.push_back({ticket, port, std::move(cb)});
    return ticket;
  }
  pending_[host].push_back({ticket, port, std::move(cb)});
  start_lookup(host);
  // The backend may have answered inline (a name in /etc/hosts, a failure to send).
  return tickets_.count(ticket) ? ticket : 0;
}

bool Resolver::prefetch(const std::string& host, std::size_t limit) {
  if (closed_ || pending_.size() >= limit || pending_.count(host)) return false;
  sockaddr_storage literal;
  if (parse_ip_literal(host, literal) || overrides_.count(host)) return false;
  if (auto it = cache_.find(host); it != cache_.end() && it->second.expires_ms > uv_now(loop_))
    return false;
  pending_[host];
  start_lookup(host);
  return true;
}

void Resolver::start_lookup(const std::string& host) {
  if (asking_ >= opts_.max_asking) {
    waiting_.push_back(host);
    return;
  }
  ++asking_;
  ++stats_.lookups;
  backend_->lookup(host);
}

void Resolver::cancel(std::uint64_t ticket) {
  auto t = tickets_.find(ticket);
  if (t == tickets_.end()) return;
  if (auto it = pending_.find(t->second); it != pending_.end())
    std::erase_if(it->second, [&](const Waiter& w) { return w.ticket == ticket; });
  tickets_.erase(t);
}

void Resolver::remember(const std::string& host, Entry entry) {
  if (opts_.cache_size == 0) return;
  if (auto it = cache_.find(host); it != cache_.end()) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
  }
  while (cache_.size() >= opts_.cache_size && !lru_.empty()) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(host);
  entry.lru = lru_.begin();
  cache_.emplace(host, std::move(entry));
}

void Resolver::finish(const std::string& host, const Error& error, AddressList addresses,
                      std::uint64_t ttl_ms) {
  auto it = pending_.find(host);
  if (it == pending_.end()) return;
  std::vector<Waiter> waiters = std::move(it->second);
  pending_.erase(it);
  for (auto& w : waiters) tickets_.erase(w.ticket);
  if (closed_) return;
  --asking_;
  while (!waiting_.empty() && asking_ < opts_.max_asking) {
    std::string next = std::move(waiting_.front());
    waiting_.pop_front();
    if (pending_.count(next)) start_lookup(next);  // may finish inline, re-entering here
  }
  std::shared_ptr<const AddressList> list;
  if (!error) {
    list = std::make_shared<const AddressList>(interleave_families(addresses));
    ttl_ms = std::min(std::max(ttl_ms, opts_.min_ttl_ms), opts_.max_ttl_ms);
    if (ttl_ms > 0) remember(host, Entry{list, {}, uv_now(loop_) + ttl_ms, {}});
  } else if (error.code == Errc::resolve && opts_.negative_ttl_ms > 0) {
    remember(host, Entry{nullptr, error, uv_now(loop_) + opts_.negative_ttl_ms, {}});
  }
  for (auto& w : waiters) {
    if (closed_) break;  // a callback closed the client
    if (list)
      w.cb({}, with_port(*list, w.port));
    else
      w.cb(error, nullptr);
  }
}

void Resolver::close(std::function<void()> on_idle) {
  closed_ = true;
  on_idle_ = std::move(on_idle);
  pending_.clear();
  tickets_.clear();
  waiting_.clear();
  backend_->close([this] {
    backend_idle_ = true;
    maybe_idle();
  });
  maybe_idle();
}

void Resolver::maybe_idle() {
  if (closed_ && backend_idle_ && on_idle_) {
    auto cb = std::move(on_idle_);
    on_idle_ = nullptr;
    cb();
  }
}

}  // namespace uvget
