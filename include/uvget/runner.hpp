// Runner: downloads spread over N event loops, each on its own thread with its own Client, for
// programs that want every core. The single-loop Client stays the embedding API.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include <uvget/client.hpp>
#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

struct uv_loop_s;

namespace uvget {

struct RunnerOptions {
  /// Worker loops (threads); 0: one per core this process may run on. Fewer are started when
  /// the connection limits are smaller than this (each loop needs at least one connection to a
  /// host), see loops().
  int loops = 0;
  /// Options for every download. max_connections and max_per_host hold for all loops together:
  /// they are split between the loops, so the sum never exceeds them.
  ClientOptions client;
};

/// Owns `loops()` threads, each running its own uv loop and Client; one dispatcher on the host's
/// loop feeds them. Call every method from the host loop's thread. `on_done` and `on_retry` run
/// on the host loop; `on_head`, `on_data` and the request's Sink run on the worker loop that
/// downloads it.
/// Transfers to one origin are spread evenly over the loops.
class UVGET_EXPORT Runner final : public Downloader {
 public:
  /// `host` is a loop the caller runs (the runner never runs it); results are delivered there.
  static Result<std::unique_ptr<Runner>> create(uv_loop_s* host, RunnerOptions options = {});
  /// Stops and joins every thread (blocking the caller until their transfers are cancelled) if
  /// close() has not finished; on_done callbacks still pending are dropped. The host runs its
  /// loop once more before uv_loop_close().
  ~Runner() override;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// As Client::get: errors in the request come back here, synchronously; otherwise `on_done` is
  /// called exactly once, on the host loop, never before get() returns.
  Result<TransferId> get(Request request, Callbacks callbacks) override;
  /// Fails the transfer with Errc::cancelled. Unknown or finished ids are ignored.
  void cancel(TransferId id) override;
  /// Cancels every transfer, closes every worker loop and joins its thread, delivers the
  /// remaining on_done callbacks, then calls `on_closed`. After that the host loop holds nothing
  /// of the runner. Once closed, a further close() calls `on_closed` at once.
  void close(std::function<void()> on_closed) override;

  /// The sum over the loops (queued includes transfers not yet taken by a loop). Refreshed by
  /// each loop every 100 ms and as transfers finish; exact once close() has finished.
  ClientStats stats() const override;
  int loops() const;

  struct Impl;

 private:
  explicit Runner(Impl* impl);
  Impl* impl_;  // frees itself once its host handle is closed
};

/// Cores this process may run on (its CPU affinity), at least 1.
UVGET_EXPORT int available_cores();

}  // namespace uvget
