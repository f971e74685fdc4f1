// LineReader: reads a URL list from a file or stdin through the libuv threadpool, a chunk at a
// time and only when asked, so the list never has to fit in memory.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace uvget::cli {

class LineReader {
 public:
  /// `on_line` gets each line without its end-of-line. `on_chunk` runs after the lines of each
  /// chunk, with 0 while more may come, 1 at the end of the input, or a libuv error.
  using OnLine = std::function<void(std::string_view line, std::uint64_t number)>;
  LineReader(uv_loop_t* loop, uv_file fd, bool owns_fd, OnLine on_line,
             std::function<void(int status)> on_chunk);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Reads the next chunk unless one is in flight or the input has ended.
  void want_more();
  /// No more lines are wanted: an in-flight read is dropped when it completes.
  void stop();
  bool done() const noexcept { return ended_ || stopped_; }
  /// A read is in flight: the loop must run until it completes before this is destroyed.
  bool busy() const noexcept { return req_ != nullptr; }

 private:
  struct Req;
  static void on_read(uv_fs_t* req);
  void handle(ssize_t n);

  uv_loop_t* loop_;
  uv_file fd_;
  bool owns_fd_;
  OnLine on_line_;
  std::function<void(int)> on_chunk_;
  Req* req_ = nullptr;   // the read in flight
  std::string partial_;  // a line not yet terminated
  std::uint64_t line_no_ = 0;
  bool ended_ = false;
  bool stopped_ = false;
};

}  // namespace uvget::cli
