// llhttp callbacks to events: bounded head, 1xx skipped, HEAD bodies skipped, body spans passed on.
#include "http/response_parser.hpp"

#include <cstring>

namespace uvget {

ResponseParser::ResponseParser(Handler& handler, std::size_t max_header_bytes,
                               std::size_t max_header_count)
    : handler_(handler), max_header_bytes_(max_header_bytes), max_header_count_(max_header_count) {
  llhttp_settings_init(&settings_);
  settings_.on_status = &thunk<&ResponseParser::on_status, const char*, std::size_t>;
  settings_.on_header_field = &thunk<&ResponseParser::on_header_field, const char*, std::size_t>;
  settings_.on_header_value = &thunk<&ResponseParser::on_header_value, const char*, std::size_t>;
  settings_.on_headers_complete = &thunk<&ResponseParser::on_headers_complete>;
  settings_.on_body = &thunk<&ResponseParser::on_body, const char*, std::size_t>;
  settings_.on_chunk_extension_name =
      &thunk<&ResponseParser::on_chunk_extension, const char*, std::size_t>;
  settings_.on_chunk_extension_value =
      &thunk<&ResponseParser::on_chunk_extension, const char*, std::size_t>;
  settings_.on_chunk_header = &thunk<&ResponseParser::on_chunk_header>;
  settings_.on_message_complete = &thunk<&ResponseParser::on_message_complete>;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void ResponseParser::start(bool head_request) {
  llhttp_reset(&parser_);
  head_ = Response{};
  in_value_ = false;
  head_bytes_ = 0;
  head_request_ = head_request;
  informational_ = false;
  interim_count_ = 0;
  chunk_extension_bytes_ = 0;
  started_ = false;
  head_done_ = false;
  complete_ = false;
  keep_alive_ = false;
  body_bytes_ = 0;
  error_ = Error{};
}

ResponseParser::Progress ResponseParser::feed(const char* data, std::size_t len) {
  if (len == 0) return {Status::need_more, 0};
  started_ = true;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) return {Status::need_more, len};
  if (err == HPE_PAUSED && complete_) {
    auto used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    return {Status::complete, used};
  }
  fail_from_llhttp(err);
  return {Status::failed, len};
}

ResponseParser::Status ResponseParser::finish_on_eof() {
  if (complete_) return Status::complete;
  if (!error_ && started_) {
    llhttp_errno_t err = llhttp_finish(&parser_);
    // on_message_complete pauses the parser, so a close-delimited body ends with HPE_PAUSED.
    if ((err == HPE_OK || err == HPE_PAUSED) && complete_) return Status::complete;
    if (err != HPE_OK && err != HPE_PAUSED && err != HPE_INVALID_EOF_STATE) {
      fail_from_llhttp(err);
      return Status::failed;
    }
  }
  if (!error_) {
    if (!head_done_) {
      error_ = Error(Errc::connection_closed, started_ ? "connection closed in the response head"
                                                       : "connection closed before any response");
    } else {
      error_ = Error(Errc::connection_closed,
                     "connection closed after " + std::to_string(body_bytes_) + " body bytes" +
                         (head_.content_length() ? " of " + std::to_string(*head_.content_length())
                                                 : std::string()) +
                         " (body truncated)");
    }
  }
  return Status::failed;
}

void ResponseParser::fail_from_llhttp(llhttp_errno_t err) {
  if (error_) return;  // a callback already said why
  const char* reason = llhttp_get_error_reason(&parser_);
  error_ = Error(Errc::http_parse, std::string("invalid HTTP response: ") + llhttp_errno_name(err) +
                                       (reason && *reason ? std::string(" (") + reason + ")" : ""));
}

int ResponseParser::count_head_bytes(std::size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > max_header_bytes_) {
    error_ = Error(Errc::header_too_large,
                   "response head larger than " + std::to_string(max_header_bytes_) + " bytes");
    return HPE_USER;
  }
  return HPE_OK;
}

int ResponseParser::on_status(const char* at, std::size_t len) {
  if (int rc = count_head_bytes(len); rc != HPE_OK) return rc;
  head_.reason.append(at, len);
  return HPE_OK;
}

int ResponseParser::on_header_field(const char* at, std::size_t len) {
  if (int rc = count_head_bytes(len); rc != HPE_OK) return rc;
  if (head_done_) return HPE_OK;  // a trailer: bounded by the same limit, not kept
  if (in_value_ || head_.headers.empty()) {
    if (head_.headers.size() >= max_header_count_) {
      error_ = Error(Errc::header_too_large,
                     "response has more than " + std::to_string(max_header_count_) + " headers");
      return HPE_USER;
    }
    head_.headers.emplace_back();
    in_value_ = false;
  }
  head_.headers.back().first.append(at, len);
  return HPE_OK;
}

int ResponseParser::on_header_value(const char* at, std::size_t len) {
  if (int rc = count_head_bytes(len); rc != HPE_OK) return rc;
  if (head_done_) return HPE_OK;
  if (head_.headers.empty()) head_.headers.emplace_back();
  in_value_ = true;
  head_.headers.back().second.append(at, len);
  return HPE_OK;
}

int ResponseParser::on_headers_complete() {
  int status = llhttp_get_status_code(&parser_);
  if (status < 100 || status > 999) {  // llhttp takes "HTTP/1.1 21 ..." (RFC 9112: 3 digits)
    error_ = Error(Errc::http_parse, "invalid status code " + std::to_string(status));
    return -1;
  }
  if (status >= 100 && status < 200) {
    if (status == 101) {
      error_ = Error(Errc::http_parse, "unexpected 101 Switching Protocols");
      return -1;
    }
    if (++interim_count_ > kMaxInterim) {
      error_ = Error(Errc::http_parse,
                     "more than " + std::to_string(kMaxInterim) + " interim (1xx) responses");
      return -1;
    }
    informational_ = true;  // 100 Continue, 103 Early Hints: the real response follows
    return 1;  // a 1xx ends at its blank line, whatever Content-Length it claims (fuzzer find)
  }
  // Field values end at optional whitespace that llhttp leaves in (RFC 9110 5.5).
  for (auto& [name, value] : head_.headers)
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  head_.status = status;
  head_.http_minor = llhttp_get_http_minor(&parser_);
  head_done_ = true;
  handler_.on_response_head(head_);
  // 1: no body follows, whatever Content-Length says: a response to HEAD, 204 and 304.
  return (head_request_ || status == 204 || status == 304) ? 1 : HPE_OK;
}

// Chunk extensions are skipped, but not without end: a chunk-size line may carry at most
// kMaxChunkExtension bytes of them. (Its digits are bounded by llhttp's overflow check; leading
// zeros without end move no body byte, which the lowest speed catches.)
int ResponseParser::on_chunk_extension(const char*, std::size_t len) {
  chunk_extension_bytes_ += len;
  if (chunk_extension_bytes_ <= kMaxChunkExtension) return HPE_OK;
  error_ = Error(Errc::http_parse,
                 "chunk-size line longer than " + std::to_string(kMaxChunkExtension) + " bytes");
  return HPE_USER;
}

int ResponseParser::on_chunk_header() {
  chunk_extension_bytes_ = 0;
  return HPE_OK;
}

int ResponseParser::on_body(const char* at, std::size_t len) {
  body_bytes_ += len;
  handler_.on_response_body(std::span(reinterpret_cast<const std::byte*>(at), len));
  return HPE_OK;
}

int ResponseParser::on_message_complete() {
  if (informational_) {
    informational_ = false;
    head_ = Response{};
    in_value_ = false;
    head_bytes_ = 0;
    return HPE_OK;
  }
  complete_ = true;
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0;
  return HPE_PAUSED;  // stop at the end of this response: bytes after it are not ours
}

}  // namespace uvget
