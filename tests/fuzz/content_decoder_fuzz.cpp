// Fuzz target: the Content-Encoding decoders. Input: a coding (first byte), how to cut the
// input and how large the output buffer is (next two bytes), then the encoded body. Properties:
// no pull fills more than its buffer, every pull makes progress or ends the loop, and a decoder
// that says it finished keeps saying so.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "http/content_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static const char* const codings[] = {"gzip", "deflate", "br", "zstd", "gzip, br", "zstd, gzip"};
  auto made = uvget::make_content_decoder(codings[data[0] % 6]);
  FUZZ_CHECK(made && *made);
  uvget::ContentDecoder& d = **made;
  std::size_t cut = 1 + data[1] % 64 * 37;
  std::vector<std::byte> out(1 + data[2] % 32 * 1024);
  auto body = std::as_bytes(std::span(data + 3, size - 3));
  std::uint64_t total = 0;
  while (!body.empty() && total < (16u << 20)) {
    std::span<const std::byte> in = body.first(std::min(cut, body.size()));
    body = body.subspan(in.size());
    for (int pulls = 0;; ++pulls) {
      FUZZ_CHECK(pulls < (32 << 20));
      std::size_t before = in.size();
      auto got = d.decode(in, out);
      if (!got) {
        FUZZ_CHECK(got.error().code == uvget::Errc::bad_encoding);
        return 0;
      }
      FUZZ_CHECK(*got <= out.size());
      FUZZ_CHECK(in.size() <= before);
      total += *got;
      if (total >= (16u << 20)) break;  // an expansion that large is decoded far enough
      if (*got < out.size() && (in.empty() || in.size() == before)) break;
    }
  }
  if (d.finished()) {
    std::span<const std::byte> none;
    auto again = d.decode(none, out);
    FUZZ_CHECK(again && *again == 0);
    FUZZ_CHECK(d.finished());
  }
  return 0;
}
