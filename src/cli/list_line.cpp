// Parsing one line of a URL list.
#include "cli/list_line.hpp"

#include "text.hpp"

namespace uvget::cli {
namespace {

constexpr std::string_view kBlanks = " \t\r";

bool word(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  return true;
}

// "sha-256=HEX": a digest, not a mirror. (A URL has "://" before any '='.)
bool looks_like_checksum(std::string_view field) {
  std::size_t eq = field.find('=');
  return eq != std::string_view::npos && word(field.substr(0, eq)) &&
         field.substr(0, eq).find("://") == std::string_view::npos;
}

}  // namespace

std::optional<ListLine> parse_list_line(std::string_view line) {
  bool indented = !line.empty() && (line.front() == ' ' || line.front() == '\t');
  line = trim(line, kBlanks);
  if (line.empty() || line.front() == '#') return std::nullopt;
  ListLine out;
  if (indented) {
    std::size_t eq = line.find('=');
    if (eq != std::string_view::npos && word(trim(line.substr(0, eq), kBlanks))) {
      out.kind = ListLine::Kind::option;
      out.key = trim(line.substr(0, eq), kBlanks);
      out.value = trim(line.substr(eq + 1), kBlanks);
      return out;
    }
  }
  std::size_t tab = line.find('\t');
  out.url = trim(line.substr(0, tab), kBlanks);
  while (tab != std::string_view::npos) {
    line = line.substr(tab + 1);
    tab = line.find('\t');
    std::string_view field = trim(line.substr(0, tab), kBlanks);
    if (field.empty()) continue;
    if (looks_like_checksum(field))
      out.checksum = field;
    else
      out.mirrors.push_back(field);
  }
  return out;
}

}  // namespace uvget::cli
