// DoneList: the records of an earlier run (the JSON lines --json writes), read for --skip-done
// and --if-changed. A URL recorded as done (no error, a path) is known with its file's path and
// size, so a re-run can skip it without a request when that file is still there with that size.
// Pure: reading the file is the caller's (add_line() takes its text line by line).
//
// Built for a million records read at start-up: the strings of each record are copied once into
// large blocks, and the index is one open-addressed table of 8-byte slots, so a record costs its
// strings plus about 60 bytes, and there is no allocation per record and nothing to free one by
// one at exit.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uvget::cli {

/// The fields of one record that a re-run needs. The views point into the DoneList that
/// returned it (each NUL-terminated there), or into parse_done_record's line and scratch.
struct DoneRecord {
  std::string_view url;  // as recorded (passwords masked)
  std::string_view path;
  std::string_view etag, last_modified;  // of the response it came from ("" when none)
  int status = 0;
  std::uint64_t bytes = 0;         // received in that run
  std::uint64_t resumed_from = 0;  // already there before it: the file is both together
  std::uint64_t size() const noexcept { return resumed_from + bytes; }
};

/// Room for the strings of a record that has escapes in them (a view points here then).
struct RecordScratch {
  std::string key, url, path, etag, last_modified;
};

/// The record on `line` if it is one of a finished download (no error, a path, bytes); nullopt
/// for anything else (an error, no path, not JSON). Its views point into `line` or `scratch`.
std::optional<DoneRecord> parse_done_record(std::string_view line, RecordScratch& scratch);

class DoneList {
 public:
  DoneList() = default;
  DoneList(const DoneList&) = delete;
  DoneList& operator=(const DoneList&) = delete;

  /// Adds the record on `line`, if it is one of a finished download; a later record of the
  /// same URL replaces an earlier one (the file a re-run wrote last is the one there).
  /// Returns whether it was.
  bool add_line(std::string_view line);
  /// The record of `url` (compared masked: records mask passwords); views into this list.
  /// Fastest when asked in the order the records were read.
  std::optional<DoneRecord> find(std::string_view url) {
    std::uint32_t i = find_index(url);
    return i ? std::optional<DoneRecord>(at(i)) : std::nullopt;
  }
  /// The same as a number for at(): 0 when there is none.
  std::uint32_t find_index(std::string_view url);
  DoneRecord at(std::uint32_t index) const { return view(records_[index - 1]); }
  std::size_t size() {
    settle();
    return records_.size();
  }
  /// Room for about this many records (read from a file of known size).
  void reserve(std::size_t n);

 private:
  struct Stored {
    const char* text;  // url, path, etag, last_modified, each followed by a NUL
    std::uint32_t url_len, path_len, etag_len, last_modified_len;
    std::uint64_t bytes, resumed_from;
    std::int32_t status;
  };
  struct Slot {
    std::uint32_t tag;     // the hash's high half: most misses end here
    std::uint32_t record;  // index into records_ plus one; 0 is empty
  };
  const char* copy(const DoneRecord& d);
  static DoneRecord view(const Stored& s);
  std::size_t slot_of(std::string_view url, std::uint64_t hash) const;
  void grow(std::size_t slots);
  void settle();  // puts the held record in the index

  struct Held {
    Stored record;
    std::uint64_t hash;
  };
  std::optional<Held> held_;  // the last record added, not yet in the index
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::size_t block_used_ = 0, block_size_ = 0;
  std::vector<Stored> records_;
  std::vector<Slot> slots_;  // a power of two long, at most 70 % full
  std::size_t next_ = 0;     // the record after the one found last
  RecordScratch scratch_;
};

/// stat(2) of the files records name, through a descriptor of the last directory asked about:
/// a re-run's files are mostly in a few directories, and walking one path component instead of
/// every one is most of the cost of a million stats.
class DirStat {
 public:
  DirStat() = default;
  DirStat(const DirStat&) = delete;
  DirStat& operator=(const DirStat&) = delete;
  ~DirStat();
  /// As stat(2) of `path`, which must be followed by a NUL (DoneList's views are).
  int stat(std::string_view path, struct ::stat& st);

 private:
  std::string dir_;
  int fd_ = -1;
};

}  // namespace uvget::cli
