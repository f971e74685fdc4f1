// Fuzz target: the records a re-run reads (--skip-done, --if-changed), which may be any file.
// Properties: a record read is one of a finished download (a path without NUL); once written
// back, reading and writing it again gives the same line (the reader and the writer agree); and a
// DoneList fed every line finds, for each URL, the last record of it, as a plain map would.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cli/done_list.hpp"
#include "cli/report.hpp"
#include "fuzz_check.hpp"

namespace {

std::string write_back(const uvget::cli::DoneRecord& d) {
  uvget::TransferResult r;
  r.url = d.url;
  r.status = d.status;
  r.bytes = d.bytes;
  r.resumed_from = d.resumed_from;
  r.etag = d.etag;
  r.last_modified = d.last_modified;
  return uvget::cli::json_record(r, d.path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uvget::cli::DoneList list;
  std::map<std::string, std::string> model;  // masked URL -> path of its last record
  uvget::cli::RecordScratch scratch, again_scratch, third_scratch;
  while (!in.empty()) {
    std::size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    auto d = uvget::cli::parse_done_record(line, scratch);
    FUZZ_CHECK(list.add_line(line) == d.has_value());
    if (!d) continue;
    FUZZ_CHECK(!d->path.empty() && d->path.find('\0') == std::string_view::npos);
    // Written once, invalid UTF-8 becomes U+FFFD; from then on the line stays the same.
    std::string once = write_back(*d);
    auto again = uvget::cli::parse_done_record(once, again_scratch);
    FUZZ_CHECK(again.has_value());
    std::string twice = write_back(*again);
    auto third = uvget::cli::parse_done_record(twice, third_scratch);
    FUZZ_CHECK(third.has_value() && write_back(*third) == twice);
    model[std::string(d->url)] = std::string(d->path);
  }
  FUZZ_CHECK(list.size() == model.size());
  for (const auto& [url, path] : model) {
    if (url.find('@') != std::string::npos) continue;  // looked up masked: not the same key
    auto found = list.find(url);
    FUZZ_CHECK(found.has_value() && found->path == path && found->url == url);
  }
  return 0;
}
