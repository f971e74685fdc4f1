// The built-in sinks. FileSink streams to NAME.part through the libuv threadpool with bounded
// pending bytes, and renames to NAME only after finish(); memory and discard sinks are trivial.
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include <uvget/request.hpp>

#include "uv/util.hpp"

namespace uvget {
namespace {

// Bodies up to this size are buffered and written by one threadpool job (open, write, close,
// rename) instead of four round trips: the common case for many small files.
constexpr std::size_t kSmallFile = 64 * 1024;

class FileSink final : public Sink {
 public:
  FileSink(std::string path, FileSinkOptions o)
      : path_(std::move(path)), part_(path_ + ".part"), opts_(o) {}

  Error open(uv_loop_s* loop, const Response&, Events events) override {
    loop_ = loop;
    events_ = std::move(events);
    return {};
  }

  bool write(std::span<const std::byte> data) override {
    if (error_) return true;  // already failed: the transfer is stopping
    pending_.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (state_ == State::buffering && pending_.size() >= std::min(kSmallFile, opts_.high_water / 2))
      start_open();
    else if (state_ == State::open && !busy_)
      write_more();
    if (pending_.size() + inflight_.size() >= opts_.high_water) paused_ = true;
    return !paused_;
  }

  void finish(std::function<void(Error)> done) override {
    finish_cb_ = std::move(done);
    if (state_ == State::buffering) {
      run_job(Job::whole);
    } else if (state_ == State::open && !busy_) {
      if (pending_.empty())
        run_job(Job::close_rename);
      else
        write_more();
    }
    // else: opening or writing; the chain continues into close_rename when it drains
  }

  void abort(const Error& why, std::function<void()> done) override {
    if (why.code == Errc::cancelled && opts_.keep_partial_on_cancel) keep_ = true;
    aborting_ = true;
    if (state_ == State::buffering && !busy_ && !part_on_disk_) {
      pending_.clear();  // nothing reached the disk
      done();
      return;
    }
    abort_cb_ = std::move(done);
    restart_cb_ = nullptr;  // abort wins over a restart in progress
    if (!busy_) run_job(Job::discard);
  }

  bool restart(std::function<void()> done) override {
    if (error_ || aborting_ || finish_cb_) return false;
    restart_cb_ = std::move(done);
    if (!busy_) do_restart();
    return true;
  }

 private:
  enum class State { buffering, opening, open, closed };
  enum class Job { whole, close_rename, discard, close_only };

 public:
  struct Work {
    FileSink* self;
    Job job;
    int err = 0;            // errno of the step that failed
    const char* step = "";  // which step failed
  };

 private:
  static void submit(uv_loop_t* loop, Work* w);
  struct Fs {
    uv_fs_t req{};
    FileSink* self;
  };

  int open_flags() const { return O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW; }

  void start_open() {
    state_ = State::opening;
    busy_ = true;
    auto* f = new Fs{.self = this};
    f->req.data = f;
    if (int rc = uv_fs_open(loop_, &f->req, part_.c_str(), open_flags(), opts_.mode, &on_open);
        rc < 0) {
      delete f;
      busy_ = false;
      fail("cannot open '" + part_ + "': " + uv_words(rc));
    }
  }

  // Frees a finished request; the sink is idle again. Returns the sink and the result.
  static std::pair<FileSink*, ssize_t> complete(uv_fs_t* req) {
    auto* f = static_cast<Fs*>(req->data);
    FileSink* self = f->self;
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    delete f;
    self->busy_ = false;
    return {self, result};
  }

  static void on_open(uv_fs_t* req) {
    auto [self, result] = complete(req);
    if (result < 0) {
      self->fail("cannot open '" + self->part_ + "': " + uv_words(static_cast<int>(result)));
      return;
    }
    self->fd_ = static_cast<uv_file>(result);
    self->part_on_disk_ = true;
    self->state_ = State::open;
    self->next();
  }

  // Drops every byte so far; the file (if opened) is closed, and truncated by the next open.
  void do_restart() {
    pending_.clear();
    inflight_.clear();
    inflight_done_ = 0;
    offset_ = 0;
    paused_ = false;
    if (fd_ >= 0) {
      run_job(Job::close_only);  // after_work() finishes the restart
      return;
    }
    state_ = State::buffering;
    auto cb = std::move(restart_cb_);
    restart_cb_ = nullptr;
    cb();
  }

  // What to do once no operation is in flight. A callback run just before (a failure reported
  // to the owner, which aborts) may already have started the next one.
  void next() {
    if (busy_) return;
    if (aborting_) {
      run_job(Job::discard);
    } else if (restart_cb_) {
      do_restart();
    } else if (error_) {
      // waiting for abort()
    } else if (!pending_.empty()) {
      write_more();
    } else if (finish_cb_) {
      run_job(Job::close_rename);
    }
  }

  void write_more() {
    inflight_.swap(pending_);
    pending_.clear();
    issue_write();
  }

  void issue_write() {
    busy_ = true;
    auto* f = new Fs{.self = this};
    f->req.data = f;
    uv_buf_t b = uv_buf_init(inflight_.data() + inflight_done_,
                             static_cast<unsigned>(inflight_.size() - inflight_done_));
    if (int rc = uv_fs_write(loop_, &f->req, fd_, &b, 1, static_cast<int64_t>(offset_), &on_write);
        rc < 0) {
      delete f;
      busy_ = false;
      fail("cannot write '" + part_ + "': " + uv_words(rc));
    }
  }

  static void on_write(uv_fs_t* req) {
    auto [self, result] = complete(req);
    if (result < 0) {
      self->fail("cannot write '" + self->part_ + "': " + uv_words(static_cast<int>(result)));
      self->next();
      return;
    }
    self->offset_ += static_cast<std::uint64_t>(result);
    self->inflight_done_ += static_cast<std::size_t>(result);
    if (self->inflight_done_ < self->inflight_.size() && !self->aborting_) {
      self->issue_write();  // short write
      return;
    }
    self->inflight_.clear();
    self->inflight_done_ = 0;
    if (self->paused_ && self->pending_.size() < self->opts_.low_water) {
      self->paused_ = false;
      if (self->events_.drained) self->events_.drained();  // may write more into pending_
    }
    if (!self->busy_) self->next();
  }

  void run_job(Job job) {
    busy_ = true;
    if (job == Job::whole) state_ = State::opening;
    submit(loop_, new Work{.self = this, .job = job});
  }

 public:
  // Runs on a threadpool thread: touches only the job's own fields and the sink's
  // immutable paths and the buffers no loop-side code touches while busy_.
  static void work(Work* w) {
    FileSink* s = w->self;
    auto failed = [&](const char* step) {
      w->err = errno;
      w->step = step;
      if (!s->keep_ && std::strcmp(step, "open") != 0) ::unlink(s->part_.c_str());
    };
    switch (w->job) {
      case Job::whole: {
        int fd = ::open(s->part_.c_str(), s->open_flags(), s->opts_.mode);
        if (fd < 0) return failed("open");
        std::size_t done = 0;
        while (done < s->pending_.size()) {
          ssize_t n = ::write(fd, s->pending_.data() + done, s->pending_.size() - done);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            return failed("write");
          }
          done += static_cast<std::size_t>(n);
        }
        if (::close(fd) < 0) return failed("close");
        if (::rename(s->part_.c_str(), s->path_.c_str()) < 0) return failed("rename");
        return;
      }
      case Job::close_rename:
        if (::close(s->fd_) < 0) return failed("close");
        if (::rename(s->part_.c_str(), s->path_.c_str()) < 0) return failed("rename");
        return;
      case Job::close_only:
        ::close(s->fd_);
        return;
      case Job::discard:
        if (s->fd_ >= 0) ::close(s->fd_);
        if (!s->keep_ && (s->state_ != State::buffering || s->part_on_disk_))
          ::unlink(s->part_.c_str());
        return;
    }
  }

  static void after_work(Work* w) {
    FileSink* self = w->self;
    Job job = w->job;
    Error err;
    if (w->err) {
      std::string target = std::strcmp(w->step, "rename") == 0
                               ? "rename '" + self->part_ + "' to '" + self->path_ + "'"
                               : std::string(w->step) + " '" + self->part_ + "'";
      err = Error(Errc::file_io,
                  "cannot " + target + ": " + uv_words(uv_translate_sys_error(w->err)));
    }
    delete w;
    self->busy_ = false;
    self->fd_ = -1;
    if (job == Job::close_only) {  // the end of a restart, unless abort() came meanwhile
      self->state_ = State::buffering;
      if (self->aborting_) return self->run_job(Job::discard);
      auto cb = std::move(self->restart_cb_);
      self->restart_cb_ = nullptr;
      if (cb) cb();  // the owner may delete us here
      return;
    }
    self->state_ = State::closed;
    if (job == Job::discard) {
      auto cb = std::move(self->abort_cb_);
      cb();  // the owner may delete us here
      return;
    }
    auto cb = std::move(self->finish_cb_);
    cb(std::move(err));  // the owner may delete us here
  }

 private:
  void fail(std::string why) {
    if (error_) return;
    error_ = Error(Errc::file_io, std::move(why));
    if (finish_cb_) {
      // Failing while finishing: report through the finish callback after cleaning up.
      auto cb = std::move(finish_cb_);
      finish_cb_ = nullptr;
      abort_cb_ = [cb = std::move(cb), e = error_]() { cb(e); };
      aborting_ = true;
      if (!busy_) run_job(Job::discard);
      return;
    }
    if (events_.failed) events_.failed(error_);
  }

  const std::string path_, part_;
  const FileSinkOptions opts_;
  bool keep_ = opts_.keep_partial;  // leave NAME.part behind when failing
  uv_loop_t* loop_ = nullptr;
  Events events_;
  State state_ = State::buffering;
  uv_file fd_ = -1;      // valid in State::open
  bool busy_ = false;    // one fs request or job in flight; at most one at a time
  bool paused_ = false;  // write() returned false; drained() not yet called
  bool aborting_ = false;
  std::string pending_;   // body bytes not yet handed to a write
  std::string inflight_;  // bytes of the write in flight; stable while busy_
  std::size_t inflight_done_ = 0;
  std::uint64_t offset_ = 0;  // file offset of inflight_[0] + inflight_done_
  Error error_;
  std::function<void(Error)> finish_cb_;
  std::function<void()> abort_cb_;
  std::function<void()> restart_cb_;  // restart() in progress
  bool part_on_disk_ = false;         // NAME.part was created (by this or an earlier attempt)
};

// Threadpool jobs of every file sink on one loop go out in batches: at most kBatchesInFlight
// uv_queue_work requests per loop, the rest waiting to leave together when one returns. Many
// small files then cost a few threadpool round trips (and wake-ups) instead of one each.
// Loop-thread only state, keyed by loop, empty when idle: no handle of its own.
struct Batch {
  uv_work_t req{};
  uv_loop_t* loop;
  std::vector<FileSink::Work*> items;
};
struct LoopBatches {
  int in_flight = 0;
  std::vector<FileSink::Work*> waiting;
};
constexpr int kBatchesInFlight = 2;
constexpr std::size_t kMaxBatch = 256;
thread_local std::unordered_map<uv_loop_t*, LoopBatches> batches;

void pump_batches(uv_loop_t* loop) {
  auto it = batches.find(loop);
  if (it == batches.end()) return;
  LoopBatches& lb = it->second;
  while (lb.in_flight < kBatchesInFlight && !lb.waiting.empty()) {
    auto* b = new Batch;
    b->loop = loop;
    b->req.data = b;
    std::size_t n = std::min(kMaxBatch, lb.waiting.size());
    b->items.assign(lb.waiting.begin(), lb.waiting.begin() + static_cast<std::ptrdiff_t>(n));
    lb.waiting.erase(lb.waiting.begin(), lb.waiting.begin() + static_cast<std::ptrdiff_t>(n));
    ++lb.in_flight;
    uv_queue_work(
        loop, &b->req,
        [](uv_work_t* req) {
          for (auto* w : static_cast<Batch*>(req->data)->items) FileSink::work(w);
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<Batch> done(static_cast<Batch*>(req->data));
          if (auto lb2 = batches.find(done->loop); lb2 != batches.end()) --lb2->second.in_flight;
          for (auto* w : done->items) FileSink::after_work(w);  // may submit more
          pump_batches(done->loop);
        });
  }
  if (lb.in_flight == 0 && lb.waiting.empty()) batches.erase(it);
}

void FileSink::submit(uv_loop_t* loop, Work* w) {
  batches[loop].waiting.push_back(w);
  pump_batches(loop);
}

class MemorySink final : public Sink {
 public:
  MemorySink(std::string* out, std::size_t max) : out_(out), max_(max) {}
  Error open(uv_loop_s*, const Response& head, Events events) override {
    events_ = std::move(events);
    out_->clear();
    if (auto n = head.content_length(); n && *n > max_)
      return Error(Errc::body_too_large, "body of " + std::to_string(*n) +
                                             " bytes is over the limit of " + std::to_string(max_));
    if (auto n = head.content_length()) out_->reserve(static_cast<std::size_t>(*n));
    return {};
  }
  bool write(std::span<const std::byte> data) override {
    if (failed_) return true;
    if (out_->size() + data.size() > max_) {
      failed_ = true;
      events_.failed(Error(Errc::body_too_large,
                           "body is over the limit of " + std::to_string(max_) + " bytes"));
      return true;
    }
    out_->append(reinterpret_cast<const char*>(data.data()), data.size());
    return true;
  }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }
  bool restart(std::function<void()> done) override {
    out_->clear();
    failed_ = false;
    done();
    return true;
  }

 private:
  std::string* out_;
  std::size_t max_;
  Events events_;
  bool failed_ = false;
};

class DiscardSink final : public Sink {
 public:
  Error open(uv_loop_s*, const Response&, Events) override { return {}; }
  bool write(std::span<const std::byte>) override { return true; }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }
  bool restart(std::function<void()> done) override {
    done();
    return true;
  }
};

}  // namespace

std::unique_ptr<Sink> make_file_sink(std::string path, FileSinkOptions options) {
  return std::make_unique<FileSink>(std::move(path), options);
}
std::unique_ptr<Sink> make_memory_sink(std::string* out, std::size_t max_bytes) {
  return std::make_unique<MemorySink>(out, max_bytes);
}
std::unique_ptr<Sink> make_discard_sink() {
  return std::make_unique<DiscardSink>();
}

}  // namespace uvget
