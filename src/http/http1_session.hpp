// Http1Session: the HTTP/1.1 side of one connection, without I/O. It queues requests (one being
// answered, more pipelined behind it), feeds the parser, matches responses to their exchanges,
// and decides whether the connection may carry another request. The connection under it writes
// what take_output() gives, feeds what it reads to receive(), and reports the end of the stream
// with on_eof() or fail(); what it must do in turn (close, park) the session says through Link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/request.hpp>

#include "http/response_parser.hpp"

namespace uvget {

/// One request/response on a connection, seen from the transfer.
struct Exchange {
  virtual void on_exchange_head(Response& head) = 0;
  virtual void on_exchange_body(std::span<const std::byte> bytes) = 0;
  /// Exactly once per exchange, last. `retry_safe`: the request went over a reused connection
  /// and no byte of a response came back, so it may be repeated on a fresh connection.
  virtual void on_exchange_done(const Error& error, bool retry_safe) = 0;
  /// Instead of on_exchange_done, for a pipelined request: the connection ended before a byte of
  /// its response came, so it may be sent again and the try does not count. `server_broke`: the
  /// server dropped pipelined requests without saying so (no `Connection: close`), so pipelining
  /// to it is not safe.
  virtual void on_exchange_unanswered(bool server_broke) = 0;
  /// Body bytes the exchange takes now without pausing (a read for it is cut to this, or 16 KiB).
  virtual std::size_t body_room() const { return SIZE_MAX; }

 protected:
  ~Exchange() = default;
};

class Http1Session final : private ResponseParser::Handler {
 public:
  /// What the session needs from the connection that carries it. Each call may come from
  /// inside receive(), on_eof(), fail() or abandon().
  struct Link {
    /// The exchange being answered ends now, right before it is told: no timer of it may run
    /// on (the exchange may park or close the connection from its callback).
    virtual void exchange_ending() = 0;
    /// A pipelined response follows the one that ended: it is the one being read now.
    virtual void next_response() = 0;
    /// The connection cannot go on (out of step, or a response nobody wants is too large):
    /// close it. The session is shut() from there.
    virtual void must_close() = 0;
    /// An abandoned exchange's response was read and thrown away, and nothing is in flight:
    /// park the connection or close it, by reusable(), as after any exchange.
    virtual void released() = 0;

   protected:
    ~Link() = default;
  };

  Http1Session(Link& link, std::size_t max_header_bytes, std::size_t max_header_count);

  /// Queues `request` for output. With nothing in flight, its response is the next one read;
  /// else it is pipelined behind the ones in flight (see can_pipeline()).
  void submit(Exchange* exchange, std::string_view request, bool head_request);
  /// Another request may go out behind the in_flight() ones, keeping at most `depth`: the
  /// connection has kept alive once, and the response being read is not a large one (the
  /// requests behind would wait for all of it) nor one that ends the connection.
  bool can_pipeline(std::size_t depth) const noexcept;
  std::size_t in_flight() const noexcept { return (exchange_ ? 1 : 0) + behind_.size(); }
  /// The exchange whose response is being read; null when nothing is in flight.
  Exchange* answering() const noexcept { return exchange_; }

  /// Request bytes to write, in order; empty when there are none.
  std::string take_output();
  bool has_output() const noexcept { return !out_.empty(); }

  /// Bytes from the server. `more_pending`: the stream holds bytes it has not handed over yet
  /// (a TLS record not yet decrypted); a response followed by any is not kept alive.
  void receive(const char* data, std::size_t n, bool more_pending = false);
  /// The server ended the stream. `clean`: the end is trusted (TCP FIN in the clear, TLS
  /// close_notify); an unclean one cannot end a close-delimited body (it may be a truncation).
  void on_eof(bool clean);
  /// The stream failed, or the connection could not be made: the exchange being answered ends
  /// with `error`.
  void fail(const Error& error);
  /// Where in the exchange's response the session is: "before any response", "in the response
  /// head", "after N body bytes".
  std::string where() const;
  /// A byte of the response being read has come.
  bool answer_started() const noexcept { return parser_.started(); }

  /// `exchange` wants no more of its response. The one being answered ends the connection
  /// (Link::must_close); one behind has its response read and thrown away.
  void abandon(Exchange* exchange);
  /// The connection is closing: nothing is reported to the exchange being answered; the ones
  /// behind are told they went unanswered, the last first, so that each put back at the front
  /// of its queue keeps their order. Nothing is done after this.
  void shut();

  /// The last response allows another request on this connection.
  bool reusable() const noexcept { return reusable_; }
  /// The current exchange is not the connection's first request.
  bool reused() const noexcept { return reused_; }
  std::uint64_t requests() const noexcept { return requests_; }
  bool is_shut() const noexcept { return shut_; }
  /// Bytes still to come of the response's Content-Length body; 0 if unknown or none.
  std::uint64_t identity_body_left() const noexcept { return parser_.identity_body_left(); }

 private:
  struct Behind {
    Exchange* exchange;  // the discard exchange once abandoned
    bool head_request;
  };
  void advance();
  void finish(const Error& error);
  void on_response_head(Response& head) override;
  void on_response_body(std::span<const std::byte> bytes) override;

  Link& link_;
  ResponseParser parser_;
  std::string out_;               // request bytes not yet taken
  Exchange* exchange_ = nullptr;  // being answered
  std::deque<Behind> behind_;     // sent after exchange_'s, answered after it
  bool head_request_ = false;
  bool pipelined_ = false;     // exchange_'s request went out before the previous response ended
  bool kept_alive_ = false;    // a response has left the connection usable for another
  bool server_broke_ = false;  // the server dropped pipelined requests unannounced
  bool reusable_ = false;
  bool reused_ = false;
  bool shut_ = false;
  std::uint64_t requests_ = 0;
};

}  // namespace uvget
