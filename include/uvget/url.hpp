// A URL as the client reads it, for callers that name files or group downloads by host the same
// way the client does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/export.hpp>

namespace uvget {

struct UrlParts {
  std::string scheme;      // "http" or "https"
  std::string host;        // lower case; an international name as its A-labels; no brackets
  std::uint16_t port = 0;  // the scheme's default when the URL has none
  std::string path;        // normalised (dot segments removed, escapes kept); "/" when empty
  std::string query;       // without the '?'
  bool has_query = false;  // a '?' was there, even with nothing after it
};

/// Parses `text` as Client::get() does: Errc::bad_url, naming the text and the cause, for a URL
/// it would refuse.
UVGET_EXPORT Result<UrlParts> parse_url(std::string_view text);

}  // namespace uvget
