// Fuzz target: output names from URL paths. Property: the result is always one plain entry of
// the output directory: not empty, no separator, NUL or control byte, no leading dot, short
// enough for ".part" and a ".NNN" suffix, and joined to a directory it stays inside it.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "cli/naming.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string name = uvget::cli::name_from_path(in);
  FUZZ_CHECK(!name.empty());
  FUZZ_CHECK(name.size() <= 240);
  FUZZ_CHECK(name.front() != '.');
  for (unsigned char c : name) {
    FUZZ_CHECK(c != '/' && c != '\\' && c != 0);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  }
  std::filesystem::path dir("/out/dir");
  auto joined = (dir / name).lexically_normal();
  FUZZ_CHECK(joined.parent_path() == dir);
  FUZZ_CHECK(joined.filename() == name);
  return 0;
}
