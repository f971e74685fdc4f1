// Parsing one line of a URL list.
#include "cli/list_line.hpp"

#include "text.hpp"

namespace uvget::cli {

std::optional<ListLine> parse_list_line(std::string_view line) {
  constexpr std::string_view kBlanks = " \t\r";
  line = trim(line, kBlanks);
  if (line.empty() || line.front() == '#') return std::nullopt;
  ListLine out;
  auto tab = line.find('\t');
  out.url = trim(line.substr(0, tab), kBlanks);
  if (tab != std::string_view::npos) out.checksum = trim(line.substr(tab + 1), kBlanks);
  return out;
}

}  // namespace uvget::cli
