// One line of a URL list (-i), in aria2c's input-file form:
//   URL [TAB MIRROR ...] [TAB ALGO=HEX]      a file: its URL, other URLs of the same file, and
//                                             the digest its body must have
//     out=NAME | dir=DIR | checksum=ALGO=HEX | header=NAME: VALUE
//                                             indented: an option of the file above
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace uvget::cli {

struct ListLine {
  enum class Kind { url, option };
  Kind kind = Kind::url;
  // Kind::url
  std::string_view url;                   // never empty, never with a tab or blank, trimmed
  std::string_view checksum;              // ALGO=HEX after a tab; empty when none
  std::vector<std::string_view> mirrors;  // the other URLs after tabs, in order
  // Kind::option: "key=value" of an indented line, both trimmed (value may be empty)
  std::string_view key, value;
};

/// nullopt for a blank line or a comment ('#' first, after blanks). A line that starts with a
/// blank and whose text up to '=' is a plain word (letters, digits, '-') is an option line;
/// any other is a URL line.
std::optional<ListLine> parse_list_line(std::string_view line);

}  // namespace uvget::cli
