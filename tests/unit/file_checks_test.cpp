// Unit tests for FileChecks: whether recorded files are still there with their sizes, asked in
// list order and answered from the threadpool in batches.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "cli/file_checks.hpp"
#include "support/nginx.hpp"  // make_temp_dir, remove_tree

namespace uvget::cli {
namespace {

using test::make_temp_dir;
using test::remove_tree;

class FileChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    dir_ = make_temp_dir("uvget-checks");
  }
  void TearDown() override {
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    remove_tree(dir_);
  }
  std::string file(const std::string& name, std::size_t size) {
    std::string path = dir_ + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr) << path;
    std::string body(size, 'x');
    std::fwrite(body.data(), 1, body.size(), f);
    std::fclose(f);
    return path;
  }
  uv_loop_t loop_;
  std::string dir_;
};

TEST_F(FileChecksTest, RightSizeIsThereAndEverythingElseIsNot) {
  std::deque<std::string> paths;  // stable storage: FileChecks keeps views
  paths.push_back(file("a", 10));
  paths.push_back(file("b", 0));
  ASSERT_EQ(::mkdir((dir_ + "/sub").c_str(), 0755), 0);
  paths.push_back(file("sub/c", 3));
  ASSERT_EQ(::symlink((dir_ + "/a").c_str(), (dir_ + "/link").c_str()), 0);
  paths.push_back(dir_ + "/link");  // followed: a's size
  paths.push_back(dir_ + "/sub");   // a directory
  paths.push_back(dir_ + "/gone");  // missing
  paths.push_back(dir_ + "/a");     // wrong size below
  paths.push_back(dir_ + "/nodir/x");
  std::vector<std::uint64_t> sizes = {10, 0, 3, 10, 0, 0, 11, 0};
  std::vector<bool> want = {true, true, true, true, false, false, false, false};
  int answered = 0;
  FileChecks checks(&loop_, [&] { ++answered; });
  std::vector<FileChecks::Ticket> tickets;
  for (std::size_t i = 0; i < paths.size(); ++i) tickets.push_back(checks.ask(paths[i], sizes[i]));
  // Nothing is known before the loop runs; asking sends the batch.
  EXPECT_FALSE(checks.answer(tickets[0]));
  EXPECT_EQ(checks.in_flight(), 1u);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(answered, 1);
  for (std::size_t i = 0; i < tickets.size(); ++i) {
    auto a = checks.answer(tickets[i]);
    ASSERT_TRUE(a) << paths[i];
    EXPECT_EQ(*a, want[i]) << paths[i];
  }
}

// Many questions go out in growing batches, never more than `running` at once, and every
// answer matches its own question.
TEST_F(FileChecksTest, BatchesGrowAndStayWithinTheLimit) {
  std::deque<std::string> paths;
  std::vector<std::uint64_t> sizes;
  for (int i = 0; i < 3000; ++i) {
    paths.push_back(file("f" + std::to_string(i), static_cast<std::size_t>(i % 7)));
    sizes.push_back(i % 5 == 0 ? 99 : static_cast<std::uint64_t>(i % 7));  // every 5th wrong
  }
  std::size_t most = 0, calls = 0;
  FileChecks* self = nullptr;
  FileChecks checks(
      &loop_,
      [&] {
        ++calls;
        most = std::max(most, self->in_flight());  // after the next was sent
      },
      /*batch_size=*/256, /*running=*/2);
  self = &checks;
  std::vector<FileChecks::Ticket> tickets;
  for (std::size_t i = 0; i < paths.size(); ++i) tickets.push_back(checks.ask(paths[i], sizes[i]));
  EXPECT_FALSE(checks.answer(tickets.back()));  // sends the last, partly filled batch
  uv_run(&loop_, UV_RUN_DEFAULT);
  // 64, 128, then 256 each: 64 + 128 + 11 * 256 = 3008 >= 3000.
  EXPECT_EQ(calls, 13u);
  EXPECT_EQ(most, 2u);
  for (std::size_t i = 0; i < tickets.size(); ++i) {
    auto a = checks.answer(tickets[i]);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, i % 5 != 0) << i;
  }
}

// The owner may go while a batch is in the threadpool: the batch finishes and frees itself.
TEST_F(FileChecksTest, GoingAwayWithABatchInTheThreadpool) {
  std::string path = file("x", 1);
  int answered = 0;
  FileChecks::Ticket t;
  {
    FileChecks checks(&loop_, [&] { ++answered; });
    t = checks.ask(path, 1);
    EXPECT_FALSE(checks.answer(t));
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(answered, 0);
  t = {};
}

}  // namespace
}  // namespace uvget::cli
