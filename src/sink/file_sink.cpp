// FileSink streams to NAME.part through the libuv threadpool with bounded pending bytes, and
// renames to NAME only after finish(); SegmentSink writes one segment of a split download into
// the same .part. Their file system work runs in jobs, batched per loop.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <uvget/request.hpp>

#include "sink/body_buffers.hpp"
#include "sink/split_file.hpp"
#include "text.hpp"
#include "uv/util.hpp"

namespace uvget {
namespace {

// The next suffix for a name that clashed, process-wide and thread-safe (jobs name files on the
// threadpool). One entry per name that ever clashed; never freed (it lives as long as the
// process and is read at its very end by jobs still running).
std::uint64_t next_suffix(const std::string& base) {
  static std::mutex* mutex = new std::mutex;
  static auto* next = new std::unordered_map<std::string, std::uint64_t>;
  std::lock_guard lock(*mutex);
  return ++(*next)[base];
}

// The sidecar NAME.part.meta: what a later resume needs to ask for the rest safely.
//   uvget-partial 1
//   validator "etag" (or a Last-Modified date)
//   length 1048576
constexpr std::string_view kMetaMagic = "uvget-partial 1";

//   split                      (a segmented download: the .part has its full size)
//   done 0-1048576             (ranges [from, to) complete on disk)
std::string meta_text(const std::string& validator, std::uint64_t total, bool split,
                      const std::vector<ByteRange>& done) {
  std::string t(kMetaMagic);
  t += "\n";
  if (!validator.empty()) t += "validator " + validator + "\n";
  if (total) t += "length " + std::to_string(total) + "\n";
  if (split) t += "split\n";
  for (const ByteRange& r : done)
    t += "done " + std::to_string(r.from) + "-" + std::to_string(r.to) + "\n";
  return t;
}

// Parses a sidecar; false when it is not one of ours.
bool parse_meta(std::string_view text, std::string& validator, std::uint64_t& total, bool& split,
                std::vector<ByteRange>& done) {
  auto line = [&]() {
    auto nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    return l;
  };
  if (line() != kMetaMagic) return false;
  while (!text.empty()) {
    std::string_view l = line();
    if (l.starts_with("validator ")) {
      validator = std::string(l.substr(10));
    } else if (l.starts_with("length ")) {
      auto n = parse_u64(l.substr(7));
      if (!n) return false;
      total = *n;
    } else if (l == "split") {
      split = true;
    } else if (l.starts_with("done ")) {
      auto dash = l.find('-', 5);
      if (dash == std::string_view::npos) return false;
      auto from = parse_u64(l.substr(5, dash - 5)), to = parse_u64(l.substr(dash + 1));
      if (!from || !to) return false;
      add_range(done, {*from, *to});
    }
  }
  // Done ranges past the end, or a split file without a length, cannot be trusted.
  if (split && (total == 0 || (!done.empty() && done.back().to > total))) return false;
  return true;
}

// A sidecar's text, read whole (a long URL or many done ranges make it large); nullopt when
// there is none or it is larger than any we write.
std::optional<std::string> read_sidecar(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() + static_cast<std::size_t>(n) > (1u << 20)) {
      ::close(fd);
      if (n == 0) return text;
      return std::nullopt;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
}

// Who wrote a sidecar: its "url" and "pid" lines (absent in sidecars of other versions).
struct MetaOwner {
  std::string url;
  long pid = 0;
};
MetaOwner parse_meta_owner(std::string_view text) {
  MetaOwner o;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (l.starts_with("url ")) o.url = std::string(l.substr(4));
    if (l.starts_with("pid "))
      if (auto n = parse_u64(l.substr(4)); n && *n < LONG_MAX) o.pid = static_cast<long>(*n);
  }
  return o;
}

// The leftovers find_leftover() knows, by directory and source URL (process-wide: sinks of
// every client and loop share one directory's).
struct Leftovers {
  std::mutex mutex;
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<std::string>>> by_dir;
};
Leftovers& leftovers() {
  static Leftovers all;
  return all;
}

class SegmentSink;

class FileSink final : public Sink, public SplitFile {
 public:
  FileSink(std::string path, FileSinkOptions o)
      : base_(std::move(path)),
        path_(base_),
        part_(path_ + ".part"),
        meta_(part_ + ".meta"),
        opts_(o) {
    if (opts_.resume) opts_.unique_name = false;  // resume continues what is there
  }

  void prepare(uv_loop_s* loop, std::function<void()> done) override {
    if (!opts_.resume) return done();
    loop_ = loop;
    prepare_cb_ = std::move(done);
    run_job(Job::probe);
  }

  std::string location() const override { return path_; }

  Held held() const override {
    if (error_ || aborting_ || direct_) return {};
    std::uint64_t bytes = state_ == State::held ? offset_ : body_.waiting().size();
    if (bytes == 0 && done_.empty()) return {};
    // Bytes of a response that gave neither a validator nor a length cannot be checked against
    // a later one: resumed only when the caller asked to trust the size (a file found on disk).
    if (validator_.empty() && total_ == 0 && !trust_size_) return {};
    return {bytes, validator_, total_};
  }

  // SplitFile
  std::vector<ByteRange> done_ranges() const override { return done_; }
  Error open_split(uv_loop_s* loop, const Response& head, std::uint64_t total, bool continuing,
                   Events events) override {
    loop_ = loop;
    events_ = std::move(events);
    if (continuing) {
      add_range(done_, {0, offset_});  // the held prefix (NAME.part or another program's NAME)
    } else {
      done_.clear();
      validator_ = validator_of(head);
      foreign_ = false;
    }
    if (validator_.empty()) validator_ = validator_of(head);
    total_ = total;
    split_ = true;
    split_continuing_ = continuing;
    trust_size_ = false;
    body_.drop_waiting();
    offset_ = 0;
    run_job(Job::open_split);
    return {};
  }
  std::unique_ptr<Sink> segment(ByteRange r, bool check_range,
                                std::shared_ptr<SegmentCut> cut) override;
  std::unique_ptr<Sink> remote_segment(ByteRange r,
                                       std::shared_ptr<std::atomic<std::uint64_t>> written,
                                       std::shared_ptr<SegmentCut> cut) override;
  void when_open(std::function<void()> cb) override {
    if (split_fd() >= 0) return cb();
    open_waiters_.push_back(std::move(cb));
  }

  // For segments.
  int split_fd() const noexcept { return split_ && state_ == State::open ? fd_ : -1; }
  uv_loop_t* loop() const noexcept { return loop_; }
  const std::string& part() const noexcept { return part_; }
  const FileSinkOptions& options() const noexcept { return opts_; }
  std::uint64_t total() const noexcept { return total_; }
  bool covers_all() const override { return done_.size() == 1 && done_[0] == ByteRange{0, total_}; }
  bool held_on_disk() const override { return state_ != State::buffering || !body_.has_waiting(); }
  void record_range(ByteRange r) override {
    add_range(done_, r);
    meta_dirty_ = true;
    next();
  }
  void add_segment(SegmentSink* s) { segments_.push_back(s); }
  void remove_segment(SegmentSink* s) { std::erase(segments_, s); }

  Error open(uv_loop_s* loop, const Response& head, Events events) override {
    loop_ = loop;
    events_ = std::move(events);
    // The whole body comes: whatever was held goes (a .part on disk is truncated when opened).
    body_.drop_waiting();
    offset_ = 0;
    trust_size_ = foreign_ = split_ = false;
    done_.clear();
    if (state_ == State::held) state_ = State::buffering;
    validator_ = validator_of(head);
    total_ = head.content_length().value_or(0);
    note_mtime(head);
    if (opts_.name_for_head && !opts_.resume && !part_on_disk_ && !busy_ &&
        state_ == State::buffering && !direct_) {
      std::string name = opts_.name_for_head(head);
      if (!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..") {
        std::size_t slash = base_.rfind('/');
        base_ = (slash == std::string::npos ? std::string() : base_.substr(0, slash + 1)) + name;
        path_ = base_;
        part_ = path_ + ".part";
        meta_ = part_ + ".meta";
      }
    }
    return {};
  }

  Error open_continued(uv_loop_s* loop, const Response& head, Events events) override {
    loop_ = loop;
    events_ = std::move(events);
    note_mtime(head);
    if (validator_.empty()) validator_ = validator_of(head);
    if (total_ == 0)
      if (auto n = head.content_length()) total_ = held().bytes + *n;
    // A segmented .part continued as one stream: it is cut back to the held prefix on reopen.
    split_ = false;
    done_.clear();
    return {};  // a held file is reopened with the first byte (or renamed by finish)
  }

  bool write(std::span<const std::byte> data) override {
    if (error_) return true;  // already failed: the transfer is stopping
    if (!body_.joined() && body_.waiting().size() + data.size() > kSmallFile) body_.join_budget();
    body_.add(data);
    if (state_ == State::buffering &&
        body_.waiting().size() >= std::min(kSmallFile, opts_.high_water / 2))
      run_job(Job::open);
    else if (state_ == State::held && !busy_)
      run_job(Job::reopen);
    else if (state_ == State::open && !busy_)
      write_more();
    return !body_.paused();
  }

  void finish(std::function<void(Error)> done) override {
    finish_cb_ = std::move(done);
    if (busy_) return;  // the chain continues into close_rename when it drains
    if (state_ == State::buffering) {
      run_job(Job::whole);
    } else if (state_ == State::held) {
      if (foreign_) {  // the file found under its final name was already complete
        state_ = State::closed;
        auto cb = std::move(finish_cb_);
        return cb({});
      }
      run_job(Job::close_rename);
    } else if (state_ == State::open) {
      next();
    }
  }

  void abort(const Error& why, std::function<void()> done) override {
    if (why.code == Errc::cancelled && opts_.keep_partial_on_cancel) keep_ = true;
    if (keep_ && by_source_ && why.code != Errc::checksum_mismatch)
      remember_leftover(path_, opts_.source);
    // Bytes that hash wrong as a whole cannot be told apart: none of them is worth continuing.
    // Except another program's file that became our .part: it goes back as it was found.
    if (why.code == Errc::checksum_mismatch) {
      mismatch_ = true;  // adopted_ may still come true: a reopen may be in flight
      keep_ = false;
    }
    stop_replay_.store(true, std::memory_order_relaxed);
    aborting_ = true;
    prepare_cb_ = nullptr;
    if (state_ == State::buffering && !busy_ && keep_ && body_.has_waiting() && !part_on_disk_) {
      abort_cb_ = std::move(done);
      restart_cb_ = suspend_cb_ = nullptr;
      run_job(Job::spill);  // the body so far, still in memory, kept as NAME.part
      return;
    }
    if ((state_ == State::buffering || state_ == State::held) && !busy_ &&
        (keep_ || !part_on_disk_)) {
      body_.drop_waiting();  // nothing to close or remove
      done();
      return;
    }
    abort_cb_ = std::move(done);
    restart_cb_ = suspend_cb_ = nullptr;  // abort wins over a restart or suspend in progress
    next();
  }

  bool restart(std::function<void()> done) override {
    // Bytes written into a device or a pipe cannot be taken back.
    if (error_ || aborting_ || finish_cb_ || direct_) return false;
    restart_cb_ = std::move(done);
    if (!busy_) do_restart();
    return true;
  }

  bool replay_held(std::function<void(std::span<const std::byte>)> update,
                   std::function<void(Error)> done) override {
    if (state_ != State::held || busy_ || error_ || aborting_ || offset_ == 0) return false;
    replay_update_ = std::move(update);
    replay_cb_ = std::move(done);
    run_job(Job::replay);
    return true;
  }

  bool suspend(std::function<void()> done) override {
    if (error_ || aborting_ || finish_cb_ || direct_) return false;
    suspend_cb_ = std::move(done);
    next();
    return true;
  }

 private:
  // buffering: nothing of this body on disk yet (body_ holds it from byte 0);
  // opening: a job opens the .part; open: fd_ valid; held: fd_ closed, the first offset_ bytes
  // are in the .part (or, when foreign_, in NAME itself); closed: finished or given up.
  enum class State { buffering, opening, open, held, closed };
  enum class Job {
    probe,
    open,
    reopen,
    whole,
    close_rename,
    discard,
    close_only,
    open_split,
    meta,
    replay,
    spill
  };

 public:
  struct Work {
    FileSink* self;
    Job job;
    int err = 0;            // errno of the step that failed
    const char* step = "";  // which step failed
    int fd = -1;            // opened by Job::open, Job::reopen or Job::open_split
    bool keep = false;      // keep_ when submitted (abort() may change it meanwhile)
    bool restore = false;   // give an adopted NAME back (a checksum mismatch)
    bool direct = false;    // settle_target(): NAME is a device, FIFO or socket: written into
    const char* why = "";   // settle_target()'s refusal, for the message
    bool spilled = false;   // Job::spill wrote NAME.part
    // Job::probe's findings
    bool by_source = false;  // name_for_head with resume: a leftover of `source` is looked for
    std::string leftover{};  // by_source: the NAME of the .part found ("" when none)
    std::uint64_t size = 0;
    bool found_part = false, found_final = false, found_meta = false;
    std::string validator{};
    std::uint64_t total = 0;
    bool split = false;
    std::vector<ByteRange> done{};
  };

 private:
  static void submit(uv_loop_t* loop, Work* w);
  static void submit_alone(uv_loop_t* loop, Work* w);
  struct Fs {
    uv_fs_t req{};
    FileSink* self;
  };

  static constexpr int kOpenFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;

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

  std::size_t room() const override { return body_.room(); }

  // Drops every byte so far; the file (if opened) is closed, and truncated by the next open.
  void do_restart() {
    body_.clear();
    offset_ = 0;
    trust_size_ = false;
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
      // A .part kept for a later run gets the bytes that came before the end (they arrived
      // while it was being opened, or were waiting for a write), then is closed.
      if (keep_ && !error_ && !mismatch_ && state_ == State::open && body_.has_waiting())
        return write_more();
      run_job(Job::discard);
    } else if (restart_cb_) {
      do_restart();
    } else if (error_) {
      // waiting for abort()
    } else if (state_ == State::open && body_.has_waiting()) {
      write_more();
    } else if (suspend_cb_) {
      if (state_ == State::open) {
        run_job(Job::close_only);  // flushed: close, and hold what is on disk
      } else {
        auto cb = std::move(suspend_cb_);  // buffering: held in memory; held: already
        suspend_cb_ = nullptr;
        cb();
      }
    } else if (meta_dirty_ && split_ && state_ == State::open) {
      run_job(Job::meta);
    } else if (finish_cb_ && state_ == State::open) {
      run_job(Job::close_rename);
    }
  }

  void kick_segments();

  void note_mtime(const Response& head) {
    if (!opts_.remote_time) return;
    if (auto lm = head.header("Last-Modified"))
      if (auto t = parse_http_date(*lm)) mtime_ = *t;
  }

  // The final file gets the server's Last-Modified (-R); best effort, like the sidecar.
  static void set_mtime(FileSink* s) {
    if (s->mtime_ == 0 || s->direct_) return;
    timespec times[2] = {{0, UTIME_OMIT}, {s->mtime_, 0}};
    ::utimensat(AT_FDCWD, s->path_.c_str(), times, AT_SYMLINK_NOFOLLOW);
  }

  // The file the bytes go to now, for messages.
  const std::string& written_to() const { return direct_ ? path_ : part_; }

  void write_more() {
    body_.begin_write();
    issue_write();
  }

  void issue_write() {
    busy_ = true;
    auto* f = new Fs{.self = this};
    f->req.data = f;
    uv_buf_t b = uv_buf_init(body_.unwritten_data(), static_cast<unsigned>(body_.unwritten_size()));
    // A pipe or a terminal has no offsets: written where it stands.
    auto at = direct_ ? int64_t{-1} : static_cast<int64_t>(offset_);
    if (int rc = uv_fs_write(loop_, &f->req, fd_, &b, 1, at, &on_write); rc < 0) {
      delete f;
      busy_ = false;
      fail("cannot write '" + written_to() + "': " + uv_words(rc));
    }
  }

  static void on_write(uv_fs_t* req) {
    auto [self, result] = complete(req);
    if (result < 0) {
      self->fail("cannot write '" + self->written_to() +
                 "': " + uv_words(static_cast<int>(result)));
      self->next();
      return;
    }
    self->offset_ += static_cast<std::uint64_t>(result);
    if (!self->body_.wrote(static_cast<std::size_t>(result)) && !self->aborting_) {
      self->issue_write();  // short write
      return;
    }
    if (self->body_.end_write() && self->events_.drained)
      self->events_.drained();  // may write more into the buffer
    if (!self->busy_) self->next();
  }

  void run_job(Job job) {
    busy_ = true;
    if (job == Job::whole || job == Job::open || job == Job::reopen || job == Job::open_split)
      state_ = State::opening;
    auto* w = new Work{.self = this, .job = job, .keep = keep_, .restore = mismatch_ && adopted_};
    if (job == Job::probe)
      w->by_source = by_source_ = opts_.name_for_head && opts_.resume && !opts_.source.empty() &&
                                  opts_.source.find('\n') == std::string::npos;
    if (job == Job::open || job == Job::reopen || job == Job::open_split || job == Job::meta ||
        job == Job::spill || (job == Job::discard && split_)) {
      meta_text_ = meta_text(validator_, total_, split_, done_) + owner_lines();
      meta_dirty_ = false;
    }
    // Reading back a large held file takes long: not in a batch, where other files' jobs
    // would wait behind it.
    if (job == Job::replay) return submit_alone(loop_, w);
    submit(loop_, w);
  }

  // The sidecar, replaced whole (a crash never leaves half of one). Best effort: without it a
  // later resume goes by size alone.
  static void write_meta(FileSink* s) {
    std::string tmp = s->meta_ + ".tmp";
    int fd = ::open(tmp.c_str(), kOpenFlags, s->opts_.mode);
    if (fd < 0) return;
    bool ok = write_all(fd, s->meta_text_.data(), s->meta_text_.size());
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), s->meta_.c_str()) < 0) ::unlink(tmp.c_str());
  }

  // The sidecar's owner lines: the URL and this process, so that a later run knows a
  // leftover .part as its own (see take_over).
  std::string owner_lines() const {
    std::string t;
    if (!opts_.source.empty() && opts_.source.find('\n') == std::string::npos)
      t += "url " + opts_.source + "\n";
    t += "pid " + std::to_string(::getpid()) + "\n";
    return t;
  }

  // For name_for_head with resume (on the threadpool): the NAME of an earlier run's NAME.part
  // of `source` in the directory of `base`, "" when there is none; a NAME is handed out once.
  // Its sidecar names `source` and a process that is gone (or this one), and nobody holds the
  // .part locked; of several, the first by name. Each directory is read once per process (a
  // list of N files into one directory reads it once, not N times); a .part this process keeps
  // later is added by remember_leftover().
  static std::string find_leftover(const std::string& base, const std::string& source) {
    std::size_t slash = base.rfind('/');
    std::string prefix = slash == std::string::npos ? std::string() : base.substr(0, slash + 1);
    Leftovers& all = leftovers();
    std::lock_guard<std::mutex> lock(all.mutex);
    auto [dir, fresh] = all.by_dir.try_emplace(prefix);
    if (fresh) scan_leftovers(prefix, dir->second);
    auto names = dir->second.find(source);
    if (names == dir->second.end()) return {};
    for (auto it = names->second.begin(); it != names->second.end();) {
      std::string path = prefix + *it;
      it = names->second.erase(it);  // tried once: taken, or not worth trying again
      auto text = read_sidecar(path + ".part.meta");
      if (!text || !text->starts_with(kMetaMagic) || parse_meta_owner(*text).url != source)
        continue;
      int fd = ::open((path + ".part").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) continue;
      struct stat st;
      bool free =
          ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
      ::close(fd);  // and with it the lock
      if (free) return path;
    }
    return {};
  }

  // Every sidecar in the directory `prefix` names: source URL -> NAMEs (sorted), of processes
  // that are gone (or this one).
  static void scan_leftovers(const std::string& prefix,
                             std::unordered_map<std::string, std::vector<std::string>>& out) {
    constexpr std::string_view kSuffix = ".part.meta";
    DIR* dir = ::opendir(prefix.empty() ? "." : prefix.c_str());
    if (!dir) return;
    while (dirent* e = ::readdir(dir)) {
      std::string_view n = e->d_name;
      if (n.size() <= kSuffix.size() || !n.ends_with(kSuffix)) continue;
      std::string name(n.substr(0, n.size() - kSuffix.size()));
      auto text = read_sidecar(prefix + name + ".part.meta");
      if (!text || !text->starts_with(kMetaMagic)) continue;
      MetaOwner o = parse_meta_owner(*text);
      bool gone = o.pid <= 0 || o.pid == ::getpid() ||
                  (::kill(static_cast<pid_t>(o.pid), 0) < 0 && errno == ESRCH);
      if (!o.url.empty() && gone) out[o.url].push_back(std::move(name));
    }
    ::closedir(dir);
    for (auto& [url, names] : out) std::sort(names.begin(), names.end());
  }

  // A .part this process keeps for a later resume by source (name_for_head with resume), for
  // find_leftover() in a directory it has read already.
  static void remember_leftover(const std::string& path, const std::string& source) {
    std::size_t slash = path.rfind('/');
    std::string prefix = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
    Leftovers& all = leftovers();
    std::lock_guard<std::mutex> lock(all.mutex);
    auto dir = all.by_dir.find(prefix);
    if (dir == all.by_dir.end()) return;  // read when first asked
    auto& names = dir->second[source];
    std::string name = path.substr(prefix.size());
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(std::move(name));
      std::sort(names.begin(), names.end());
    }
  }

  // With unique_name, an existing NAME.part is an earlier run's of this same URL when its
  // sidecar names the URL and a process that is gone: then it is opened (not yet truncated)
  // and locked, and its fd returned; else -1 and it is left alone. The lock (held while the
  // .part is open) settles two runs that find one leftover at once; the sidecar is read again
  // under it, since the winner rewrites it with its own process id.
  static int take_over(FileSink* s) {
    if (s->opts_.source.empty()) return -1;
    auto stale = [s] {
      auto text = read_sidecar(s->meta_);
      if (!text || !text->starts_with(kMetaMagic)) return false;
      MetaOwner o = parse_meta_owner(*text);
      if (o.url != s->opts_.source || o.pid <= 0 || o.pid == ::getpid()) return false;
      return ::kill(static_cast<pid_t>(o.pid), 0) < 0 && errno == ESRCH;
    };
    if (!stale()) return -1;
    int fd = ::open(s->part_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    struct stat st;
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ::flock(fd, LOCK_EX | LOCK_NB) < 0 ||
        !stale()) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Opens the .part of a new body. With unique_name a NAME.part that is not this sink's own
  // (another download's, or another program's) is never truncated: the next free NAME.N.part
  // is created instead, and the body's name becomes NAME.N. An earlier run's leftover of this
  // URL is taken over (take_over). The .part stays locked while it is open.
  static int open_part(FileSink* s, int flags) {
    if (!s->opts_.unique_name || s->part_on_disk_) {
      int fd = ::open(s->part_.c_str(), flags, s->opts_.mode);
      if (fd >= 0) ::flock(fd, LOCK_EX | LOCK_NB);  // best effort: it is ours by name
      return fd;
    }
    for (;;) {
      int fd = ::open(s->part_.c_str(), (flags & ~O_TRUNC) | O_EXCL, s->opts_.mode);
      if (fd >= 0) {
        ::flock(fd, LOCK_EX | LOCK_NB);  // just created: nobody else holds it
        return fd;
      }
      if (errno != EEXIST) return fd;
      if (int own = take_over(s); own >= 0) {
        if ((flags & O_TRUNC) && ::ftruncate(own, 0) < 0) {
          int e = errno;
          ::close(own);
          errno = e;
          return -1;
        }
        ::unlink(s->meta_.c_str());  // the earlier run's; an open writes its own
        return own;
      }
      if (!next_name(s)) return -1;
      s->part_ = s->path_ + ".part";
      s->meta_ = s->part_ + ".meta";
    }
  }

  // NAME.N for the next N this process has not handed out for NAME: sinks that all want one
  // name try NAME.1, NAME.2, ... once between them instead of each probing from 1, so naming
  // costs O(1) per file however many clash (it was quadratic: 20,000 URLs ending in one name ran
  // at 36 files/s). Names taken on disk are passed over as they are met. No upper bound.
  static bool next_name(FileSink* s) {
    s->suffix_ = next_suffix(s->base_);
    s->path_ = s->base_ + "." + std::to_string(s->suffix_);
    return true;
  }

  // Gives the .part its final name. With unique_name an existing file is never replaced: the
  // next free NAME.N is taken, passing over names whose NAME.N.part another download holds. Where
  // the file system has no RENAME_NOREPLACE, a hard link (which cannot replace either) and an
  // unlink do the same; where it has no hard links, a look before the rename is the best there is.
  static bool place(FileSink* s, Work* w) {
    if (!s->opts_.unique_name && !s->noreplace_) {
      // Replacing is for regular files only: never a device, a FIFO, a socket, a directory or
      // a symbolic link that took NAME since the body started (settle_target() saw none).
      struct stat st;
      if (::lstat(s->path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        w->why = S_ISLNK(st.st_mode) ? "it became a symbolic link" : "it is not a regular file";
        errno = EEXIST;
        return false;
      }
      return ::rename(s->part_.c_str(), s->path_.c_str()) == 0;
    }
    for (;;) {
      const char *from = s->part_.c_str(), *to = s->path_.c_str();
      if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return true;
      if (errno == EINVAL || errno == ENOSYS) {
        if (::link(from, to) == 0) {
          ::unlink(from);
          return true;
        }
        if (errno == EPERM || errno == EOPNOTSUPP) {
          struct stat st;
          if (::lstat(to, &st) < 0 && errno == ENOENT) return ::rename(from, to) == 0;
          errno = EEXIST;
        }
      }
      if (errno != EEXIST) return false;
      // The next NAME.N that is free and not being written by someone else (NAME.N.part).
      struct stat st;
      do {
        if (!next_name(s)) return false;
      } while (::lstat((s->path_ + ".part").c_str(), &st) == 0);
    }
  }

  // Replace mode, before the first open: what is at NAME decides how the body gets there. A
  // regular file or nothing: NAME.part, renamed over it at the end. A device, FIFO or socket:
  // written straight into (w->direct; no .part, no rename, no reservation), as the user named
  // it. A symbolic link: followed only with write_through_symlink (to wherever it points, which
  // then decides the same way), else refused. False (errno, w->why) when NAME cannot be used.
  static bool settle_target(FileSink* s, Work* w) {
    if (s->opts_.unique_name || s->part_on_disk_) return true;
    struct stat st;
    for (int hops = 0;; ++hops) {
      if (::lstat(s->path_.c_str(), &st) < 0) return errno == ENOENT || errno == ENOTDIR;
      if (!S_ISLNK(st.st_mode)) break;
      if (!s->opts_.write_through_symlink || hops == 40) {
        w->why = hops == 40 ? "too many symbolic links" : "it is a symbolic link (not followed)";
        errno = ELOOP;
        return false;
      }
      std::string to(PATH_MAX, '\0');
      ssize_t n = ::readlink(s->path_.c_str(), to.data(), to.size());
      if (n <= 0 || static_cast<std::size_t>(n) >= to.size()) return false;
      to.resize(static_cast<std::size_t>(n));
      auto slash = s->path_.rfind('/');
      if (to[0] != '/' && slash != std::string::npos) to = s->path_.substr(0, slash + 1) + to;
      s->path_ = std::move(to);
      s->part_ = s->path_ + ".part";
      s->meta_ = s->part_ + ".meta";
    }
    if (S_ISREG(st.st_mode)) return true;
    if (S_ISDIR(st.st_mode)) {
      w->why = "it is a directory";
      errno = EISDIR;
      return false;
    }
    w->direct = true;
    return true;
  }

  // Opens NAME itself (settle_target() found a device, FIFO or socket). A FIFO that nobody
  // reads fails at once (ENXIO) instead of holding a threadpool thread until a reader comes.
  static int open_direct(FileSink* s, Work* w) {
    int fd = ::open(s->path_.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENXIO) w->why = "nothing reads from it (a FIFO needs a reader first)";
    if (fd < 0) return fd;
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    return fd;
  }

  static bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      ssize_t k = ::write(fd, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return false;
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }

 public:
  // Runs on a threadpool thread: touches only the job's own fields, the sink's immutable paths
  // and the buffers and fields no loop-side code touches while busy_.
  static void work(Work* w) {
    FileSink* s = w->self;
    auto failed = [&](const char* step) {
      w->err = errno;
      w->step = step;
      // Nothing to remove when the .part could not be opened, or NAME not renamed to it.
      bool nothing = std::strcmp(step, "open") == 0 || w->job == Job::reopen ||
                     w->job == Job::replay || w->direct || s->direct_;
      if (!w->keep && !nothing) {
        ::unlink(s->part_.c_str());
        ::unlink(s->meta_.c_str());
      }
    };
    auto close_failed = [&](int fd, const char* step) {  // errno is the step's
      int e = errno;
      ::close(fd);
      errno = e;
      failed(step);
    };
    switch (w->job) {
      case Job::probe: {
        std::string part = s->part_, meta = s->meta_;
        if (w->by_source) {
          // The name comes from the response: what an earlier run of this URL left is found
          // by its sidecar, whatever name its first response chose; without one, nothing on
          // disk is continued.
          w->leftover = find_leftover(s->base_, s->opts_.source);
          if (w->leftover.empty()) return;
          part = w->leftover + ".part";
          meta = part + ".meta";
        }
        struct stat st;
        if (::lstat(part.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          w->found_part = true;
          w->size = static_cast<std::uint64_t>(st.st_size);
          if (auto text = read_sidecar(meta)) {
            w->found_meta = parse_meta(*text, w->validator, w->total, w->split, w->done);
            if (!w->found_meta) w->split = false, w->done.clear();
          }
        } else if (!w->by_source && ::lstat(s->path_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          w->found_final = true;
          w->size = static_cast<std::uint64_t>(st.st_size);
        }
        return;
      }
      case Job::open:
      case Job::reopen: {
        if (w->job == Job::open && !settle_target(s, w)) return failed("open");
        if (w->direct) {
          w->fd = open_direct(s, w);
          if (w->fd < 0) return failed("open");
          return;
        }
        if (w->job == Job::reopen && s->foreign_ &&
            ::rename(s->path_.c_str(), s->part_.c_str()) < 0)
          return failed("rename");
        int fd = w->job == Job::open ? open_part(s, kOpenFlags)
                                     : ::open(s->part_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return failed("open");
        if (w->job == Job::reopen && ::ftruncate(fd, static_cast<off_t>(s->offset_)) < 0)
          return close_failed(fd, "truncate");
        // A known length is reserved now, without changing the file's size (so a resume by
        // size stays right): a full disk shows at once, and the writes find their pages ready.
        if (s->total_ > s->offset_ &&
            ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(s->offset_),
                        static_cast<off_t>(s->total_ - s->offset_)) < 0 &&
            errno == ENOSPC)
          return close_failed(fd, "allocate");
        w->fd = fd;
        write_meta(s);
        return;
      }
      case Job::open_split: {
        if (!settle_target(s, w)) return failed("open");
        if (w->direct) {  // segments write at their offsets: a file's, not a pipe's
          w->why = "segments need a regular file (no --split into it)";
          errno = EINVAL;
          return failed("open");
        }
        if (s->foreign_ && ::rename(s->path_.c_str(), s->part_.c_str()) < 0)
          return failed("rename");
        int flags =
            O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (s->split_continuing_ ? 0 : O_TRUNC);
        int fd = s->split_continuing_ ? ::open(s->part_.c_str(), flags, s->opts_.mode)
                                      : open_part(s, flags);
        if (fd < 0) return failed("open");
        // The whole size now: a full disk shows before any segment starts (fallocate), and
        // every segment writes inside the file. Where fallocate is not supported, a sparse file.
        auto size = static_cast<off_t>(s->total_);
        if (::fallocate(fd, 0, 0, size) < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
          return close_failed(fd, "allocate");
        if (::ftruncate(fd, size) < 0) return close_failed(fd, "truncate");
        w->fd = fd;
        write_meta(s);
        return;
      }
      case Job::meta:
        write_meta(s);
        return;
      case Job::spill: {
        // Cancelled while the body was still all in memory: it becomes NAME.part with its
        // sidecar, as if it had been written as it came, so that -c can continue it. Best
        // effort: a failure here loses only what a cancel would have lost anyway.
        if (!settle_target(s, w) || w->direct) return;
        int fd = open_part(s, kOpenFlags);
        if (fd < 0) return;
        bool ok = write_all(fd, s->body_.waiting().data(), s->body_.waiting().size());
        ::close(fd);
        if (!ok) {
          ::unlink(s->part_.c_str());
          return;
        }
        w->spilled = true;
        write_meta(s);
        return;
      }
      case Job::replay: {
        // The held prefix, read back in order: from NAME.part, or from NAME when another
        // program's partial file is the one being continued.
        const std::string& from = s->foreign_ ? s->path_ : s->part_;
        int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return failed("read");
        std::vector<std::byte> buf(256 * 1024);
        for (std::uint64_t left = s->offset_; left > 0;) {
          if (s->stop_replay_.load(std::memory_order_relaxed)) break;  // aborted: stop early
          ssize_t n = ::read(fd, buf.data(), std::min<std::uint64_t>(left, buf.size()));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            if (n == 0) errno = EIO;  // shorter than it was when found
            return close_failed(fd, "read");
          }
          s->replay_update_(std::span(buf.data(), static_cast<std::size_t>(n)));
          left -= static_cast<std::uint64_t>(n);
        }
        ::close(fd);
        return;
      }
      case Job::whole: {
        if (!settle_target(s, w)) return failed("open");
        int fd = w->direct ? open_direct(s, w) : open_part(s, kOpenFlags);
        if (fd < 0) return failed("open");
        if (!write_all(fd, s->body_.waiting().data(), s->body_.waiting().size()))
          return close_failed(fd, "write");
        if (::close(fd) < 0) return failed("close");
        if (w->direct) return;
        if (!place(s, w)) return failed("rename");
        if (s->meta_on_disk_) ::unlink(s->meta_.c_str());
        set_mtime(s);
        return;
      }
      case Job::close_rename:
        if (s->fd_ >= 0 && ::close(s->fd_) < 0) return failed("close");
        if (s->direct_) return;
        if (!place(s, w)) return failed("rename");
        ::unlink(s->meta_.c_str());
        set_mtime(s);
        return;
      case Job::close_only:
        ::close(s->fd_);
        return;
      case Job::discard:
        if (s->fd_ >= 0) ::close(s->fd_);
        if (s->direct_) return;  // nothing of ours to remove
        if (w->restore && s->part_on_disk_) {
          // Another program's NAME, continued and then failed its checksum: cut back to what it
          // held and give it its name again (left as NAME.part if NAME was taken meanwhile).
          if (::truncate(s->part_.c_str(), static_cast<off_t>(s->adopted_size_)) == 0 &&
              ::renameat2(AT_FDCWD, s->part_.c_str(), AT_FDCWD, s->path_.c_str(),
                          RENAME_NOREPLACE) == 0)
            ::unlink(s->meta_.c_str());
          return;
        }
        if (w->keep && s->split_ && s->part_on_disk_) write_meta(s);  // the ranges done so far
        if (!w->keep && s->part_on_disk_) {
          ::unlink(s->part_.c_str());
          ::unlink(s->meta_.c_str());
        }
        return;
    }
  }

  static void after_work(Work* w) {
    std::unique_ptr<Work> owned(w);
    FileSink* self = w->self;
    Error err;
    if (w->err) {
      // Reopening or splitting another program's NAME renames it to NAME.part; else the
      // other way round.
      bool to_part = w->job == Job::reopen || w->job == Job::open_split;
      std::string target = std::strcmp(w->step, "rename") == 0
                               ? "rename '" + (to_part ? self->path_ : self->part_) + "' to '" +
                                     (to_part ? self->part_ : self->path_) + "'"
                               : std::string(w->step) + " '" +
                                     (w->direct || *w->why ? self->path_ : self->part_) + "'";
      err = Error(Errc::file_io,
                  "cannot " + target + ": " +
                      (*w->why ? std::string(w->why) : uv_words(uv_translate_sys_error(w->err))));
    }
    self->busy_ = false;
    switch (w->job) {
      case Job::probe: {
        if (w->by_source) {
          if (w->leftover.empty()) {
            // Nothing to continue: a fresh body, named from the head and never replacing a file
            // (as unique_name); its .part stays for a later run when this one fails.
            self->opts_.resume = false;
            self->opts_.unique_name = true;
          } else {
            self->base_ = self->path_ = std::move(w->leftover);
            self->part_ = self->path_ + ".part";
            self->meta_ = self->part_ + ".meta";
            self->noreplace_ = true;  // a name from a header: a file there now is kept
          }
        }
        if (w->found_part) {
          self->part_on_disk_ = true;
          self->meta_on_disk_ = w->found_meta;
          self->validator_ = std::move(w->validator);
          self->total_ = w->total;
          self->trust_size_ = !w->found_meta;  // no sidecar: by size, like a foreign file
        } else if (w->found_final) {
          self->foreign_ = self->trust_size_ = true;
        }
        if (w->split) {
          // A segmented .part has its full size: what counts is the ranges its sidecar lists.
          self->split_ = true;
          self->done_ = std::move(w->done);
          w->size = !self->done_.empty() && self->done_[0].from == 0 ? self->done_[0].to : 0;
          if (!self->done_.empty()) self->state_ = State::held;
        }
        if ((w->found_part || w->found_final) && w->size > 0) {
          self->offset_ = w->size;
          self->state_ = State::held;
        }
        if (self->aborting_) return self->next();
        auto cb = std::move(self->prepare_cb_);
        self->prepare_cb_ = nullptr;
        if (cb) cb();
        return;
      }
      case Job::meta:
        return self->next();
      case Job::replay: {
        self->replay_update_ = nullptr;
        auto cb = std::move(self->replay_cb_);
        self->replay_cb_ = nullptr;
        if (self->aborting_) return self->next();  // abort() came instead
        return cb(std::move(err));
      }
      case Job::open:
      case Job::reopen:
      case Job::open_split:
        if (err) {
          self->state_ = State::closed;
          self->fail(err.detail);
          return self->next();
        }
        if (w->job == Job::reopen && self->foreign_) {  // NAME is NAME.part now
          self->foreign_ = false;
          self->adopted_ = true;
          self->adopted_size_ = self->offset_;
        }
        self->fd_ = w->fd;
        self->direct_ = w->direct;
        self->part_on_disk_ = self->meta_on_disk_ = !w->direct;
        self->state_ = State::open;
        if (w->job == Job::open_split) {
          self->foreign_ = false;
          self->kick_segments();
          auto waiters = std::move(self->open_waiters_);
          self->open_waiters_.clear();
          for (auto& cb : waiters) cb();
        }
        return self->next();
      case Job::close_only:
        self->fd_ = -1;
        if (self->aborting_) return self->next();
        if (self->restart_cb_) {  // the end of a restart
          self->state_ = State::buffering;
          auto cb = std::move(self->restart_cb_);
          self->restart_cb_ = nullptr;
          return cb();  // the owner may delete us here
        }
        self->state_ = State::held;  // the end of a suspend
        if (self->suspend_cb_) {
          auto cb = std::move(self->suspend_cb_);
          self->suspend_cb_ = nullptr;
          return cb();  // the owner may delete us here
        }
        return;
      case Job::spill:
        self->part_on_disk_ = w->spilled;
        self->body_.drop_waiting();
        [[fallthrough]];
      case Job::discard: {
        self->fd_ = -1;
        self->state_ = State::closed;
        auto cb = std::move(self->abort_cb_);
        if (cb) cb();  // the owner may delete us here
        return;
      }
      case Job::whole:
      case Job::close_rename: {
        self->fd_ = -1;
        self->state_ = State::closed;
        auto cb = std::move(self->finish_cb_);
        cb(std::move(err));  // the owner may delete us here
        return;
      }
    }
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

  // NAME as asked, and the names in use: NAME.N with unique_name when NAME was taken. Changed
  // only by jobs (open_part, place), which own them while busy_.
  std::string base_;        // NAME as asked (or as the response named it: name_for_head)
  bool by_source_ = false;  // name_for_head with resume: leftovers are found by their source
  bool noreplace_ = false;  // the final rename never replaces a file (a leftover by source)
  std::string path_, part_, meta_;
  std::uint64_t suffix_ = 0;
  FileSinkOptions opts_;
  bool keep_ = opts_.keep_partial || opts_.resume;  // leave NAME.part behind when failing
  uv_loop_t* loop_ = nullptr;
  Events events_;
  State state_ = State::buffering;
  uv_file fd_ = -1;    // valid in State::open
  bool busy_ = false;  // one fs request or job in flight; at most one at a time
  bool aborting_ = false;
  // The body on its way to disk; a small one is all in it until one job writes it whole.
  // Counted on the thread that writes; a sink destroyed on another one (an embedder's choice)
  // leaves that count one high rather than touch another thread's pool.
  StreamBuffer body_{opts_.high_water, opts_.low_water};
  std::uint64_t offset_ = 0;  // file offset where the write in flight's unwritten bytes go
  Error error_;
  std::function<void(Error)> finish_cb_;
  std::function<void()> abort_cb_;
  std::function<void()> restart_cb_;                               // restart() in progress
  std::function<void()> suspend_cb_;                               // suspend() in progress
  std::function<void()> prepare_cb_;                               // prepare() in progress
  std::function<void(std::span<const std::byte>)> replay_update_;  // Job::replay, threadpool
  std::function<void(Error)> replay_cb_;                           // replay_held() in progress
  bool part_on_disk_ = false;       // NAME.part was created (by this or an earlier attempt)
  bool meta_on_disk_ = false;       // so was NAME.part.meta
  std::string validator_;           // of the response the held bytes came from
  std::uint64_t total_ = 0;         // its full length; 0: unknown
  std::string meta_text_;           // the sidecar Job::open writes
  bool trust_size_ = false;         // held bytes found without a sidecar: resume by size
  bool foreign_ = false;            // the held bytes are in NAME itself (another program's)
  bool adopted_ = false;            // ... and NAME became our .part (Job::reopen)
  std::uint64_t adopted_size_ = 0;  // NAME's size then
  bool mismatch_ = false;           // aborted for a checksum mismatch
  bool direct_ = false;    // NAME is a device, FIFO or socket, written into (settle_target)
  std::time_t mtime_ = 0;  // remote_time: the response's Last-Modified
  std::atomic<bool> stop_replay_{false};  // abort() during Job::replay: stop reading
  bool split_ = false;                    // a segmented download: full-size .part, done_ ranges
  bool split_continuing_ = false;         // Job::open_split keeps what the .part holds
  bool meta_dirty_ = false;               // done_ changed since the sidecar was last written
  std::vector<ByteRange> done_;           // split_: ranges complete on disk
  std::vector<SegmentSink*> segments_;    // live segment sinks, kicked when the file opens
  std::vector<std::function<void()>> open_waiters_;  // when_open() before the file was open
};

// One segment of a split download: its bytes go to their offsets in the .part through
// uv_fs_write, with the same backpressure as the file sink. A local segment (on the file sink's
// loop) shares the sink's fd, waits until the file is open and records what it wrote with the
// sink when it finishes or is aborted. A remote one (another loop's client, with --loops) opens
// the .part itself, which exists by then, closes it before it reports, and leaves what it wrote
// in `written_out` for the transfer that owns the file to record.
class SegmentSink final : public Sink {
 public:
  SegmentSink(FileSink* file, ByteRange r, bool check, std::shared_ptr<SegmentCut> cut)
      : file_(file),
        r_(r),
        check_(check),
        // No copy of the name: with unique_name a job may still be choosing it (file_->part()
        // is asked once the file is open).
        total_(file->total()),
        opts_(file->options()),
        cut_(std::move(cut)) {
    file_->add_segment(this);
  }
  SegmentSink(std::string part, ByteRange r, std::uint64_t total, const FileSinkOptions& opts,
              std::shared_ptr<std::atomic<std::uint64_t>> written_out,
              std::shared_ptr<SegmentCut> cut)
      : r_(r),
        check_(true),
        part_(std::move(part)),
        total_(total),
        opts_(opts),
        written_out_(std::move(written_out)),
        cut_(std::move(cut)) {}
  ~SegmentSink() override {
    if (file_) file_->remove_segment(this);
  }

  Error open(uv_loop_s* loop, const Response& head, Events events) override {
    events_ = std::move(events);
    if (!file_ && !loop_) {  // remote: the file is ours to open, once
      loop_ = loop;
      busy_ = true;
      req_.data = this;
      if (int rc = uv_fs_open(loop_, &req_, part_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0,
                              &on_open);
          rc < 0) {
        busy_ = false;
        return Error(Errc::file_io, "cannot open '" + part_ + "': " + uv_words(rc));
      }
    }
    if (!check_) return {};
    std::string want = "bytes " + std::to_string(r_.from) + "-" + std::to_string(r_.to - 1) + "/" +
                       std::to_string(total_);
    auto got = head.header("Content-Range");
    if (head.status == 206 && got && *got == want) return {};
    return Error(Errc::http_status,
                 "asked for bytes " + std::to_string(r_.from) + "-" + std::to_string(r_.to - 1) +
                     ", got HTTP " + std::to_string(head.status) +
                     (got ? " with Content-Range " + std::string(*got) : "") +
                     " (the file changed on the server, or it stopped serving ranges)");
  }

  bool write(std::span<const std::byte> data) override {
    if (failed_) return true;
    if (cut_reached_) return false;  // the rest is another connection's: stop reading
    if (cut_) {
      std::lock_guard<std::mutex> lock(cut_->mutex);
      std::uint64_t at = r_.from + cut_->accepted;
      std::uint64_t room = cut_->end > at ? cut_->end - at : 0;
      if (cut_->end < r_.to && data.size() >= room) {
        data = data.first(static_cast<std::size_t>(room));
        cut_reached_ = true;  // told once these bytes are on disk (on_write)
        cut_at_ = cut_->end;
      }
      cut_->accepted += data.size();
    }
    body_.join_budget();  // a segment always streams: it shares the thread's budget
    body_.add(data);
    next();
    return !cut_reached_ && !body_.paused();
  }
  std::size_t room() const override { return body_.room(); }

  void finish(std::function<void(Error)> done) override {
    finish_cb_ = std::move(done);
    next();
  }

  void abort(const Error&, std::function<void()> done) override {
    aborting_ = true;
    body_.drop_waiting();
    abort_cb_ = std::move(done);
    restart_cb_ = nullptr;
    next();
  }

  bool restart(std::function<void()> done) override {
    if (aborting_ || finish_cb_) return false;
    restart_cb_ = std::move(done);
    next();
    return true;
  }

  void next() {
    if (busy_) return;
    if ((aborting_ || (finish_cb_ && !body_.has_waiting())) && own_fd_ >= 0)
      return close_own();  // then here again
    if (aborting_) {
      record();
      auto cb = std::move(abort_cb_);
      abort_cb_ = nullptr;
      if (cb) cb();  // the owner may delete us here
      return;
    }
    if (restart_cb_) {  // bytes at the same offsets are simply written again
      body_.clear();
      written_ = recorded_ = 0;
      failed_ = false;
      if (cut_) {
        std::lock_guard<std::mutex> lock(cut_->mutex);
        cut_->accepted = 0;
      }
      cut_reached_ = cut_told_ = false;
      auto cb = std::move(restart_cb_);
      restart_cb_ = nullptr;
      cb();
      return;
    }
    if (failed_) return;
    int fd = this->fd();
    if (fd < 0 && !(finish_cb_ && !body_.has_waiting() && !file_)) return;  // kicked once open
    if (body_.has_waiting()) {
      body_.begin_write();
      return issue_write(fd);
    }
    if (finish_cb_) {
      Error e;
      std::uint64_t want = cut_reached_ ? cut_at_ - r_.from : r_.size();
      if (check_ && written_ != want)  // a segment request's body came short
        e = Error(Errc::size_mismatch, "segment " + std::to_string(r_.from) + "-" +
                                           std::to_string(r_.to - 1) + " got " +
                                           std::to_string(written_) + " bytes");
      record();
      auto cb = std::move(finish_cb_);
      finish_cb_ = nullptr;
      cb(std::move(e));  // the owner may delete us here
    }
  }

 private:
  int fd() const { return file_ ? file_->split_fd() : own_fd_; }
  uv_loop_t* loop() const { return file_ ? file_->loop() : loop_; }

  void record() {
    if (file_) {
      if (written_ > 0) file_->record_range({r_.from, r_.from + written_});
    } else {
      written_out_->store(written_);
    }
    written_ = recorded_ = 0;
  }

  static void on_open(uv_fs_t* req) {
    auto* self = static_cast<SegmentSink*>(req->data);
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    self->busy_ = false;
    if (result < 0) {
      self->write_failed(static_cast<int>(result), "open");
    } else {
      self->own_fd_ = static_cast<int>(result);
    }
    self->next();
  }

  void close_own() {
    busy_ = true;
    req_.data = this;
    int fd = own_fd_;
    own_fd_ = -1;
    uv_fs_close(loop_, &req_, fd, [](uv_fs_t* req) {
      auto* self = static_cast<SegmentSink*>(req->data);
      uv_fs_req_cleanup(req);
      self->busy_ = false;
      self->next();
    });
  }

  void issue_write(int fd) {
    busy_ = true;
    req_.data = this;
    uv_buf_t b = uv_buf_init(body_.unwritten_data(), static_cast<unsigned>(body_.unwritten_size()));
    auto at = static_cast<int64_t>(r_.from + written_);
    if (int rc = uv_fs_write(loop(), &req_, fd, &b, 1, at, &on_write); rc < 0) {
      busy_ = false;
      write_failed(rc, "write");
    }
  }

  void write_failed(int rc, const char* step) {
    failed_ = true;
    body_.clear();
    if (events_.failed)
      events_.failed(Error(Errc::file_io, std::string("cannot ") + step + " '" +
                                              (file_ ? file_->part() : part_) +
                                              "': " + uv_words(rc)));
  }

  static void on_write(uv_fs_t* req) {
    auto* self = static_cast<SegmentSink*>(req->data);
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    self->busy_ = false;
    if (result < 0) {
      self->write_failed(static_cast<int>(result), "write");
      return self->next();
    }
    self->written_ += static_cast<std::uint64_t>(result);
    bool all_down = self->body_.wrote(static_cast<std::size_t>(result));
    // Progress goes into the sidecar as the segment runs, not only when it ends: a run killed
    // outright (SIGKILL, a crash) then loses at most this much of each segment. Only bytes whose
    // write completed count.
    if (self->file_ && self->written_ - self->recorded_ >= kRecordEvery) {
      self->recorded_ = self->written_;
      self->file_->record_range({self->r_.from, self->r_.from + self->written_});
    }
    if (!all_down && !self->aborting_ && !self->restart_cb_)
      return self->issue_write(self->fd());  // short write
    // (With the body already over, finish() is waiting: it completes the segment at the cut.)
    if (self->cut_reached_ && !self->cut_told_ && !self->aborting_ && !self->restart_cb_ &&
        !self->finish_cb_) {
      self->body_.end_write();
      if (self->body_.has_waiting()) return self->next();
      // Every byte up to the cut is on disk: the download stops here (the owner aborts this
      // sink, which records them, and may delete it).
      self->cut_told_ = true;
      if (self->events_.failed)
        self->events_.failed(Error(Errc::cancelled, "segment handed over to another connection"));
      return;
    }
    if (self->body_.end_write() && self->events_.drained)
      self->events_.drained();  // may write more into the buffer
    self->next();
  }

  FileSink* file_ = nullptr;  // local: the file sink whose fd and records this shares
  const ByteRange r_;
  const bool check_;
  const std::string part_;  // remote only: the .part to open (a local one asks file_)
  const std::uint64_t total_;
  const FileSinkOptions opts_;
  std::shared_ptr<std::atomic<std::uint64_t>> written_out_;  // remote: what was written
  std::shared_ptr<SegmentCut> cut_;                          // null: never cut short
  bool cut_reached_ = false, cut_told_ = false;
  std::uint64_t cut_at_ = 0;   // where it was cut, once reached
  uv_loop_t* loop_ = nullptr;  // remote: the client's loop
  int own_fd_ = -1;            // remote: the .part, opened here
  Events events_;
  uv_fs_t req_{};
  bool busy_ = false, failed_ = false, aborting_ = false;
  StreamBuffer body_{opts_.high_water, opts_.low_water};  // on its way to disk
  std::uint64_t written_ = 0;   // bytes of this segment on disk (from r_.from)
  std::uint64_t recorded_ = 0;  // of which the file sink has been told (local only)
  static constexpr std::uint64_t kRecordEvery = 8 << 20;
  std::function<void(Error)> finish_cb_;
  std::function<void()> abort_cb_, restart_cb_;
};

std::unique_ptr<Sink> FileSink::segment(ByteRange r, bool check_range,
                                        std::shared_ptr<SegmentCut> cut) {
  return std::make_unique<SegmentSink>(this, r, check_range, std::move(cut));
}

std::unique_ptr<Sink> FileSink::remote_segment(ByteRange r,
                                               std::shared_ptr<std::atomic<std::uint64_t>> written,
                                               std::shared_ptr<SegmentCut> cut) {
  return std::make_unique<SegmentSink>(part_, r, total_, opts_, std::move(written), std::move(cut));
}

void FileSink::kick_segments() {
  std::vector<SegmentSink*> now = segments_;  // a kick may end (and delete) a segment
  for (SegmentSink* s : now)
    if (std::find(segments_.begin(), segments_.end(), s) != segments_.end()) s->next();
}

// Threadpool jobs of every file sink on one loop go out in batches: at most batches_in_flight()
// uv_queue_work requests per loop, the rest waiting to leave together when one returns. Many
// small files then cost a few threadpool round trips (and wake-ups) instead of one each.
// Loop-thread only state, keyed by loop, empty when idle: no handle of its own.
//
// A batch is short (kMaxBatch jobs, about 250 µs of small-file work on tmpfs here) and, when the
// process may use one CPU only, alone in flight: the threadpool then shares that CPU with the
// loop, the scheduler lets a worker run on until it blocks, and a long batch (or two back to
// back) kept the host's timers waiting. Measured with bench/embed_latency on one core, 10,000
// small files into tmpfs: 256 jobs and two in flight, the host's 1 ms timer p99 2.5 ms late;
// 16 and one, 0.8 ms, at the same files/s. With more CPUs two batches run side by side, which
// slow (network) file systems need.
struct Batch {
  uv_work_t req{};
  uv_loop_t* loop;
  std::vector<FileSink::Work*> items;
};
struct LoopBatches {
  int in_flight = 0;
  std::vector<FileSink::Work*> waiting;
};
constexpr std::size_t kMaxBatch = 16;
int batches_in_flight() {
  static const int n = uv_available_parallelism() > 1 ? 2 : 1;
  return n;
}
thread_local std::unordered_map<uv_loop_t*, LoopBatches> batches;

void pump_batches(uv_loop_t* loop) {
  auto it = batches.find(loop);
  if (it == batches.end()) return;
  LoopBatches& lb = it->second;
  while (lb.in_flight < batches_in_flight() && !lb.waiting.empty()) {
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

void FileSink::submit_alone(uv_loop_t* loop, Work* w) {
  struct Alone {
    uv_work_t req{};
    FileSink::Work* w;
  };
  auto* a = new Alone{.w = w};
  a->req.data = a;
  uv_queue_work(
      loop, &a->req, [](uv_work_t* req) { FileSink::work(static_cast<Alone*>(req->data)->w); },
      [](uv_work_t* req, int) {
        std::unique_ptr<Alone> done(static_cast<Alone*>(req->data));
        FileSink::after_work(done->w);
      });
}

void FileSink::submit(uv_loop_t* loop, Work* w) {
  batches[loop].waiting.push_back(w);
  pump_batches(loop);
}

}  // namespace

std::unique_ptr<Sink> make_file_sink(std::string path, FileSinkOptions options) {
  return std::make_unique<FileSink>(std::move(path), options);
}

}  // namespace uvget
