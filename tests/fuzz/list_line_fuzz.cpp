// Fuzz target: one line of a -i URL list. Properties: blank lines and comments give nothing; a
// URL is never empty, never a comment, never holds a tab and has no blanks around it; the checksum
// has none either; both are parts of the line. The URL then goes through the URL parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cli/list_line.hpp"
#include "fuzz_check.hpp"
#include "url.hpp"

namespace {
bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}
bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto line = uvget::cli::parse_list_line(in);
  if (!line) return 0;
  FUZZ_CHECK(!line->url.empty());
  FUZZ_CHECK(line->url.front() != '#');
  FUZZ_CHECK(line->url.find('\t') == std::string_view::npos);
  for (std::string_view part : {line->url, line->checksum}) {
    FUZZ_CHECK(inside(part, in));
    FUZZ_CHECK(part.empty() || (!blank(part.front()) && !blank(part.back())));
  }
  (void)uvget::Url::parse(line->url);
  return 0;
}
