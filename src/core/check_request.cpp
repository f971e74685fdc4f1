#include "core/check_request.hpp"

#include "http/request_writer.hpp"

namespace uvget {

Result<CheckedRequest> check_request(const Request& request) {
  auto url = Url::parse(request.url);
  if (!url) return url.error();  // the message quotes the text it could not parse
  auto with_url = [&](Error e) {
    e.url = request.url;
    return e;
  };
  if (Error e = validate_headers(request.headers)) return with_url(std::move(e));
  CheckedRequest checked{std::move(*url), nullptr};
  if (!request.checksum.empty()) {
    auto h = BodyHash::parse(request.checksum);
    if (!h) return with_url(h.error());
    checked.hash = std::move(*h);
  }
  return checked;
}

}  // namespace uvget
