// Unit tests for --skip-done's reader: the records --json writes are read back, and nothing
// else counts as done.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "cli/done_list.hpp"
#include "cli/report.hpp"

namespace uvget::cli {
namespace {

TransferResult done(std::string url, std::uint64_t bytes, std::uint64_t resumed = 0) {
  TransferResult r;
  r.url = std::move(url);
  r.final_url = r.url;
  r.status = 200;
  r.bytes = bytes;
  r.resumed_from = resumed;
  r.attempts = 1;
  return r;
}

TEST(DoneList, RecordsAsJsonWritesThemAreReadBack) {
  std::string weird = "http://h/caf\xC3\xA9 \"quoted\"\\tab\t\x01";
  for (const auto& [r, path] : {std::pair{done("http://h/a", 123), std::string("out/a")},
                                std::pair{done(weird, 5, 7), std::string("out/we\"ird\n")}}) {
    std::string line = json_record(r, path);
    RecordScratch scratch;
    auto d = parse_done_record(line, scratch);
    ASSERT_TRUE(d) << line;
    EXPECT_EQ(d->url, r.url);
    EXPECT_EQ(d->path, path);
    EXPECT_EQ(d->bytes, r.bytes);
    EXPECT_EQ(d->size(), r.bytes + r.resumed_from);
    EXPECT_EQ(d->status, 200);
  }
  TransferResult tagged = done("http://h/t", 3);
  tagged.etag = "W/\"x\\y\"";
  tagged.last_modified = "Tue, 01 Dec 2026 10:00:00 GMT";
  std::string tagged_line = json_record(tagged, "t");
  RecordScratch scratch;
  auto t = parse_done_record(tagged_line, scratch);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->etag, tagged.etag);
  EXPECT_EQ(t->last_modified, tagged.last_modified);
  TransferResult skipped = done("http://h/s", 9);
  EXPECT_TRUE(parse_done_record(json_record(skipped, "s", /*skipped=*/true), scratch));
}

TEST(DoneList, FailuresLinesWithoutAPathAndJunkAreNotDone) {
  RecordScratch scratch;
  auto parse_done_record = [&](std::string_view line) {
    return cli::parse_done_record(line, scratch);
  };
  TransferResult failed = done("http://h/f", 0);
  failed.error = Error(Errc::http_status, "HTTP 404");
  EXPECT_FALSE(parse_done_record(json_record(failed, "")));
  EXPECT_FALSE(parse_done_record(json_record(done("http://h/d", 10), "")));  // --discard
  EXPECT_FALSE(parse_done_record(json_not_started("http://h/n", 3)));
  for (const char* junk : {"", "{", "not json", "[1,2]", "{\"url\":\"x\"}",
                           "{\"url\":\"x\",\"path\":\"p\",\"bytes\":1}",  // no error field
                           "{\"url\":\"x\",\"path\":\"p\",\"bytes\":\"1\",\"error\":null}",
                           "{\"url\":\"x\\q\",\"path\":\"p\",\"bytes\":1,\"error\":null}",
                           "{\"url\":\"x\",\"path\":\"p\\u0000q\",\"bytes\":1,\"error\":null}"})
    EXPECT_FALSE(parse_done_record(junk)) << junk;
  EXPECT_TRUE(parse_done_record(
      " { \"url\" : \"x\" , \"extra\" : {\"a\":[1,{\"b\":null}]}, \"path\":\"p\", \"bytes\": 4 ,"
      " \"error\" : null } "));
}

TEST(DoneList, TheLastRecordOfAUrlWinsAndPasswordsCompareMasked) {
  DoneList list;
  EXPECT_TRUE(list.add_line(json_record(done("http://h/a", 1), "a")));
  EXPECT_TRUE(list.add_line(json_record(done("http://h/a", 2), "a.1")));
  EXPECT_TRUE(list.add_line(json_record(done("http://bob:secret@h/p", 3), "p")));
  EXPECT_FALSE(list.add_line("garbage"));
  EXPECT_EQ(list.size(), 2u);
  ASSERT_TRUE(list.find("http://h/a"));
  EXPECT_EQ(list.find("http://h/a")->path, "a.1");
  ASSERT_TRUE(list.find("http://bob:secret@h/p"));
  EXPECT_EQ(list.find("http://bob:secret@h/p")->bytes, 3u);
  EXPECT_FALSE(list.find("http://h/b"));
}

// The index grows from empty through many doublings, later records replace earlier ones, and
// every record is found as a plain map would have it, its strings NUL-terminated for stat(2).
TEST(DoneList, ManyRecordsMatchAPlainMap) {
  DoneList list;
  std::map<std::string, std::pair<std::string, std::uint64_t>> model;
  std::mt19937 rng(7);
  for (int i = 0; i < 30000; ++i) {
    std::string url = "http://h" + std::to_string(rng() % 50) + "/" + std::to_string(rng() % 20000);
    if (i % 97 == 0) url += "/\u00e9\"quoted\"";  // escaped in its record
    std::string path = "out/" + std::to_string(i);
    std::uint64_t bytes = rng() % 100000;
    TransferResult r = done(url, bytes);
    if (i % 5 == 0) r.etag = "\"e" + std::to_string(i) + "\"";
    ASSERT_TRUE(list.add_line(json_record(r, path)));
    model[url] = {path, bytes};
  }
  EXPECT_EQ(list.size(), model.size());
  for (const auto& [url, want] : model) {
    auto d = list.find(url);
    ASSERT_TRUE(d) << url;
    EXPECT_EQ(d->url, url);
    EXPECT_EQ(d->path, want.first);
    EXPECT_EQ(d->path.data()[d->path.size()], '\0');
    EXPECT_EQ(d->bytes, want.second);
  }
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(list.find("http://h1/x" + std::to_string(i)));
}

}  // namespace
}  // namespace uvget::cli
