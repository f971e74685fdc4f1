// One line of a URL list (-i): "URL", or "URL<TAB>ALGO=HEX" with the digest the body must have.
#pragma once

#include <optional>
#include <string_view>

namespace uvget::cli {

struct ListLine {
  std::string_view url;       // never empty, never with a tab, trimmed
  std::string_view checksum;  // what follows the tab, trimmed; empty when none
};

/// nullopt for a blank line or a comment ('#' first, after blanks).
std::optional<ListLine> parse_list_line(std::string_view line);

}  // namespace uvget::cli
