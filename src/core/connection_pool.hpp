// ConnectionPool: the open connections of one client, by origin. It holds the counts that the
// scheduler's limits read (open, still opening, not yet answered once) and the two orders in
// which idle connections are used: the most recently parked of an origin is reused first (its
// server is the least likely to have timed it out), and the least recently parked of all is
// evicted first when the total limit is reached.
//
// One index: each connection has one entry, and an origin's members, its idle ones and the
// idle ones of the whole pool are links inside those entries, so no two containers can
// disagree. The pool never calls its connections (it is a template over their type, tested with
// stand-ins): closing, parking and choosing stay with the scheduler.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace uvget {

struct PoolCounts {
  int open = 0;        // connections of the origin, in any state but closing
  int opening = 0;     // of those, not yet established (connected, and TLS done)
  int unanswered = 0;  // of those, without a first response head yet
  int idle = 0;        // of those, parked
  bool operator==(const PoolCounts&) const = default;
};

template <class C>
class ConnectionPool {
 public:
  ConnectionPool() = default;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// A new connection to `origin`: opening and unanswered until told otherwise.
  void add(C* c, const std::string& origin) {
    auto [git, fresh] = groups_.try_emplace(origin);
    Group& g = git->second;
    if (fresh) g.origin = &git->first;
    Entry& e = entries_.try_emplace(c).first->second;
    e.conn = c;
    e.group = &g;
    g.members.push_back(&e, &Entry::member);
    ++g.counts.open;
    ++g.counts.opening;
    ++g.counts.unanswered;
  }

  /// `c` is established. true when it was counted as opening until now.
  bool established(C* c) {
    Entry* e = find(c);
    if (!e || !e->opening) return false;
    e->opening = false;
    --e->group->counts.opening;
    return true;
  }

  /// A first response head came on `c`. true when it was counted as unanswered until now.
  bool answered(C* c) {
    Entry* e = find(c);
    if (!e || !e->unanswered) return false;
    e->unanswered = false;
    --e->group->counts.unanswered;
    return true;
  }

  /// `c` is idle (parked): the most recent of its origin and of the pool.
  void park(C* c) {
    Entry* e = find(c);
    if (!e || e->idle) return;
    e->idle = true;
    e->group->idle.push_back(e, &Entry::in_origin_idle);
    idle_.push_back(e, &Entry::in_pool_idle);
    ++e->group->counts.idle;
    ++idle_count_;
  }

  /// The most recently parked connection of `origin`, no longer idle; null if none.
  C* take_idle(const std::string& origin) {
    auto it = groups_.find(origin);
    if (it == groups_.end() || !it->second.idle.tail) return nullptr;
    Entry* e = it->second.idle.tail;
    unpark(*e);
    return e->conn;
  }

  /// The least recently parked connection of the pool, or of `origin`; null if none. It stays
  /// in the pool (the caller closes it, and remove() follows).
  C* oldest_idle() const { return idle_.head ? idle_.head->conn : nullptr; }
  C* oldest_idle(const std::string& origin) const {
    auto it = groups_.find(origin);
    return it == groups_.end() || !it->second.idle.head ? nullptr : it->second.idle.head->conn;
  }

  /// `c` is closing: it leaves every count and order. Returns its origin ("" if unknown).
  std::string remove(C* c) {
    auto it = entries_.find(c);
    if (it == entries_.end()) return {};
    Entry& e = it->second;
    Group& g = *e.group;
    unpark(e);
    g.members.unlink(&e, &Entry::member);
    --g.counts.open;
    if (e.opening) --g.counts.opening;
    if (e.unanswered) --g.counts.unanswered;
    std::string origin = *g.origin;
    entries_.erase(it);
    if (!g.members.head) groups_.erase(origin);
    return origin;
  }

  bool contains(const C* c) const { return entries_.count(const_cast<C*>(c)) > 0; }
  bool idle(const C* c) const {
    auto it = entries_.find(const_cast<C*>(c));
    return it != entries_.end() && it->second.idle;
  }
  /// The origin of `c`; null if it is not in the pool.
  const std::string* origin_of(const C* c) const {
    auto it = entries_.find(const_cast<C*>(c));
    return it == entries_.end() ? nullptr : it->second.group->origin;
  }
  PoolCounts counts(const std::string& origin) const {
    auto it = groups_.find(origin);
    return it == groups_.end() ? PoolCounts{} : it->second.counts;
  }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t idle_count() const noexcept { return idle_count_; }
  std::size_t origins() const noexcept { return groups_.size(); }

  /// Of `origin`'s connections for which `usable(c)` holds, the one with the least `load(c)`,
  /// the oldest first among equals; null if none.
  template <class Usable, class Load>
  C* least_loaded(const std::string& origin, Usable&& usable, Load&& load) const {
    auto it = groups_.find(origin);
    if (it == groups_.end()) return nullptr;
    C* best = nullptr;
    std::size_t best_load = 0;
    for (Entry* e = it->second.members.head; e; e = e->member.next) {
      if (!usable(e->conn)) continue;
      std::size_t l = load(e->conn);
      if (!best || l < best_load) {
        best = e->conn;
        best_load = l;
      }
    }
    return best;
  }

  /// Every connection, for closing them all (remove() may run while the caller walks it).
  std::vector<C*> all() const {
    std::vector<C*> out;
    out.reserve(entries_.size());
    for (const auto& [c, e] : entries_) out.push_back(c);
    return out;
  }

 private:
  struct Entry;
  struct Hook {
    Entry* prev = nullptr;
    Entry* next = nullptr;
  };
  // A doubly linked list through one Hook of each entry.
  struct Chain {
    Entry* head = nullptr;
    Entry* tail = nullptr;
    void push_back(Entry* e, Hook Entry::*hook) {
      (e->*hook).prev = tail;
      (e->*hook).next = nullptr;
      if (tail)
        (tail->*hook).next = e;
      else
        head = e;
      tail = e;
    }
    void unlink(Entry* e, Hook Entry::*hook) {
      Hook& h = e->*hook;
      (h.prev ? (h.prev->*hook).next : head) = h.next;
      (h.next ? (h.next->*hook).prev : tail) = h.prev;
      h = {};
    }
  };
  struct Group {
    const std::string* origin = nullptr;  // the key of this group in groups_
    Chain members;                        // in the order they were opened
    Chain idle;                           // parked, oldest first
    PoolCounts counts;
  };
  struct Entry {
    C* conn = nullptr;
    Group* group = nullptr;
    bool opening = true;
    bool unanswered = true;
    bool idle = false;
    Hook member, in_origin_idle, in_pool_idle;
  };

  Entry* find(C* c) {
    auto it = entries_.find(c);
    return it == entries_.end() ? nullptr : &it->second;
  }
  void unpark(Entry& e) {
    if (!e.idle) return;
    e.idle = false;
    e.group->idle.unlink(&e, &Entry::in_origin_idle);
    idle_.unlink(&e, &Entry::in_pool_idle);
    --e.group->counts.idle;
    --idle_count_;
  }

  // Node-based maps: an entry's or a group's address never changes while it is in them.
  std::unordered_map<C*, Entry> entries_;
  std::unordered_map<std::string, Group> groups_;
  Chain idle_;  // every parked connection, oldest first
  std::size_t idle_count_ = 0;
};

}  // namespace uvget
