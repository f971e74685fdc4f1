// A reader for the flat JSON objects of --json records: strings with their escapes, numbers,
// null, and one nested object (the error), which marks a record as not done.
#include "cli/done_list.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cstring>

#include "cli/report.hpp"

namespace uvget::cli {
namespace {

struct Reader {
  std::string_view s;
  std::size_t i = 0;

  // Past the bytes from `at` that need no look (not '"', '\\' or a control), eight at a time:
  // a word's bytes are flagged with the usual carry tricks, and the lowest flag is exact.
  std::size_t plain_run(std::size_t at) const {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
    auto zero_byte = [](std::uint64_t x) { return (x - kOnes) & ~x & kHighs; };
    while (at + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + at, 8);
      std::uint64_t flags = zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\')) |
                            ((w - kOnes * 0x20) & ~w & kHighs);
      if (flags) {
        if constexpr (std::endian::native == std::endian::little)
          return at + static_cast<std::size_t>(std::countr_zero(flags)) / 8;
        else
          return at;  // the byte loop finds it
      }
      at += 8;
    }
    return at;
  }

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
  // A string: a view into the line when it has no escapes (the common case, no copy), else
  // decoded into `scratch` and a view of that.
  bool string(std::string_view& out, std::string& scratch) {
    if (!eat('"')) return false;
    std::size_t start = i;
    i = plain_run(i);
    for (; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        out = s.substr(start, i++ - start);
        return true;
      }
      if (c == '\\') break;
      if (c < 0x20) return false;
    }
    scratch.assign(s.substr(start, i - start));
    if (!escaped(scratch)) return false;
    out = scratch;
    return true;
  }
  // The rest of a string from its first backslash, decoded onto `out`.
  bool escaped(std::string& out) {
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
  bool skip(std::string& scratch, int depth = 0) {
    space();
    if (i >= s.size() || depth > 8) return false;
    char c = s[i];
    if (c == '"') {
      std::string_view ignored;
      return string(ignored, scratch);
    }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i;
      if (eat(close)) return true;
      do {
        if (c == '{') {
          std::string_view key;
          if (!string(key, scratch) || !eat(':')) return false;
        }
        if (!skip(scratch, depth + 1)) return false;
      } while (eat(','));
      return eat(close);
    }
    if (literal("null") || literal("true") || literal("false")) return true;
    std::uint64_t n = 0;
    return number(n);
  }
};

}  // namespace

std::optional<DoneRecord> parse_done_record(std::string_view line, RecordScratch& scratch) {
  Reader r{line};
  if (!r.eat('{')) return std::nullopt;
  DoneRecord d;
  bool has_url = false, has_path = false, has_bytes = false, error_null = false;
  if (!r.eat('}')) {
    do {
      std::string_view key;
      if (!r.string(key, scratch.key) || !r.eat(':')) return std::nullopt;
      if (key == "url") {
        if (!r.string(d.url, scratch.url)) return std::nullopt;
        has_url = true;
      } else if (key == "path") {
        if (r.literal("null")) continue;
        if (!r.string(d.path, scratch.path)) return std::nullopt;
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
      } else if (key == "etag") {
        if (!r.string(d.etag, scratch.etag)) return std::nullopt;
      } else if (key == "last_modified") {
        if (!r.string(d.last_modified, scratch.last_modified)) return std::nullopt;
      } else if (key == "error") {
        if (r.literal("null")) {
          error_null = true;
        } else if (!r.skip(scratch.key)) {
          return std::nullopt;
        }
      } else if (!r.skip(scratch.key)) {
        return std::nullopt;
      }
    } while (r.eat(','));
    if (!r.eat('}')) return std::nullopt;
  }
  // A path with a NUL in it cannot be a file's (and the list keeps paths NUL-terminated).
  if (!has_url || !has_path || !has_bytes || !error_null ||
      d.path.find('\0') != std::string_view::npos)
    return std::nullopt;
  return d;
}

namespace {
constexpr std::size_t kBlock = 256 * 1024;
std::uint64_t hash_of(std::string_view s) noexcept {
  return std::hash<std::string_view>{}(s);
}
}  // namespace

void DoneList::reserve(std::size_t n) {
  records_.reserve(n);
  std::size_t slots = 16;
  while (slots * 7 < n * 10) slots *= 2;
  if (slots > slots_.size()) grow(slots);
}

// The record's four strings, each with a NUL after it, together in the current block.
const char* DoneList::copy(const DoneRecord& d) {
  std::size_t need = d.url.size() + d.path.size() + d.etag.size() + d.last_modified.size() + 4;
  if (block_used_ + need > block_size_) {
    block_size_ = std::max(kBlock, need);
    blocks_.push_back(std::make_unique<char[]>(block_size_));
    block_used_ = 0;
  }
  char* at = blocks_.back().get() + block_used_;
  char* p = at;
  for (std::string_view part : {d.url, d.path, d.etag, d.last_modified}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
    *p++ = '\0';
  }
  block_used_ += need;
  return at;
}

DoneRecord DoneList::view(const Stored& s) {
  DoneRecord d;
  const char* p = s.text;
  d.url = {p, s.url_len};
  p += s.url_len + 1;
  d.path = {p, s.path_len};
  p += s.path_len + 1;
  d.etag = {p, s.etag_len};
  p += s.etag_len + 1;
  d.last_modified = {p, s.last_modified_len};
  d.status = s.status;
  d.bytes = s.bytes;
  d.resumed_from = s.resumed_from;
  return d;
}

// The slot holding `url`, or the empty slot where it would go.
std::size_t DoneList::slot_of(std::string_view url, std::uint64_t hash) const {
  std::size_t mask = slots_.size() - 1;
  auto tag = static_cast<std::uint32_t>(hash >> 32);
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.record == 0) return i;
    if (slot.tag == tag) {
      const Stored& s = records_[slot.record - 1];
      if (std::string_view(s.text, s.url_len) == url) return i;
    }
  }
}

void DoneList::grow(std::size_t slots) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slots, Slot{0, 0});
  for (const Slot& slot : old) {
    if (slot.record == 0) continue;
    const Stored& s = records_[slot.record - 1];
    slots_[slot_of({s.text, s.url_len}, hash_of({s.text, s.url_len}))] = slot;
  }
}

bool DoneList::add_line(std::string_view line) {
  std::optional<DoneRecord> d = parse_done_record(line, scratch_);
  if (!d || d->url.size() > UINT32_MAX || d->path.size() > UINT32_MAX ||
      d->etag.size() > UINT32_MAX || d->last_modified.size() > UINT32_MAX ||
      records_.size() >= UINT32_MAX - 2)
    return false;
  Stored s{copy(*d),
           static_cast<std::uint32_t>(d->url.size()),
           static_cast<std::uint32_t>(d->path.size()),
           static_cast<std::uint32_t>(d->etag.size()),
           static_cast<std::uint32_t>(d->last_modified.size()),
           d->bytes,
           d->resumed_from,
           d->status};
  std::uint64_t hash = hash_of(d->url);
  // The index is a table larger than the caches: each record goes in one line late, its slot
  // fetched from memory while the next line is read.
  settle();
  if ((records_.size() + 2) * 10 > slots_.size() * 7)
    grow(std::max<std::size_t>(16, slots_.size() * 2));
  __builtin_prefetch(&slots_[hash & (slots_.size() - 1)], 1);
  held_ = Held{s, hash};
  return true;
}

void DoneList::settle() {
  if (!held_) return;
  const Held h = *held_;
  held_.reset();
  Slot& slot = slots_[slot_of({h.record.text, h.record.url_len}, h.hash)];
  if (slot.record != 0) {
    records_[slot.record - 1] = h.record;  // the later record wins; the earlier one's text stays
  } else {
    records_.push_back(h.record);
    slot =
        Slot{static_cast<std::uint32_t>(h.hash >> 32), static_cast<std::uint32_t>(records_.size())};
  }
}

std::uint32_t DoneList::find_index(std::string_view url) {
  settle();
  if (slots_.empty()) return 0;
  // Records mask passwords: a URL with user information is looked up masked.
  std::string masked;
  if (url.find('@') != std::string_view::npos) url = masked = mask_credentials(url);
  // A re-run asks in about the order the records were written: the record after the last one
  // found is tried first, without hashing and in memory order.
  if (next_ < records_.size()) {
    const Stored& s = records_[next_];
    if (std::string_view(s.text, s.url_len) == url) return static_cast<std::uint32_t>(++next_);
  }
  const Slot& slot = slots_[slot_of(url, hash_of(url))];
  if (slot.record != 0) next_ = slot.record;  // the one after it
  return slot.record;
}

DirStat::~DirStat() {
  if (fd_ >= 0) ::close(fd_);
}

int DirStat::stat(std::string_view path, struct ::stat& st) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size())
    return ::stat(path.data(), &st);
  std::string_view dir = path.substr(0, slash);
  if (fd_ < 0 || dir != dir_) {
    if (fd_ >= 0) ::close(fd_);
    dir_.assign(dir);
    fd_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) return ::stat(path.data(), &st);  // its own errno
  }
  return ::fstatat(fd_, path.data() + slash + 1, &st, 0);
}

}  // namespace uvget::cli
