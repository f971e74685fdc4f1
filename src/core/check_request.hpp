// What Client::get() and Runner::get() both refuse before anything starts, checked in one place.
#pragma once

#include <memory>

#include <uvget/request.hpp>

#include "core/checksum.hpp"
#include "url.hpp"

namespace uvget {

struct CheckedRequest {
  Url url;
  std::unique_ptr<BodyHash> hash;  // null: no checksum asked for
};

/// A URL that does not parse, a header with CR or LF, a malformed checksum: the error, with the
/// request's URL in Error::url. Else the parsed URL and the checksum's hash.
Result<CheckedRequest> check_request(const Request& request);

}  // namespace uvget
