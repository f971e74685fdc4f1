// Unit tests for uvget::ConnectionPool with stand-in connections: counts per origin, the two idle
// orders (reuse the newest of an origin, evict the oldest of all), removal in any state, and a
// long random sequence of operations checked step by step against a plain model.
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/connection_pool.hpp"

namespace uvget {

std::ostream& operator<<(std::ostream& os, const PoolCounts& n) {
  return os << "{open " << n.open << ", opening " << n.opening << ", unanswered " << n.unanswered
            << ", idle " << n.idle << "}";
}

namespace {

struct FakeConn {
  std::size_t in_flight = 0;
  bool room = true;
};

using Pool = ConnectionPool<FakeConn>;

TEST(ConnectionPool, CountsFollowEachConnectionThroughItsLife) {
  Pool pool;
  FakeConn a, b, c;
  pool.add(&a, "http://x");
  pool.add(&b, "http://x");
  pool.add(&c, "http://y");
  EXPECT_EQ(pool.counts("http://x"), (PoolCounts{2, 2, 2, 0}));
  EXPECT_EQ(pool.counts("http://y"), (PoolCounts{1, 1, 1, 0}));
  EXPECT_EQ(pool.counts("http://z"), (PoolCounts{}));
  EXPECT_TRUE(pool.established(&a));
  EXPECT_FALSE(pool.established(&a));  // counted once
  EXPECT_TRUE(pool.answered(&a));
  EXPECT_FALSE(pool.answered(&a));
  EXPECT_EQ(pool.counts("http://x"), (PoolCounts{2, 1, 1, 0}));
  pool.park(&a);
  pool.park(&a);  // once
  EXPECT_EQ(pool.counts("http://x"), (PoolCounts{2, 1, 1, 1}));
  EXPECT_EQ(pool.idle_count(), 1u);
  // b closes while still opening: every count it was in drops.
  EXPECT_EQ(pool.remove(&b), "http://x");
  EXPECT_EQ(pool.counts("http://x"), (PoolCounts{1, 0, 0, 1}));
  EXPECT_EQ(pool.remove(&b), "");  // already gone
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(*pool.origin_of(&c), "http://y");
  EXPECT_EQ(pool.origin_of(&b), nullptr);
  EXPECT_FALSE(pool.established(&b));
  EXPECT_FALSE(pool.answered(&b));
}

TEST(ConnectionPool, AnOriginIsForgottenWithItsLastConnection) {
  Pool pool;
  FakeConn a, b;
  pool.add(&a, "http://x");
  pool.add(&b, "http://x");
  EXPECT_EQ(pool.origins(), 1u);
  pool.remove(&a);
  EXPECT_EQ(pool.origins(), 1u);
  pool.remove(&b);
  EXPECT_EQ(pool.origins(), 0u);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(ConnectionPool, TheNewestIdleOfAnOriginIsReusedAndTheOldestOfAllEvicted) {
  Pool pool;
  FakeConn x1, x2, x3, y1;
  for (FakeConn* c : {&x1, &x2, &x3}) pool.add(c, "http://x");
  pool.add(&y1, "http://y");
  pool.park(&x2);
  pool.park(&y1);
  pool.park(&x1);
  pool.park(&x3);
  EXPECT_EQ(pool.oldest_idle(), &x2);
  EXPECT_EQ(pool.oldest_idle("http://x"), &x2);
  EXPECT_EQ(pool.oldest_idle("http://y"), &y1);
  EXPECT_EQ(pool.take_idle("http://x"), &x3);  // the most recently parked
  EXPECT_FALSE(pool.idle(&x3));
  EXPECT_EQ(pool.take_idle("http://x"), &x1);
  EXPECT_EQ(pool.idle_count(), 2u);
  // Evicting the oldest (the scheduler closes it, and remove() follows).
  pool.remove(pool.oldest_idle());
  EXPECT_EQ(pool.oldest_idle(), &y1);
  EXPECT_EQ(pool.take_idle("http://x"), nullptr);
  EXPECT_EQ(pool.take_idle("http://z"), nullptr);
  EXPECT_EQ(pool.counts("http://x"), (PoolCounts{2, 2, 2, 0}));
  // Parked again after use: the newest once more.
  pool.park(&x1);
  pool.park(&x3);
  EXPECT_EQ(pool.oldest_idle(), &y1);
  EXPECT_EQ(pool.oldest_idle("http://x"), &x1);
}

TEST(ConnectionPool, LeastLoadedPicksTheUsableConnectionWithFewestInFlightOldestFirst) {
  Pool pool;
  FakeConn a{3, true}, b{1, true}, c{1, true}, d{0, false}, other{0, true};
  for (FakeConn* x : {&a, &b, &c, &d}) pool.add(x, "http://x");
  pool.add(&other, "http://y");
  auto usable = [](FakeConn* x) { return x->room; };
  auto load = [](FakeConn* x) { return x->in_flight; };
  EXPECT_EQ(pool.least_loaded("http://x", usable, load), &b);  // d has none, other is elsewhere
  pool.remove(&b);
  EXPECT_EQ(pool.least_loaded("http://x", usable, load), &c);
  c.room = false;
  EXPECT_EQ(pool.least_loaded("http://x", usable, load), &a);
  EXPECT_EQ(pool.least_loaded("http://none", usable, load), nullptr);
}

TEST(ConnectionPool, AllListsEveryConnectionAndSurvivesRemovalWhileWalked) {
  Pool pool;
  std::vector<FakeConn> conns(50);
  for (std::size_t i = 0; i < conns.size(); ++i) {
    pool.add(&conns[i], "http://h" + std::to_string(i % 7));
    if (i % 3 == 0) pool.park(&conns[i]);
  }
  auto all = pool.all();
  EXPECT_EQ(all.size(), 50u);
  for (FakeConn* c : all) pool.remove(c);  // as Client::close does, each close removing one
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.origins(), 0u);
  EXPECT_EQ(pool.oldest_idle(), nullptr);
}

// The pool against the plainest model of it: a vector of connections in the order opened,
// flags per connection and a vector of idle ones in the order parked. 20,000 random steps over
// 5 origins and 40 connections, every count and every order compared after each.
TEST(ConnectionPool, AgreesWithAPlainModelOverARandomSequence) {
  struct Model {
    std::string origin;
    bool open = false, opening = false, unanswered = false, idle = false;
  };
  const std::vector<std::string> origins = {"http://a", "http://b", "https://a", "http://c:81",
                                            "https://d"};
  std::vector<FakeConn> conns(40);
  std::vector<Model> model(conns.size());
  std::vector<std::size_t> parked;  // oldest first
  std::vector<std::size_t> opened;  // in the order added
  Pool pool;
  std::mt19937 rng(12345);
  auto index = [&](FakeConn* c) { return static_cast<std::size_t>(c - conns.data()); };

  for (int step = 0; step < 20000; ++step) {
    std::size_t i = rng() % conns.size();
    Model& m = model[i];
    FakeConn* c = &conns[i];
    switch (rng() % 7) {
      case 0:
        if (!m.open) {
          m = {origins[rng() % origins.size()], true, true, true, false};
          pool.add(c, m.origin);
          opened.push_back(i);
        }
        break;
      case 1:
        EXPECT_EQ(pool.established(c), m.open && m.opening);
        m.opening = false;
        break;
      case 2:
        EXPECT_EQ(pool.answered(c), m.open && m.unanswered);
        m.unanswered = false;
        break;
      case 3:
        pool.park(c);
        if (m.open && !m.idle) {
          m.idle = true;
          parked.push_back(i);
        }
        break;
      case 4: {
        const std::string& o = origins[rng() % origins.size()];
        std::size_t want = SIZE_MAX;
        for (auto it = parked.rbegin(); it != parked.rend(); ++it)
          if (model[*it].origin == o) {
            want = *it;
            break;
          }
        FakeConn* got = pool.take_idle(o);
        if (want == SIZE_MAX) {
          EXPECT_EQ(got, nullptr);
        } else {
          ASSERT_NE(got, nullptr);
          EXPECT_EQ(index(got), want);
          model[want].idle = false;
          std::erase(parked, want);
        }
        break;
      }
      case 5:
      case 6:
        if (rng() % 3 == 0 || !m.open) break;  // closes are rarer than the rest
        EXPECT_EQ(pool.remove(c), m.origin);
        std::erase(parked, i);
        std::erase(opened, i);
        m = {};
        break;
    }
    // Everything the scheduler reads agrees with the model.
    std::size_t open = 0;
    for (const std::string& o : origins) {
      PoolCounts want;
      for (const Model& x : model) {
        if (!x.open || x.origin != o) continue;
        ++want.open;
        want.opening += x.opening;
        want.unanswered += x.unanswered;
        want.idle += x.idle;
      }
      open += static_cast<std::size_t>(want.open);
      ASSERT_EQ(pool.counts(o), want) << o << " at step " << step;
      FakeConn* oldest = pool.oldest_idle(o);
      auto first = std::find_if(parked.begin(), parked.end(),
                                [&](std::size_t k) { return model[k].origin == o; });
      ASSERT_EQ(oldest, first == parked.end() ? nullptr : &conns[*first]) << "step " << step;
      // Members in the order opened: the least loaded among equals is the oldest.
      FakeConn* first_open = pool.least_loaded(
          o, [](FakeConn*) { return true; }, [](FakeConn*) { return 0; });
      auto first_opened = std::find_if(opened.begin(), opened.end(),
                                       [&](std::size_t k) { return model[k].origin == o; });
      ASSERT_EQ(first_open, first_opened == opened.end() ? nullptr : &conns[*first_opened]);
    }
    ASSERT_EQ(pool.size(), open);
    ASSERT_EQ(pool.idle_count(), parked.size());
    ASSERT_EQ(pool.oldest_idle(), parked.empty() ? nullptr : &conns[parked.front()]);
  }
}

}  // namespace
}  // namespace uvget
