#include "cli/file_checks.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "cli/done_list.hpp"

namespace uvget::cli {

struct FileChecks::Batch {
  struct Entry {
    std::string_view path;
    std::uint64_t size;
    bool there = false;
  };
  uv_work_t req{};
  FileChecks* owner = nullptr;  // null once the owner is gone
  std::shared_ptr<Batch> self;  // keeps it alive while in the threadpool
  std::vector<Entry> entries;
  bool answered = false;
};

FileChecks::FileChecks(uv_loop_t* loop, std::function<void()> on_answers, std::size_t batch_size,
                       std::size_t running)
    : loop_(loop),
      on_answers_(std::move(on_answers)),
      batch_size_(std::max<std::size_t>(1, batch_size)),
      max_running_(std::max<std::size_t>(1, running)),
      next_size_(std::min<std::size_t>(64, batch_size_)) {}

FileChecks::~FileChecks() {
  // A batch still in the threadpool finishes there and is freed by its own callback.
  for (Batch* b : running_) b->owner = nullptr;
}

FileChecks::Ticket FileChecks::ask(std::string_view path, std::uint64_t size) {
  if (!open_) {
    open_ = std::make_shared<Batch>();
    open_->entries.reserve(next_size_);
  }
  open_->entries.push_back({path, size});
  Ticket t{open_, static_cast<std::uint32_t>(open_->entries.size() - 1)};
  if (open_->entries.size() >= next_size_) close_open_batch();
  return t;
}

std::optional<bool> FileChecks::answer(const Ticket& t) {
  if (t.batch->answered) return t.batch->entries[t.index].there;
  if (t.batch == open_) close_open_batch();
  if (t.batch->answered) return t.batch->entries[t.index].there;  // could not be sent
  return std::nullopt;
}

void FileChecks::cancel() {
  cancelled_ = true;
  open_.reset();
  waiting_.clear();
  for (Batch* b : running_) uv_cancel(reinterpret_cast<uv_req_t*>(&b->req));
}

void FileChecks::close_open_batch() {
  next_size_ = std::min(next_size_ * 2, batch_size_);
  waiting_.push_back(std::move(open_));
  open_.reset();
  pump();
}

void FileChecks::pump() {
  while (!cancelled_ && running_.size() < max_running_ && !waiting_.empty()) {
    std::shared_ptr<Batch> b = std::move(waiting_.front());
    waiting_.pop_front();
    b->owner = this;
    b->req.data = b.get();
    if (uv_queue_work(loop_, &b->req, &work, &after) != 0) {
      // Cannot happen with a valid loop and callbacks; answered "not there" (the URL is then
      // fetched again, which loses nothing).
      b->answered = true;
      continue;
    }
    running_.push_back(b.get());
    b->self = std::move(b);
  }
}

void FileChecks::work(uv_work_t* req) {
  auto* b = static_cast<Batch*>(req->data);
  DirStat dir;  // this thread's own
  for (auto& e : b->entries) {
    struct ::stat st;
    e.there = dir.stat(e.path, st) == 0 && S_ISREG(st.st_mode) &&
              static_cast<std::uint64_t>(st.st_size) == e.size;
  }
}

void FileChecks::after(uv_work_t* req, int) {
  auto* b = static_cast<Batch*>(req->data);
  std::shared_ptr<Batch> keep = std::move(b->self);  // now its tickets' alone
  b->answered = true;  // on UV_ECANCELED every entry stays "not there"
  FileChecks* self = b->owner;
  if (!self) return;
  self->running_.erase(std::find(self->running_.begin(), self->running_.end(), b));
  if (self->cancelled_) return;
  self->pump();
  self->on_answers_();
}

}  // namespace uvget::cli
