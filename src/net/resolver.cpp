// DNS through the libuv threadpool, cached per client; literal addresses parsed in place.
#include "net/resolver.hpp"

#include <cstring>

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

Resolver::Resolver(uv_loop_t* loop, std::size_t cache_size, std::uint64_t ttl_ms)
    : loop_(loop), cache_size_(cache_size), ttl_ms_(ttl_ms) {}

Resolver::~Resolver() {
  for (auto& [name, lookup] : pending_) lookup->owner = nullptr;  // freed by on_resolved
}

void Resolver::add_override(const std::string& host, AddressList addresses) {
  overrides_[host] = std::move(addresses);
}

std::uint64_t Resolver::resolve(const std::string& host, std::uint16_t port, Callback cb) {
  if (closed_) {
    cb(UV_ECANCELED, nullptr);
    return 0;
  }
  sockaddr_storage literal;
  if (parse_ip_literal(host, literal)) {
    cb(0, with_port(AddressList{literal}, port));
    return 0;
  }
  if (auto it = overrides_.find(host); it != overrides_.end()) {
    cb(0, with_port(it->second, port));
    return 0;
  }
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (it->second.expires_ms > uv_now(loop_)) {
      ++stats_.cache_hits;
      cb(0, with_port(*it->second.addresses, port));
      return 0;
    }
  }
  std::uint64_t ticket = next_ticket_++;
  if (auto it = pending_.find(host); it != pending_.end()) {
    ++stats_.cache_hits;
    it->second->waiters.push_back({ticket, port, std::move(cb)});
    return ticket;
  }
  auto* lookup = new Lookup;
  lookup->owner = this;
  lookup->host = host;
  lookup->req.data = lookup;
  lookup->waiters.push_back({ticket, port, std::move(cb)});
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  ++stats_.lookups;
  if (int rc = uv_getaddrinfo(loop_, &lookup->req, &on_resolved, host.c_str(), nullptr, &hints);
      rc < 0) {
    auto waiter_cb = std::move(lookup->waiters.front().cb);
    delete lookup;
    waiter_cb(rc, nullptr);
    return 0;
  }
  ++in_flight_;
  pending_.emplace(host, lookup);
  return ticket;
}

void Resolver::cancel(std::uint64_t ticket) {
  if (ticket == 0) return;
  for (auto& [name, lookup] : pending_) {
    auto& w = lookup->waiters;
    for (auto it = w.begin(); it != w.end(); ++it) {
      if (it->ticket == ticket) {
        w.erase(it);
        return;
      }
    }
  }
}

void Resolver::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* lookup = static_cast<Lookup*>(req->data);
  if (lookup->owner) {
    lookup->owner->finish(lookup, status, res);
  } else {
    uv_freeaddrinfo(res);
  }
  Resolver* owner = lookup->owner;
  delete lookup;
  if (owner) {
    --owner->in_flight_;
    owner->maybe_idle();
  }
}

void Resolver::finish(Lookup* lookup, int status, addrinfo* res) {
  pending_.erase(lookup->host);
  std::shared_ptr<AddressList> list;
  if (status == 0) {
    list = std::make_shared<AddressList>();
    // IPv6 and IPv4 interleaved would be Happy Eyeballs; the order getaddrinfo gives
    // (RFC 6724 preference) is kept and the next address is tried on failure.
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      sockaddr_storage s{};
      std::memcpy(&s, ai->ai_addr, ai->ai_addrlen);
      bool dup = false;
      for (auto& e : *list) dup = dup || std::memcmp(&e, &s, sizeof s) == 0;
      if (!dup) list->push_back(s);
    }
    if (list->empty()) status = UV_EAI_NODATA;
  }
  uv_freeaddrinfo(res);
  if (status == 0 && !closed_) {
    if (cache_.size() >= cache_size_ && !cache_order_.empty()) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
    if (cache_size_ > 0) {
      if (cache_.find(lookup->host) == cache_.end()) cache_order_.push_back(lookup->host);
      cache_[lookup->host] = Entry{list, uv_now(loop_) + ttl_ms_};
    }
  }
  auto waiters = std::move(lookup->waiters);
  for (auto& w : waiters) {
    if (closed_) break;
    if (status == 0)
      w.cb(0, with_port(*list, w.port));
    else
      w.cb(status, nullptr);
  }
}

void Resolver::close(std::function<void()> on_idle) {
  closed_ = true;
  on_idle_ = std::move(on_idle);
  for (auto& [name, lookup] : pending_) {
    lookup->waiters.clear();
    uv_cancel(reinterpret_cast<uv_req_t*>(&lookup->req));  // fails harmlessly if already running
  }
  maybe_idle();
}

void Resolver::maybe_idle() {
  if (closed_ && in_flight_ == 0 && on_idle_) {
    auto cb = std::move(on_idle_);
    on_idle_ = nullptr;
    cb();
  }
}

}  // namespace uvget
