// LoopTest: a fresh uv loop per test, a watchdog so a hang fails instead of blocking the suite,
// and the libuv leak check at the end (the loop must close). Plus small helpers for fetching.
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <uvget/uvget.hpp>

#include "support/nginx.hpp"  // make_temp_dir, remove_tree

namespace uvget::test {

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

  void TearDown() override {
    // First, so that no probe runs once the test's locals are gone.
    for (auto& p : probes_) uv_close(reinterpret_cast<uv_handle_t*>(&p->timer), nullptr);
    if (client_) {
      client_->close([] {});
      run();
      client_.reset();
    }
    run();
    probes_.clear();
    int rc = uv_loop_close(&loop_);
    EXPECT_EQ(rc, 0) << "a handle was left open on the loop";
    if (rc != 0) {
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            std::fprintf(stderr, "open handle: %s\n", uv_handle_type_name(h->type));
          },
          nullptr);
    }
  }

  /// Runs the loop until it has nothing left, failing the test after `limit_ms`.
  void run(std::uint64_t limit_ms = 20'000) {
    uv_timer_t watchdog;
    uv_timer_init(&loop_, &watchdog);
    bool fired = false;
    watchdog.data = &fired;
    uv_timer_start(
        &watchdog,
        [](uv_timer_t* t) {
          *static_cast<bool*>(t->data) = true;
          uv_stop(t->loop);
        },
        limit_ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_FALSE(fired) << "the loop was still busy after " << limit_ms << " ms";
    if (fired) {
      std::fprintf(stderr, "active handles %u, requests %u\n", loop_.active_handles,
                   loop_.active_reqs.count);
      uv_print_all_handles(&loop_, stderr);
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            std::fprintf(stderr, "busy: %s active=%d ref=%d\n", uv_handle_type_name(h->type),
                         uv_is_active(h), uv_has_ref(h));
          },
          nullptr);
    }
  }

  /// Runs the loop for about `ms` milliseconds, whatever is pending.
  void run_for(std::uint64_t ms) {
    uv_timer_t stop;
    uv_timer_init(&loop_, &stop);
    uv_timer_start(
        &stop, [](uv_timer_t* t) { uv_stop(t->loop); }, ms, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  /// Calls `fn` from a timer on the loop, `ms` ms after the loop's time (uv_now: the start of
  /// the loop's current turn, the time the client's own timers count from too; a test that
  /// blocked before the loop runs calls uv_update_time first). libuv runs due timers in the
  /// order of their due times however late the loop runs, so `fn` sees the client before any of
  /// its own timers due later than this one (a retry's wait, a connect timeout) has fired: an
  /// order, not a duration. The timer does not keep the loop alive: when the loop runs out of
  /// work first, `fn` is never called (a test checks that it was).
  void at_loop_ms(std::uint64_t ms, std::function<void()> fn) {
    auto& p = *probes_.emplace_back(std::make_unique<Probe>());
    p.fn = std::move(fn);
    uv_timer_init(&loop_, &p.timer);
    p.timer.data = &p;
    uv_timer_start(
        &p.timer, [](uv_timer_t* t) { static_cast<Probe*>(t->data)->fn(); }, ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&p.timer));
  }

  Client& client(ClientOptions o = {}) {
    if (!client_) {
      auto c = Client::create(&loop_, std::move(o));
      EXPECT_TRUE(c) << c.error().message();
      client_ = std::move(*c);
    }
    return *client_;
  }

  static TransferResult not_finished() {
    TransferResult r;
    r.error = Error(Errc::cancelled, "the transfer never finished");
    return r;
  }

  struct Outcome {
    bool done = false;
    // Not ok() until on_done replaces it, so a transfer that never finished fails the checks.
    TransferResult result = not_finished();
    std::string body;
    int heads = 0;
  };

  /// Queues a GET whose body goes to memory; the outcome fills in as the loop runs. `on_retry`,
  /// when given, sees each retry.
  std::shared_ptr<Outcome> fetch(
      const std::string& url, Request req = {},
      std::function<void(const Error&, int, std::uint64_t)> on_retry = {}) {
    auto out = std::make_shared<Outcome>();
    req.url = url;
    if (!req.sink) req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    cbs.on_head = [out](const Response&) { ++out->heads; };
    cbs.on_retry = std::move(on_retry);
    cbs.on_done = [out](const TransferResult& r) {
      EXPECT_FALSE(out->done) << "on_done called twice";
      out->done = true;
      out->result = r;
    };
    auto id = client().get(std::move(req), std::move(cbs));
    EXPECT_TRUE(id) << id.error().message();
    return out;
  }

  uv_loop_t loop_{};

 private:
  struct Probe {
    uv_timer_t timer{};
    std::function<void()> fn;
  };
  std::vector<std::unique_ptr<Probe>> probes_;  // at_loop_ms(); closed in TearDown

 public:
  std::unique_ptr<Client> client_;  // public: C callbacks in tests reach it through data
};

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline bool exists(const std::string& path) {
  return std::filesystem::exists(path);
}

}  // namespace uvget::test
