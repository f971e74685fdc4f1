// TcpStream: the bottom of a connection's stream chain, a connected uv_tcp_t. It reads into the
// loop's shared buffer under the loop's ReadBudget, writes with uv_try_write first, and tunes
// SO_RCVLOWAT while a large body streams in.
#pragma once

#include <uv.h>

#include "net/read_budget.hpp"
#include "net/stream.hpp"

namespace uvget {

class TcpStream final : public Stream {
 public:
  /// Takes `tcp` (connected, allocated with new; freed when closed).
  TcpStream(uv_tcp_t* tcp, ReadBudget& budget);

  void set_handler(Handler* handler) override { handler_ = handler; }
  void read_start() override;
  void read_stop() override;
  void write(std::string bytes) override;
  void close() override;
  bool has_buffered_input() const override { return false; }
  void wake_every_byte() override { set_rcvlowat(1); }
  std::uint64_t last_read_ms() const override { return last_read_ms_; }

  void ref(bool on) override;
  /// From the budget: reading may go on after it stopped for a pass.
  void resume_deferred();
  /// From the budget: the stream went quiet with SO_RCVLOWAT raised.
  void relax() {
    watched_ = false;
    set_rcvlowat(1);
  }

 private:
  ~TcpStream() override = default;  // close() frees it
  void start_uv_read();
  void stop_uv_read();
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void tune_wakeups(std::size_t last_read);
  void set_rcvlowat(int bytes);
  void write_failed(int status);
  static void on_alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write_cb(uv_write_t* req, int status) noexcept;
  static void on_close_cb(uv_handle_t* h) noexcept;

  uv_tcp_t* tcp_;
  ReadBudget& budget_;
  Handler* handler_ = nullptr;
  bool want_reading_ = false;  // between read_start() and read_stop()
  bool uv_reading_ = false;    // uv_read_start is in effect
  bool deferred_ = false;      // stopped until the budget's next pass
  bool closing_ = false;
  bool watched_ = false;  // listed by the budget's watch()
  int rcvlowat_ = 1;      // SO_RCVLOWAT now set on the socket
  std::uint64_t last_read_ms_ = 0;
};

}  // namespace uvget
