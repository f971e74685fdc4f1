// RFC 9309: groups by user-agent, the longest matching Allow/Disallow rule, '*' and '$'.
#include "core/robots.hpp"

#include <cmath>
#include <cstdlib>

#include "text.hpp"

namespace uvget {
namespace {

constexpr std::string_view kBlanks = " \t\r";

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

}  // namespace

std::string robots_token(std::string_view user_agent) {
  std::size_t n = 0;
  while (n < user_agent.size() && token_char(user_agent[n])) ++n;
  return std::string(user_agent.substr(0, n));
}

std::string robots_normalise(std::string_view s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      auto v = static_cast<unsigned char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      if (unreserved(v)) {
        out.push_back(static_cast<char>(v));
      } else {
        out.push_back('%');
        out.push_back(digits[v >> 4]);
        out.push_back(digits[v & 15]);
      }
      i += 2;
    } else if (c <= 0x20 || c >= 0x7f) {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

bool robots_match(std::string_view pattern, std::string_view path) {
  bool anchored = !pattern.empty() && pattern.back() == '$';
  if (anchored) pattern.remove_suffix(1);
  // Greedy wildcard matching that backs up to the last '*': O(len(pattern) * len(path)) at
  // worst, never exponential.
  std::size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (p == pattern.size() && !anchored) {
      return true;  // the whole pattern matched a prefix
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

RobotsRules RobotsRules::disallow_all() {
  RobotsRules r;
  r.disallow_all_ = true;
  return r;
}

RobotsRules RobotsRules::parse(std::string_view text, std::string_view token) {
  if (text.size() > kMaxBytes) text = text.substr(0, kMaxBytes);
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  RobotsRules mine, star;
  bool any_mine = false, any_star = false;
  bool group_mine = false, group_star = false;  // the group being read applies to us, to '*'
  bool in_agents = false;                       // the last line was a user-agent line
  bool mine_delay = false, star_delay = false;
  while (!text.empty()) {
    std::size_t eol = text.find_first_of("\r\n");
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (std::size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, colon), kBlanks);
    std::string_view value = trim(line.substr(colon + 1), kBlanks);
    if (iequals(key, "user-agent")) {
      if (!in_agents) group_mine = group_star = false;  // a new group starts
      in_agents = true;
      std::string_view agent = value.substr(0, value.find_first_of(" \t/"));
      if (agent == "*") {
        group_star = any_star = true;
      } else {
        std::size_t n = 0;
        while (n < agent.size() && token_char(agent[n])) ++n;
        if (n > 0 && !token.empty() && iequals(agent.substr(0, n), token))
          group_mine = any_mine = true;
      }
      continue;
    }
    bool allow = iequals(key, "allow");
    if (allow || iequals(key, "disallow")) {
      in_agents = false;
      if (value.empty()) continue;  // "Disallow:" with nothing allows everything: no rule
      Rule rule{allow, robots_normalise(value),
                std::string(allow ? "Allow: " : "Disallow: ") + std::string(value)};
      if (group_mine) mine.rules_.push_back(rule);
      if (group_star) star.rules_.push_back(std::move(rule));
      continue;
    }
    if (iequals(key, "crawl-delay")) {
      in_agents = false;
      std::string v(value);
      char* end = nullptr;
      double secs = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(secs) || secs < 0) continue;
      auto ms = static_cast<std::uint64_t>(std::min(secs, 86400.0) * 1000);
      if (group_mine && !mine_delay) {
        mine.crawl_delay_ms_ = ms;
        mine_delay = true;
      }
      if (group_star && !star_delay) {
        star.crawl_delay_ms_ = ms;
        star_delay = true;
      }
      continue;
    }
    // Other lines (Sitemap, unknown keys) end a run of user-agent lines but not the group.
    in_agents = false;
  }
  if (any_mine) return mine;
  if (any_star) return star;
  return {};
}

const RobotsRules::Rule* RobotsRules::decide(std::string_view target) const {
  std::string path = robots_normalise(target);
  const Rule* best = nullptr;
  for (const Rule& r : rules_) {
    if (!robots_match(r.pattern, path)) continue;
    if (!best || r.pattern.size() > best->pattern.size() ||
        (r.pattern.size() == best->pattern.size() && r.allow && !best->allow))
      best = &r;
  }
  return best;
}

bool RobotsRules::allowed(std::string_view target) const {
  if (target == "/robots.txt") return true;  // implicitly allowed (RFC 9309, 2.2.2)
  if (disallow_all_) return false;
  const Rule* r = decide(target);
  return !r || r->allow;
}

std::string RobotsRules::refusing_rule(std::string_view target) const {
  if (disallow_all_) return "robots.txt could not be fetched";
  const Rule* r = decide(target);
  return r && !r->allow ? r->text : std::string();
}

}  // namespace uvget
