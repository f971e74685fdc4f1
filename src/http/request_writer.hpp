// Request bytes for GET/HEAD: request line, Host, defaults, caller headers. No I/O.
#pragma once

#include <string>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>

#include "text.hpp"  // iequals, for the users of this header
#include "url.hpp"

namespace uvget {

/// An error when a header name is not an RFC 9110 token or a value holds CR, LF or NUL.
Error validate_headers(const HeaderList& headers);

/// Appends the request head to `out`. `layers` are applied in order; a later layer's header
/// replaces an earlier one of the same name (case-insensitive), an empty value removes it.
void write_request(std::string& out, Method method, const Url& url, std::string_view user_agent,
                   const HeaderList& client_headers, const HeaderList& request_headers);

}  // namespace uvget
