// GNU-style option parsing with suggestions, and help text wrapped to a width.
#include "cli/args.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace uvget::cli {
namespace {

// Damerau-Levenshtein distance (adjacent swaps count one), bounded: past `limit` it stops.
std::size_t distance(std::string_view a, std::string_view b, std::size_t limit) {
  if (a.size() > b.size() + limit || b.size() > a.size() + limit) return limit + 1;
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// `text` broken into lines of at most `width` columns (words longer than that stand alone).
std::vector<std::string> wrap(std::string_view text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find(' ', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(at, end - at);
    at = end + 1;
    if (word.empty()) continue;
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

void ArgParser::group(std::string title) {
  groups_.push_back(std::move(title));
}

void ArgParser::option(std::string long_name, char short_name, std::string arg, std::string help,
                       Apply apply) {
  specs_.push_back({std::move(long_name), short_name, std::move(arg), std::move(help),
                    std::move(apply), nullptr, groups_.empty() ? 0 : groups_.size() - 1});
}

void ArgParser::flag(std::string long_name, char short_name, std::string help,
                     std::function<void()> set) {
  specs_.push_back({std::move(long_name), short_name, "", std::move(help), nullptr, std::move(set),
                    groups_.empty() ? 0 : groups_.size() - 1});
}

const ArgParser::Spec* ArgParser::find_long(std::string_view name) const {
  for (const Spec& s : specs_)
    if (s.long_name == name) return &s;
  return nullptr;
}

const ArgParser::Spec* ArgParser::find_short(char c) const {
  for (const Spec& s : specs_)
    if (s.short_name == c) return &s;
  return nullptr;
}

std::string ArgParser::apply(const Spec& spec, const std::string& value,
                             std::string_view as) const {
  if (auto why = spec.apply(value))
    return "bad value '" + value + "' for " + std::string(as) + ": " + *why;
  return "";
}

std::string ArgParser::suggest(std::string_view name) const {
  std::string best;
  std::size_t best_d = 3, prefixed = 0;
  std::string prefix_match;
  for (const Spec& s : specs_) {
    std::size_t d = distance(name, s.long_name, 2);
    if (d < best_d) {
      best_d = d;
      best = s.long_name;
    }
    if (name.size() >= 3 && s.long_name.starts_with(name)) {
      ++prefixed;
      prefix_match = s.long_name;
    }
  }
  if (!best.empty()) return best;
  return prefixed == 1 ? prefix_match : "";
}

std::string ArgParser::parse(int argc, const char* const* argv,
                             std::vector<std::string>& operands) {
  bool options_end = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (options_end || a.size() < 2 || a[0] != '-') {
      operands.push_back(std::move(a));
      continue;
    }
    if (a == "--") {
      options_end = true;
      continue;
    }
    if (a.starts_with("--")) {
      std::size_t eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const Spec* s = find_long(name);
      if (!s) {
        std::string near = suggest(name);
        return "unknown option '--" + name + "'" +
               (near.empty() ? "" : " (did you mean --" + near + "?)");
      }
      if (s->arg.empty()) {
        if (eq != std::string::npos) return "option '--" + name + "' takes no value";
        s->set();
        continue;
      }
      std::string value;
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
      } else {
        if (i + 1 >= argc) return "option '--" + name + "' needs a value (" + s->arg + ")";
        value = argv[++i];
      }
      if (std::string e = apply(*s, value, "--" + name); !e.empty()) return e;
      continue;
    }
    // Short options: flags may be grouped (-qv); one that takes a value takes the rest of the
    // word, or the next word.
    for (std::size_t k = 1; k < a.size(); ++k) {
      const Spec* s = find_short(a[k]);
      if (!s) return "unknown option '-" + std::string(1, a[k]) + "'";
      std::string as = "-" + std::string(1, a[k]);
      if (s->arg.empty()) {
        s->set();
        continue;
      }
      std::string value;
      if (k + 1 < a.size()) {
        value = a.substr(k + 1);
      } else {
        if (i + 1 >= argc) return "option '" + as + "' needs a value (" + s->arg + ")";
        value = argv[++i];
      }
      if (std::string e = apply(*s, value, as); !e.empty()) return e;
      break;
    }
  }
  return "";
}

std::string ArgParser::help(std::size_t width) const {
  constexpr std::size_t kColumn = 28;  // where the descriptions start
  std::string out;
  for (std::size_t g = 0; g < std::max<std::size_t>(groups_.size(), 1); ++g) {
    if (g < groups_.size()) out += "\n" + groups_[g] + ":\n";
    for (const Spec& s : specs_) {
      if (s.group != g) continue;
      std::string head = "  ";
      head += s.short_name ? std::string("-") + s.short_name + ", " : "    ";
      head += "--" + s.long_name;
      if (!s.arg.empty()) head += " " + s.arg;
      std::vector<std::string> lines = wrap(s.help, width > kColumn + 20 ? width - kColumn : 20);
      if (head.size() + 2 > kColumn) {
        out += head + "\n";
      } else {
        head.resize(kColumn, ' ');
        if (!lines.empty()) {
          out += head + lines.front() + "\n";
          lines.erase(lines.begin());
        } else {
          out += head + "\n";
        }
      }
      for (auto& l : lines) out += std::string(kColumn, ' ') + l + "\n";
    }
  }
  return out;
}

std::vector<std::string> ArgParser::long_names() const {
  std::vector<std::string> out;
  for (const Spec& s : specs_) out.push_back(s.long_name);
  return out;
}

ArgParser::Apply int_in(int* out, int lo, int hi) {
  return [=](const std::string& v) -> std::optional<std::string> {
    int n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
      return "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    *out = n;
    return std::nullopt;
  };
}

ArgParser::Apply seconds(double* out, bool zero_ok) {
  return [=](const std::string& v) -> std::optional<std::string> {
    char* end = nullptr;
    double d = v.empty() ? -1 : std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(d) || d < 0 || (!zero_ok && d == 0) || d > 1e9)
      return zero_ok ? "expected seconds, 0 or more" : "expected seconds, more than 0";
    *out = d;
    return std::nullopt;
  };
}

ArgParser::Apply one_of(std::string* out, std::vector<std::string> choices) {
  return [=](const std::string& v) -> std::optional<std::string> {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) {
      *out = v;
      return std::nullopt;
    }
    std::string list;
    for (auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    return "expected one of " + list;
  };
}

ArgParser::Apply text(std::string* out) {
  return [=](const std::string& v) -> std::optional<std::string> {
    *out = v;
    return std::nullopt;
  };
}

}  // namespace uvget::cli
