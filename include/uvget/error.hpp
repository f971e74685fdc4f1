// Error values: one type for every failure the library reports, and Result<T>.
// Owns no I/O; the categories map libuv, mbedTLS and uvget codes to words.
#pragma once

#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include <uvget/export.hpp>

namespace uvget {

enum class Errc {
  bad_url = 1,         // the URL cannot be parsed or uses an unsupported scheme
  bad_request,         // a request field is invalid (header with CR/LF, ...)
  resolve,             // DNS lookup failed
  connect,             // every address refused or failed
  connect_timeout,     // no connection within the connect timeout
  idle_timeout,        // no byte moved within the idle timeout
  timeout,             // the whole transfer took longer than its deadline
  tls_handshake,       // reserved for the TLS layer
  tls_verify,          // reserved for the TLS layer
  connection_closed,   // the peer closed before the response was complete
  connection_reset,    // the peer reset the connection
  http_parse,          // the response is not valid HTTP/1.x
  header_too_large,    // the response head is over the configured limit
  http_status,         // the final response is not 2xx
  too_many_redirects,  // the redirect limit was reached
  bad_redirect,        // a Location that cannot be followed
  cancelled,           // cancelled by the caller or by Client::close()
  file_io,             // the sink could not write, close or rename
  size_mismatch,       // the body is shorter or longer than announced
  body_too_large,      // the body is over a sink's limit
  client_closed,       // get() after close()
  dns_temporary,       // DNS lookup failed for now (EAI_AGAIN, timed out): worth a retry
  too_slow,            // slower than the lowest speed for the lowest-speed time
  checksum_mismatch,   // the body does not hash to Request::checksum
  bad_encoding,        // a Content-Encoding that cannot be undone, or a corrupt encoded body
  robots_disallowed,   // ClientOptions::robots: robots.txt refuses the URL, or could not be had
};

UVGET_EXPORT const std::error_category& uvget_category() noexcept;
UVGET_EXPORT const std::error_category& uv_category() noexcept;  // libuv's negative ints
UVGET_EXPORT std::error_code make_error_code(Errc e) noexcept;

struct UVGET_EXPORT Error {
  std::error_code code;  // empty: success
  std::string detail;    // the cause in words, without the URL
  /// The URL the caller asked for, when the error is a download's; empty otherwise.
  std::string url;
  /// Where it failed when a redirect led elsewhere; empty when that is `url` itself.
  std::string at;

  Error() = default;
  Error(std::error_code c, std::string d) : code(c), detail(std::move(d)) {}
  Error(Errc e, std::string d) : code(make_error_code(e)), detail(std::move(d)) {}

  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  /// One line: "URL: cause (at URL2)", or the cause alone without a URL (the code's message
  /// when there is no detail).
  std::string message() const;
  /// The cause alone: the detail, or the code's message.
  std::string cause() const;
};

/// A value or an Error; the shape of C++23's std::expected.
template <class T>
class Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}
  explicit operator bool() const noexcept { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace uvget

template <>
struct std::is_error_code_enum<uvget::Errc> : std::true_type {};
