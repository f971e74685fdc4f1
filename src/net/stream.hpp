// Stream: a byte stream in the clear, the way the HTTP layer sees its connection. TcpStream is a
// connected socket; TlsStream runs TLS over another Stream; a proxy tunnel would be one more
// layer in the same chain. Each layer reports to the one above through Stream::Handler, and
// none of them knows about HTTP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <uvget/error.hpp>

namespace uvget {

/// What the layer above wants from the next read.
struct ReadWant {
  /// The read counts against the loop's read budget (time slice, rate limit): reads for an
  /// exchange do; a handshake's, or an idle connection's watch for EOF, do not.
  bool metered = false;
  /// At most this many bytes now (the body's sink has this much room); SIZE_MAX: any.
  std::size_t room = SIZE_MAX;
  /// Bytes surely still to come in the clear (a Content-Length body's rest), 0 if unknown: the
  /// socket may wait for a good part of it before waking the loop.
  std::uint64_t expect = 0;
};

class Stream {
 public:
  enum class Fault {
    reading,   // the socket failed while reading (reset...)
    writing,   // a write failed
    protocol,  // a layer's own protocol failed (a bad TLS record): the Error says it all
  };
  struct Handler {
    virtual void on_stream_data(const char* data, std::size_t n) = 0;
    /// The peer ended the stream. `clean`: the end is trusted (see Http1Session::on_eof).
    virtual void on_stream_eof(bool clean) = 0;
    virtual void on_stream_error(Fault fault, const Error& error) = 0;
    virtual ReadWant read_want() const = 0;
    /// After close(): every handle of the stream is closed; nothing is called after this.
    virtual void on_stream_closed() = 0;

   protected:
    ~Handler() = default;
  };

  virtual void set_handler(Handler* handler) = 0;
  /// Data, EOF and errors are reported between read_start() and read_stop(); bytes a layer
  /// holds already (decrypted records) come first.
  virtual void read_start() = 0;
  virtual void read_stop() = 0;
  /// Sends all of `bytes` in order; a failure comes as on_stream_error(writing).
  virtual void write(std::string bytes) = 0;
  /// Closes every layer; then on_stream_closed(), once. Nothing else is reported after this.
  virtual void close() = 0;
  /// A layer holds bytes it has not handed over yet.
  virtual bool has_buffered_input() const = 0;
  /// The socket may hold bytes back until this many are waiting: 1 wakes for each byte.
  virtual void wake_every_byte() = 0;
  /// Keeps the host's loop alive, or not (an idle connection must not).
  virtual void ref(bool on) = 0;
  /// uv_now of the last read from the socket.
  virtual std::uint64_t last_read_ms() const = 0;

 protected:
  virtual ~Stream() = default;  // close() frees a stream
};

}  // namespace uvget
