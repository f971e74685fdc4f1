// The floor of writing many small files: the system calls one 4 KiB file costs, with nothing
// else around them, in the directory of UVGET_BENCH_DIR (default /dev/shm, the tmpfs the macro
// benchmarks write into). Each iteration is one file; the files are removed between batches,
// outside the timing. Compare files/s here with uvget's S figure in bench/RESULTS.md: what a
// client spends beyond this floor is its own (network, parsing, scheduling).
//   WriteInPlace    open NAME, write, close: a file can be seen half-written (what curl does)
//   PartAndRename   open NAME.part (O_EXCL), write, close, rename without replacing: uvget's
//                   small-file job
//   LookFirst       two lstat calls (NAME, NAME.part) before PartAndRename: how uvget chose
//                   names before the sink did it
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

enum class Way { in_place, part_rename, look_first };

std::string bench_dir() {
  const char* base = std::getenv("UVGET_BENCH_DIR");
  std::string tmpl = std::string(base ? base : "/dev/shm") + "/uvget-fs-bench.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) return {};
  return buf.data();
}

void small_files(benchmark::State& state, Way way) {
  std::string dir = bench_dir();
  if (dir.empty()) {
    state.SkipWithError("cannot make a directory (UVGET_BENCH_DIR)");
    return;
  }
  const std::string body(4096, 'x');
  constexpr int kBatch = 2000;  // files alive at once, like a run's output directory
  std::vector<std::string> made;
  made.reserve(kBatch);
  long n = 0;
  for (auto _ : state) {
    std::string name = dir + "/f" + std::to_string(n++), part = name + ".part";
    struct stat st;
    bool ok = true;
    if (way == Way::look_first)
      ok = ::lstat(name.c_str(), &st) < 0 && ::lstat(part.c_str(), &st) < 0;
    const std::string& target = way == Way::in_place ? name : part;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    ok =
        ok && fd >= 0 && ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
    ok = ::close(fd) == 0 && ok;
    if (way != Way::in_place)
      ok = ok && ::renameat2(AT_FDCWD, part.c_str(), AT_FDCWD, name.c_str(), RENAME_NOREPLACE) == 0;
    if (!ok) {
      state.SkipWithError("a file system call failed");
      break;
    }
    made.push_back(std::move(name));
    if (made.size() == kBatch) {
      state.PauseTiming();
      for (const auto& m : made) ::unlink(m.c_str());
      made.clear();
      state.ResumeTiming();
    }
  }
  for (const auto& m : made) ::unlink(m.c_str());
  ::rmdir(dir.c_str());
  state.SetItemsProcessed(state.iterations());
}

void BM_SmallFileWriteInPlace(benchmark::State& s) {
  small_files(s, Way::in_place);
}
void BM_SmallFilePartAndRename(benchmark::State& s) {
  small_files(s, Way::part_rename);
}
void BM_SmallFileLookFirst(benchmark::State& s) {
  small_files(s, Way::look_first);
}

}  // namespace

BENCHMARK(BM_SmallFileWriteInPlace);
BENCHMARK(BM_SmallFilePartAndRename);
BENCHMARK(BM_SmallFileLookFirst);
