// Parsing one line of a URL list.
#include "cli/list_line.hpp"

namespace uvget::cli {
namespace {

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<ListLine> parse_list_line(std::string_view line) {
  line = trim(line);
  if (line.empty() || line.front() == '#') return std::nullopt;
  ListLine out;
  auto tab = line.find('\t');
  out.url = trim(line.substr(0, tab));
  if (tab != std::string_view::npos) out.checksum = trim(line.substr(tab + 1));
  return out;
}

}  // namespace uvget::cli
