// Error categories: uvget's own codes and libuv's negative status codes, in words.
#include <uv.h>

#include <uvget/error.hpp>

namespace uvget {
namespace {

class UvgetCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "uvget"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::bad_url:
        return "bad URL";
      case Errc::bad_request:
        return "bad request";
      case Errc::resolve:
        return "cannot resolve host";
      case Errc::connect:
        return "cannot connect";
      case Errc::connect_timeout:
        return "connect timed out";
      case Errc::idle_timeout:
        return "no data within the idle timeout";
      case Errc::timeout:
        return "transfer timed out";
      case Errc::tls_handshake:
        return "TLS handshake failed";
      case Errc::tls_verify:
        return "TLS certificate not trusted";
      case Errc::connection_closed:
        return "connection closed early";
      case Errc::connection_reset:
        return "connection reset";
      case Errc::http_parse:
        return "invalid HTTP response";
      case Errc::header_too_large:
        return "response head too large";
      case Errc::http_status:
        return "HTTP error status";
      case Errc::too_many_redirects:
        return "too many redirects";
      case Errc::bad_redirect:
        return "bad redirect";
      case Errc::cancelled:
        return "cancelled";
      case Errc::file_io:
        return "file error";
      case Errc::size_mismatch:
        return "size mismatch";
      case Errc::body_too_large:
        return "body too large";
      case Errc::client_closed:
        return "client closed";
      case Errc::dns_temporary:
        return "temporary DNS failure";
      case Errc::too_slow:
        return "transfer too slow";
      case Errc::checksum_mismatch:
        return "checksum mismatch";
      case Errc::bad_encoding:
        return "cannot decode the body";
      case Errc::robots_disallowed:
        return "disallowed by robots.txt";
    }
    return "unknown uvget error";
  }
};

class UvCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "uv"; }
  std::string message(int ev) const override {
    return std::string(uv_strerror(ev)) + " (" + uv_err_name(ev) + ")";
  }
};

}  // namespace

const std::error_category& uvget_category() noexcept {
  static const UvgetCategory c;
  return c;
}

const std::error_category& uv_category() noexcept {
  static const UvCategory c;
  return c;
}

std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), uvget_category()};
}

std::string Error::cause() const {
  if (!code) return "ok";
  return detail.empty() ? code.message() : detail;
}

std::string Error::message() const {
  if (!code || url.empty()) return cause();
  return url + ": " + cause() + (at.empty() || at == url ? "" : " (at " + at + ")");
}

}  // namespace uvget
