// Url: parsing (RFC 3986, http and https only), relative resolution and the origin key. Pure: no
// I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/url.hpp>

namespace uvget {

struct Url {
  std::string scheme;      // "http" or "https", lower case
  std::string userinfo;    // as given, without '@'; empty when absent
  std::string host;        // lower case; an IPv6 literal without its brackets
  std::uint16_t port = 0;  // always set: the scheme's default when the URL has none
  std::string path;        // never empty: "/" at least; percent-encoding kept as given
  std::string query;       // without '?'; empty when absent
  bool has_query = false;

  static Result<Url> parse(std::string_view text);
  /// Resolves `reference` (absolute or relative, as in a Location header) against this URL.
  Result<Url> resolve(std::string_view reference) const;

  bool is_https() const noexcept { return scheme == "https"; }
  bool is_ipv6_literal() const noexcept { return host.find(':') != std::string::npos; }
  std::uint16_t default_port() const noexcept { return is_https() ? 443 : 80; }
  /// "host" or "host:port" (port only when not the default), brackets around IPv6.
  std::string authority() const;
  /// "/path?query": the request target.
  std::string target() const;
  /// "scheme://host:port": connections are pooled and limited per origin.
  std::string origin() const;
  /// The URL without userinfo or fragment.
  std::string str() const;
};

/// RFC 3986 5.2.4.
std::string remove_dot_segments(std::string_view path);

}  // namespace uvget
