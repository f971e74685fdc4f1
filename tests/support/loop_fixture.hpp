// LoopTest: a fresh uv loop per test, a watchdog so a hang fails instead of blocking the suite,
// and the libuv leak check at the end (the loop must close). Plus small helpers for fetching.
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <uvget/uvget.hpp>

#include "support/nginx.hpp"  // make_temp_dir, remove_tree

namespace uvget::test {

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

  void TearDown() override {
    if (client_) {
      client_->close([] {});
      run();
      client_.reset();
    }
    run();
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

  /// Queues a GET whose body goes to memory; the outcome fills in as the loop runs.
  std::shared_ptr<Outcome> fetch(const std::string& url, Request req = {}) {
    auto out = std::make_shared<Outcome>();
    req.url = url;
    if (!req.sink) req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    cbs.on_head = [out](const Response&) { ++out->heads; };
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
