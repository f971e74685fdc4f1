// DoneList: the records of an earlier run (the JSON lines --json writes), read for --skip-done.
// A URL recorded as done (no error, a path) is known with its file's path and size, so a re-run
// can skip it without a request when that file is still there with that size. Pure: reading
// the file is the caller's (load() takes its text line by line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace uvget::cli {

/// The fields of one record that --skip-done needs; nullopt for a line that is not a record of
/// a finished download (an error, no path, not JSON).
struct DoneRecord {
  std::string url;  // as recorded (passwords masked)
  std::string path;
  int status = 0;
  std::uint64_t bytes = 0;          // received in that run
  std::uint64_t resumed_from = 0;   // already there before it: the file is both together
  std::string etag, last_modified;  // of the response it came from ("" when none)
  std::uint64_t size() const noexcept { return resumed_from + bytes; }
};
std::optional<DoneRecord> parse_done_record(std::string_view line);

class DoneList {
 public:
  /// Adds the record on `line`, if it is one of a finished download; a later record of the
  /// same URL replaces an earlier one (the file a re-run wrote last is the one there).
  /// Returns whether it was.
  bool add_line(std::string_view line);
  /// The record of `url` (compare masked: records mask passwords), or null.
  const DoneRecord* find(std::string_view url) const;
  std::size_t size() const noexcept { return by_url_.size(); }
  /// Room for about this many records (read from a file of known size).
  void reserve(std::size_t n) { by_url_.reserve(n); }

 private:
  // Looked up by string_view, without a copy of the URL.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, DoneRecord, Hash, std::equal_to<>> by_url_;
};

}  // namespace uvget::cli
