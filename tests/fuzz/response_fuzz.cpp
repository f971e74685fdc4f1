// Fuzz target: the response parser on arbitrary bytes cut at arbitrary points. The first byte
// chooses the mode (HEAD or GET, small or default head limits); the next two seed the cuts; the
// rest is what the server sent, parsed as consecutive responses on one connection while each
// allows keep-alive, then the peer's close. Properties: no input makes the parser take more
// than it was given, report a body after failing, or count body bytes it did not deliver; a
// complete Content-Length response (with a body) delivered exactly that many bytes; the head limits
// hold.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>

#include "fuzz_check.hpp"
#include "http/response_parser.hpp"

namespace {

struct Seen final : uvget::ResponseParser::Handler {
  int heads = 0;
  std::uint64_t body = 0;
  std::optional<std::uint64_t> length;  // of a response that has a body (not 204, 304)
  std::size_t header_count = 0;
  bool failed = false;
  void on_response_head(uvget::Response& head) override {
    FUZZ_CHECK(!failed);
    FUZZ_CHECK(head.status >= 200 && head.status <= 999);
    ++heads;
    if (head.status != 204 && head.status != 304) length = head.content_length();
    header_count = head.headers.size();
  }
  void on_response_body(std::span<const std::byte> bytes) override {
    FUZZ_CHECK(!failed);
    FUZZ_CHECK(heads > 0);
    body += bytes.size();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const bool head_request = data[0] & 1;
  const std::size_t max_bytes = (data[0] & 2) ? 256 : 64 * 1024;
  const std::size_t max_count = (data[0] & 2) ? 4 : 256;
  std::minstd_rand cuts(static_cast<unsigned>(data[1] | (data[2] << 8)) + 1);
  const char* in = reinterpret_cast<const char*>(data + 3);
  std::size_t left = size - 3;

  Seen seen;
  uvget::ResponseParser parser(seen, max_bytes, max_count);
  parser.start(head_request);
  for (int responses = 0; responses < 64;) {
    if (left == 0) {
      auto status = parser.finish_on_eof();
      if (status == uvget::ResponseParser::Status::complete && seen.length && !head_request &&
          seen.heads)
        FUZZ_CHECK(seen.body == *seen.length);
      break;
    }
    std::size_t piece = std::min<std::size_t>(left, 1 + cuts() % 64);
    auto p = parser.feed(in, piece);
    FUZZ_CHECK(p.consumed <= piece);
    FUZZ_CHECK(parser.body_bytes() == seen.body);
    if (seen.heads) FUZZ_CHECK(seen.header_count <= max_count);
    if (p.status == uvget::ResponseParser::Status::failed) {
      seen.failed = true;
      FUZZ_CHECK(static_cast<bool>(parser.error()));
      break;
    }
    if (p.status == uvget::ResponseParser::Status::complete) {
      if (seen.length && !head_request) FUZZ_CHECK(seen.body == *seen.length);
      if (!parser.keep_alive()) break;
      in += p.consumed;
      left -= p.consumed;
      ++responses;
      seen = Seen{};
      parser.start(head_request);
      continue;
    }
    FUZZ_CHECK(p.consumed == piece);  // needing more: everything given was taken
    in += piece;
    left -= piece;
  }
  return 0;
}
