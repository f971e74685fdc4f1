// A reader for the flat JSON objects of --json records: strings with their escapes, numbers,
// null, and one nested object (the error), which marks a record as not done.
#include "cli/done_list.hpp"

#include <charconv>

#include "cli/report.hpp"

namespace uvget::cli {
namespace {

struct Reader {
  std::string_view s;
  std::size_t i = 0;

  void space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  }
  bool eat(char c) {
    space();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool u4(unsigned& cp) {
    if (i + 4 > s.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      int h = hex(s[i++]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<unsigned>(h);
    }
    return true;
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    out.clear();
    while (i < s.size()) {
      char c = s[i++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      switch (char e = s[i++]) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          unsigned cp = 0;
          if (!u4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            unsigned lo = 0;
            if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') return false;
            i += 2;
            if (!u4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool number(std::uint64_t& out) {
    space();
    std::size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' ||
                            s[i] == 'e' || s[i] == 'E' || s[i] == '+'))
      ++i;
    std::string_view text = s.substr(start, i - start);
    std::size_t dot = text.find_first_of(".eE");
    std::string_view whole = text.substr(0, dot);
    if (whole.empty() || whole[0] == '-') return !whole.empty();  // negative or fractional: ignored
    auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), out);
    return ec == std::errc() && end == whole.data() + whole.size();
  }
  bool literal(std::string_view word) {
    space();
    if (s.substr(i, word.size()) != word) return false;
    i += word.size();
    return true;
  }
  // Skips any value (for fields not needed, and the error object).
  bool skip(int depth = 0) {
    space();
    if (i >= s.size() || depth > 8) return false;
    char c = s[i];
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i;
      if (eat(close)) return true;
      do {
        if (c == '{') {
          std::string key;
          if (!string(key) || !eat(':')) return false;
        }
        if (!skip(depth + 1)) return false;
      } while (eat(','));
      return eat(close);
    }
    if (literal("null") || literal("true") || literal("false")) return true;
    std::uint64_t n = 0;
    return number(n);
  }
};

}  // namespace

std::optional<DoneRecord> parse_done_record(std::string_view line) {
  Reader r{line};
  if (!r.eat('{')) return std::nullopt;
  DoneRecord d;
  bool has_url = false, has_path = false, has_bytes = false, error_null = false;
  if (!r.eat('}')) {
    do {
      std::string key;
      if (!r.string(key) || !r.eat(':')) return std::nullopt;
      if (key == "url") {
        if (!r.string(d.url)) return std::nullopt;
        has_url = true;
      } else if (key == "path") {
        if (r.literal("null")) continue;
        if (!r.string(d.path)) return std::nullopt;
        has_path = !d.path.empty();
      } else if (key == "bytes" || key == "resumed_from" || key == "status") {
        std::uint64_t n = 0;
        if (!r.number(n)) return std::nullopt;
        if (key == "bytes") {
          d.bytes = n;
          has_bytes = true;
        } else if (key == "resumed_from") {
          d.resumed_from = n;
        } else {
          d.status = static_cast<int>(n);
        }
      } else if (key == "etag" || key == "last_modified") {
        if (!r.string(key == "etag" ? d.etag : d.last_modified)) return std::nullopt;
      } else if (key == "error") {
        if (r.literal("null")) {
          error_null = true;
        } else if (!r.skip()) {
          return std::nullopt;
        }
      } else if (!r.skip()) {
        return std::nullopt;
      }
    } while (r.eat(','));
    if (!r.eat('}')) return std::nullopt;
  }
  if (!has_url || !has_path || !has_bytes || !error_null) return std::nullopt;
  return d;
}

bool DoneList::add_line(std::string_view line) {
  auto d = parse_done_record(line);
  if (!d) return false;
  auto it = by_url_.find(std::string_view(d->url));
  if (it != by_url_.end()) {
    it->second = std::move(*d);
  } else {
    std::string key = d->url;
    by_url_.emplace(std::move(key), std::move(*d));
  }
  return true;
}

const DoneRecord* DoneList::find(std::string_view url) const {
  // Records mask passwords: a URL with user information is looked up masked.
  auto it = url.find('@') == std::string_view::npos ? by_url_.find(url)
                                                    : by_url_.find(mask_credentials(url));
  return it == by_url_.end() ? nullptr : &it->second;
}

}  // namespace uvget::cli
