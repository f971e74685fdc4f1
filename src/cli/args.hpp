// The command line's own option parser: GNU-style options (--name value, --name=value, -x value,
// -xvalue, -qv, --), each taking exactly one value per occurrence wherever it stands among the
// operands; a mistyped name gets the nearest real one suggested; help grouped by purpose and
// wrapped to a width. No I/O: parse() returns an error text, help() a string.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uvget::cli {

class ArgParser {
 public:
  /// Handles one value of an option; returns an error text ("expected a number from 1 to 64")
  /// or nullopt.
  using Apply = std::function<std::optional<std::string>(const std::string& value)>;

  /// Starts a group of options in the help ("Output", "Connections", ...).
  void group(std::string title);
  /// An option with a value named `arg` in the help ("N", "DIR"). `short_name` 0: none.
  void option(std::string long_name, char short_name, std::string arg, std::string help,
              Apply apply);
  /// An option without a value.
  void flag(std::string long_name, char short_name, std::string help, std::function<void()> set);

  /// Parses argv[1..]; operands (URLs) go to `operands` in order. Returns the first error as
  /// one line ("unknown option '--conect-timeout' (did you mean --connect-timeout?)"), or "".
  std::string parse(int argc, const char* const* argv, std::vector<std::string>& operands);
  /// The options by group, lines at most `width` columns wide.
  std::string help(std::size_t width) const;
  /// The long name nearest to `name` (edit distance up to 2, or a unique prefix), or "".
  std::string suggest(std::string_view name) const;
  /// Every long name, for documentation checks.
  std::vector<std::string> long_names() const;

 private:
  struct Spec {
    std::string long_name;
    char short_name = 0;
    std::string arg;  // empty: a flag
    std::string help;
    Apply apply;
    std::function<void()> set;
    std::size_t group = 0;
  };
  const Spec* find_long(std::string_view name) const;
  const Spec* find_short(char c) const;
  std::string apply(const Spec& spec, const std::string& value, std::string_view as) const;

  std::vector<std::string> groups_;
  std::vector<Spec> specs_;
};

/// Helpers for Apply: a whole number in [lo, hi]; a non-negative decimal number of seconds;
/// one of `choices`.
ArgParser::Apply int_in(int* out, int lo, int hi);
ArgParser::Apply seconds(double* out, bool zero_ok);
ArgParser::Apply one_of(std::string* out, std::vector<std::string> choices);
ArgParser::Apply text(std::string* out);

}  // namespace uvget::cli
