// ResponseParser: llhttp turned into head/body/complete events for one response at a time.
// No I/O; the connection feeds it bytes and decides what to do with the events.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <span>
#include <string>

#include <uvget/error.hpp>
#include <uvget/request.hpp>

namespace uvget {

class ResponseParser {
 public:
  struct Handler {
    /// The final (non-1xx) response head. Interim 1xx responses are skipped.
    virtual void on_response_head(Response& head) = 0;
    virtual void on_response_body(std::span<const std::byte> bytes) = 0;

   protected:
    ~Handler() = default;
  };

  enum class Status { need_more, complete, failed };
  struct Progress {
    Status status;
    std::size_t consumed;  // bytes of the input that belong to this response
  };

  ResponseParser(Handler& handler, std::size_t max_header_bytes, std::size_t max_header_count);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  /// Prepares for the response to a new request; `head_request`: the response has no body.
  void start(bool head_request);
  Progress feed(const char* data, std::size_t len);
  /// The peer closed the stream. complete for a close-delimited body, failed otherwise.
  Status finish_on_eof();

  /// Valid after complete: the connection may carry another request.
  bool keep_alive() const noexcept { return keep_alive_; }
  /// True once any byte of this response arrived.
  bool started() const noexcept { return started_; }
  bool head_done() const noexcept { return head_done_; }
  /// The head is in and says the connection ends with this response (Connection: close,
  /// HTTP/1.0 without keep-alive, or a body delimited by the close).
  bool ends_connection() const noexcept {
    return head_done_ && !complete_ && llhttp_should_keep_alive(&parser_) == 0;
  }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  /// Bytes still to come of a Content-Length body (not chunked, not close-delimited); else 0.
  std::uint64_t identity_body_left() const noexcept {
    if (!head_done_ || complete_ || (parser_.flags & F_CHUNKED) ||
        !(parser_.flags & F_CONTENT_LENGTH))
      return 0;
    return parser_.content_length;
  }
  /// Valid after failed.
  const Error& error() const noexcept { return error_; }

 private:
  int on_status(const char* at, std::size_t len);
  int on_header_field(const char* at, std::size_t len);
  int on_header_value(const char* at, std::size_t len);
  int on_headers_complete();
  int on_body(const char* at, std::size_t len);
  int on_chunk_extension(const char* at, std::size_t len);
  int on_chunk_header();
  int on_message_complete();
  int count_head_bytes(std::size_t len);
  void fail_from_llhttp(llhttp_errno_t err);

  template <auto M, class... A>
  static int thunk(llhttp_t* p, A... a) noexcept {
    return (static_cast<ResponseParser*>(p->data)->*M)(a...);
  }

  Handler& handler_;
  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  const std::size_t max_header_bytes_;
  const std::size_t max_header_count_;
  Response head_;               // being assembled until on_headers_complete
  bool in_value_ = false;       // the last header piece was a value: a new field starts a header
  std::size_t head_bytes_ = 0;  // bytes of the current head so far
  bool head_request_ = false;
  bool informational_ = false;  // the current message is a 1xx: skipped
  int interim_count_ = 0;       // 1xx responses skipped so far for this request
  static constexpr int kMaxInterim = 16;
  static constexpr std::size_t kMaxChunkExtension = 4096;
  std::size_t chunk_extension_bytes_ = 0;  // of the current chunk-size line
  bool started_ = false;
  bool head_done_ = false;
  bool complete_ = false;
  bool keep_alive_ = false;
  std::uint64_t body_bytes_ = 0;
  Error error_;
};

}  // namespace uvget
