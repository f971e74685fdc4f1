// Fuzz target: one line of a -i URL list. Properties: blank lines and comments give nothing; an
// option line is indented and has a key without '='; a URL is never empty, never a comment,
// never holds a tab and has no blanks around it; the checksum and the mirrors have none either;
// all are parts of the line. The URL then goes through the URL parser.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

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
  if (line->kind == uvget::cli::ListLine::Kind::option) {
    FUZZ_CHECK(line->url.empty() && line->mirrors.empty());
    FUZZ_CHECK(!line->key.empty() && inside(line->key, in) && inside(line->value, in));
    FUZZ_CHECK(line->key.find('=') == std::string_view::npos);
    FUZZ_CHECK(blank(in.front()));  // only an indented line is an option
    return 0;
  }
  FUZZ_CHECK(!line->url.empty());
  FUZZ_CHECK(line->url.front() != '#');
  FUZZ_CHECK(line->url.find('\t') == std::string_view::npos);
  std::vector<std::string_view> parts = {line->url, line->checksum};
  parts.insert(parts.end(), line->mirrors.begin(), line->mirrors.end());
  for (std::string_view part : parts) {
    FUZZ_CHECK(inside(part, in));
    FUZZ_CHECK(part.find('\t') == std::string_view::npos);
    FUZZ_CHECK(part.empty() || (!blank(part.front()) && !blank(part.back())));
  }
  for (std::string_view m : line->mirrors) FUZZ_CHECK(!m.empty());
  (void)uvget::Url::parse(line->url);
  return 0;
}
