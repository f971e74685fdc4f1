// Fuzz target: URL parsing and relative resolution. Input: "BASE\nREFERENCE". Properties: a URL
// that parses prints to a URL that parses to the same text (so what the client requests and
// reports is stable), and so does a resolved reference.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  auto base = uvget::Url::parse(in.substr(0, nl));
  if (!base) return 0;
  auto again = uvget::Url::parse(base->str());
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->str() == base->str());
  FUZZ_CHECK(again->origin() == base->origin());
  if (nl == std::string_view::npos) return 0;
  auto next = base->resolve(in.substr(nl + 1));
  if (!next) return 0;
  auto next_again = uvget::Url::parse(next->str());
  FUZZ_CHECK(next_again);
  FUZZ_CHECK(next_again->str() == next->str());
  return 0;
}
