// FileChecks: "is this file still there with this size?" for the files an earlier run's records
// name (--skip-done, --if-changed), answered in the libuv threadpool in batches, so that a
// re-run of a million URLs never blocks the loop on stat(2): on a cold disk each one may wait
// for a read, and several batches run side by side on several cores.
//
// Questions are asked in list order and their answers read back in the same order; a batch is
// sent when it is full or when the caller needs an answer from it, and at most `running` batches
// are in the threadpool at once, so file writes of downloads in progress still get threads.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace uvget::cli {

class FileChecks {
 public:
  struct Batch;
  /// Where one question's answer will be.
  struct Ticket {
    std::shared_ptr<Batch> batch;
    std::uint32_t index = 0;
    explicit operator bool() const noexcept { return batch != nullptr; }
  };

  /// `on_answers` runs on the loop after each batch is answered. Batches start at 64 questions
  /// and double up to `batch_size`: the first answers come soon even from a cold disk, and a
  /// long list pays for few round trips.
  FileChecks(uv_loop_t* loop, std::function<void()> on_answers, std::size_t batch_size = 1024,
             std::size_t running = 2);
  ~FileChecks();
  FileChecks(const FileChecks&) = delete;
  FileChecks& operator=(const FileChecks&) = delete;

  /// Asks whether `path` is a regular file (symlinks followed) of `size` bytes. `path` must be
  /// followed by a NUL and stay valid until the answer is known.
  Ticket ask(std::string_view path, std::uint64_t size);
  /// The answer, or nullopt while it is not known yet: then its batch is sent if it was not,
  /// and on_answers runs once it is known.
  std::optional<bool> answer(const Ticket& t);
  /// Batches sent and not yet answered.
  std::size_t in_flight() const noexcept { return running_.size(); }
  /// No more answers are wanted (an interrupt): batches not yet sent are dropped and those in
  /// the threadpool cancelled where they have not started; on_answers is not called again.
  void cancel();

 private:
  static void work(uv_work_t* req);
  static void after(uv_work_t* req, int status);
  void close_open_batch();
  void pump();

  uv_loop_t* loop_;
  std::function<void()> on_answers_;
  std::size_t batch_size_, max_running_;
  std::size_t next_size_ = 64;                  // of the next batch
  bool cancelled_ = false;                      // cancel(): no more answers wanted
  std::shared_ptr<Batch> open_;                 // being filled
  std::deque<std::shared_ptr<Batch>> waiting_;  // full, in order, not yet sent
  std::vector<Batch*> running_;                 // in the threadpool (each keeps itself alive)
};

}  // namespace uvget::cli
