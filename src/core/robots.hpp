// robots.txt (RFC 9309): the rules of one origin for one crawler, parsed from the file's text,
// and the question whether a URL path may be fetched. No I/O: the client fetches the file and
// keeps one RobotsRules per origin; tests/unit/robots_test.cpp checks the parser and matcher.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uvget {

/// The product token of a User-Agent header: "uvget/0.1" -> "uvget", "MyBot (+http://x)" ->
/// "MyBot". What robots.txt groups are matched against (case-insensitively).
std::string robots_token(std::string_view user_agent);

class RobotsRules {
 public:
  /// The bytes parsed at most (RFC 9309 asks for at least 500 KiB); the rest is ignored.
  static constexpr std::size_t kMaxBytes = 512 * 1024;

  /// Everything allowed (no robots.txt, or a 4xx for it).
  RobotsRules() = default;
  /// The groups of `text` for `token`: the groups naming it (merged), else those for `*`, else
  /// none (everything allowed).
  static RobotsRules parse(std::string_view text, std::string_view token);
  /// Nothing allowed (robots.txt could not be had: a 5xx, or unreachable).
  static RobotsRules disallow_all();

  /// `target` (the path and query of a URL, as sent) may be fetched: the longest matching rule
  /// decides, an Allow winning a tie; no matching rule allows.
  bool allowed(std::string_view target) const;
  /// The rule that refused `target` ("Disallow: /private"), for the error message; empty when
  /// it is allowed.
  std::string refusing_rule(std::string_view target) const;
  /// Crawl-delay of the chosen group in ms; 0 when it has none.
  std::uint64_t crawl_delay_ms() const noexcept { return crawl_delay_ms_; }
  std::size_t rule_count() const noexcept { return rules_.size(); }

 private:
  struct Rule {
    bool allow;
    std::string pattern;  // normalised; may hold '*' and end with '$'
    std::string text;     // as written, for messages
  };
  const Rule* decide(std::string_view target) const;

  std::vector<Rule> rules_;
  std::uint64_t crawl_delay_ms_ = 0;
  bool disallow_all_ = false;
};

/// `pattern` (normalised, with '*' and a final '$') matches a prefix of `path` (normalised), or
/// all of it when it ends with '$'.
bool robots_match(std::string_view pattern, std::string_view path);
/// Percent-encoding made comparable: %XX of an unreserved character decoded, other %xx
/// upper-cased, bytes outside printable ASCII encoded.
std::string robots_normalise(std::string_view s);

}  // namespace uvget
