// TlsStream: TLS over another Stream. Its handshake steps run on the threadpool (a full
// handshake's key exchange and certificate checks cost milliseconds of CPU in mbedTLS, which
// would hold the host's loop), and new connections to an origin whose first full handshake is
// still running wait for it and resume its session. Once open, it is a plaintext Stream: records
// are decrypted straight from the loop's shared read buffer, and only close_notify ends the
// stream cleanly.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "net/read_budget.hpp"
#include "net/stream.hpp"
#include "tls/tls.hpp"

namespace uvget {

class TlsStream final : public Stream, private Stream::Handler {
 public:
  /// Takes `lower` (closed with this stream).
  TlsStream(uv_loop_t* loop, Stream* lower, TlsContext& ctx, std::string host, std::string origin,
            ReadBudget& budget);

  /// Runs the handshake; `done` once, unless close() comes first: no error, and the stream is
  /// open; or why it failed (the stream is then of no use but to close).
  void handshake(std::function<void(const Error&)> done);
  bool resumed() const noexcept { return tls_ && tls_->resumed(); }

  void set_handler(Stream::Handler* handler) override { handler_ = handler; }
  void read_start() override;
  void read_stop() override;
  void write(std::string bytes) override;
  void close() override;
  bool has_buffered_input() const override { return tls_ && tls_->has_buffered_input(); }
  void wake_every_byte() override { lower_->wake_every_byte(); }
  void ref(bool on) override { lower_->ref(on); }
  std::uint64_t last_read_ms() const override { return lower_->last_read_ms(); }

 private:
  enum class State { idle, handshaking, open, failed };
  struct HandshakeJob;
  ~TlsStream() override = default;  // close() frees it

  void start_session();
  void drive();
  static void on_step_cb(uv_work_t* req, int status) noexcept;
  void after_step(TlsSession::Step step);
  void handshake_failed(const Error& error, bool forget);
  void end_lead();
  void drain();
  void flush();
  void maybe_freed();

  // From the lower stream.
  void on_stream_data(const char* data, std::size_t n) override;
  void on_stream_eof(bool clean) override;
  void on_stream_error(Fault fault, const Error& error) override;
  ReadWant read_want() const override;
  void on_stream_closed() override;

  uv_loop_t* loop_;
  Stream* lower_;
  TlsContext& ctx_;
  const std::string host_;
  const std::string origin_;  // sessions are kept and led per origin
  ReadBudget& budget_;
  Stream::Handler* handler_ = nullptr;
  std::function<void(const Error&)> done_;
  std::unique_ptr<TlsSession> tls_;  // from the first handshake step on
  State state_ = State::idle;
  HandshakeJob* job_ = nullptr;  // a handshake step running on the threadpool
  std::string pending_;          // ciphertext that arrived while it ran
  bool again_ = false;           // and so the handshake must run once more
  std::string ended_;            // why the stream ended while it ran (the step speaks first)
  bool waiting_ = false;         // for another connection's full handshake, to resume it
  bool leading_ = false;         // this full handshake is the one others wait for
  bool reading_ = false;         // between read_start() and read_stop()
  bool in_drain_ = false;
  bool peer_closed_ = false;  // close_notify came
  bool closing_ = false;
  bool lower_closed_ = false;
};

}  // namespace uvget
