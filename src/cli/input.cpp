// Chunked reads of the URL list; lines are handed out as soon as a chunk holds them.
#include "cli/input.hpp"

#include <unistd.h>

namespace uvget::cli {

struct LineReader::Req {
  uv_fs_t fs{};
  LineReader* owner;  // null once the reader is gone
  char buf[64 * 1024];
};

LineReader::LineReader(uv_loop_t* loop, uv_file fd, bool owns_fd, OnLine on_line,
                       std::function<void(int)> on_chunk)
    : loop_(loop),
      fd_(fd),
      owns_fd_(owns_fd),
      on_line_(std::move(on_line)),
      on_chunk_(std::move(on_chunk)) {}

LineReader::~LineReader() {
  if (req_) req_->owner = nullptr;
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void LineReader::want_more() {
  if (req_ || ended_ || stopped_) return;
  auto* r = new Req;
  r->owner = this;
  r->fs.data = r;
  uv_buf_t b = uv_buf_init(r->buf, sizeof r->buf);
  if (int rc = uv_fs_read(loop_, &r->fs, fd_, &b, 1, -1, &on_read); rc < 0) {
    delete r;
    ended_ = true;
    on_chunk_(rc);
    return;
  }
  req_ = r;
}

void LineReader::stop() {
  stopped_ = true;
}

void LineReader::on_read(uv_fs_t* fs) {
  auto* r = static_cast<Req*>(fs->data);
  auto n = fs->result;
  uv_fs_req_cleanup(fs);
  LineReader* self = r->owner;
  if (!self) {
    delete r;
    return;
  }
  self->req_ = nullptr;
  if (n > 0) self->partial_.append(r->buf, static_cast<std::size_t>(n));
  bool short_read = n > 0 && static_cast<std::size_t>(n) < sizeof r->buf;
  delete r;
  self->handle(n);
  // A short read is usually the end of a file: look once more so the total is known early
  // (one extra chunk at most; a pipe simply delivers what comes next).
  if (short_read && !self->done()) self->want_more();
}

void LineReader::handle(ssize_t n) {
  if (stopped_) return;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = partial_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(partial_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    on_line_(line, ++line_no_);
    start = nl + 1;
    if (stopped_) return;
  }
  partial_.erase(0, start);
  if (n <= 0) {
    if (!partial_.empty() && n == 0) {
      std::string last = std::move(partial_);
      partial_.clear();
      if (!last.empty() && last.back() == '\r') last.pop_back();
      on_line_(last, ++line_no_);
    }
    ended_ = true;
    on_chunk_(n == 0 ? 1 : static_cast<int>(n));
    return;
  }
  on_chunk_(0);
}

}  // namespace uvget::cli
