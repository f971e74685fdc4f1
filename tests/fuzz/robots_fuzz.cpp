// Fuzz target: robots.txt text. The input's first line is a URL path to ask about, the rest the
// file. Properties: parsing and matching never crash or hang; /robots.txt is always allowed; a
// path is allowed exactly when no rule refuses it; an empty Disallow-free group allows all.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/robots.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t nl = in.find('\n');
  std::string_view path = nl == std::string_view::npos ? in : in.substr(0, nl);
  std::string_view text = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  for (std::string_view token : {"uvget", "", "*"}) {
    auto rules = uvget::RobotsRules::parse(text, token);
    FUZZ_CHECK(rules.allowed("/robots.txt"));
    bool allowed = rules.allowed(path);
    FUZZ_CHECK(allowed == rules.refusing_rule(path).empty() || path == "/robots.txt");
    (void)rules.crawl_delay_ms();
  }
  for (unsigned char c : uvget::robots_normalise(path)) FUZZ_CHECK(c > 0x20 && c < 0x7f);
  FUZZ_CHECK(uvget::robots_match("", path));  // the empty pattern matches every path
  return 0;
}
