// The command line's option parser: one value per occurrence wherever an option stands, GNU
// forms, suggestions, and help within its width.
#include <gtest/gtest.h>

#include "cli/args.hpp"

namespace uvget::cli {
namespace {

struct Parsed {
  std::vector<std::string> headers, operands;
  std::string dir, error;
  int jobs = 0;
  bool quiet = false, verbose = false;
};

Parsed parse(std::vector<const char*> args) {
  Parsed p;
  ArgParser a;
  a.group("G");
  a.option("header", 'H', "H", "a header", [&](const std::string& v) -> std::optional<std::string> {
    p.headers.push_back(v);
    return std::nullopt;
  });
  a.option("dir", 'd', "DIR", "a directory", text(&p.dir));
  a.option("connections", 'j', "N", "connections", int_in(&p.jobs, 1, 100));
  a.option("connect-timeout", 0, "S", "seconds", [](const std::string&) { return std::nullopt; });
  a.flag("quiet", 'q', "quiet", [&] { p.quiet = true; });
  a.flag("verbose", 'v', "verbose", [&] { p.verbose = true; });
  args.insert(args.begin(), "uvget");
  p.error = a.parse(static_cast<int>(args.size()), args.data(), p.operands);
  return p;
}

TEST(Args, ARepeatedOptionTakesOneValueEachTimeWhereverItStands) {
  auto p = parse({"-H", "A: 1", "http://one/", "--header", "B: 2", "http://two/", "--header=C: 3",
                  "-HD: 4", "http://three/"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.headers, (std::vector<std::string>{"A: 1", "B: 2", "C: 3", "D: 4"}));
  EXPECT_EQ(p.operands, (std::vector<std::string>{"http://one/", "http://two/", "http://three/"}));
}

TEST(Args, ShortFlagsGroupAndTheLastMayTakeAValue) {
  auto p = parse({"-qvj8", "u"});
  ASSERT_EQ(p.error, "");
  EXPECT_TRUE(p.quiet);
  EXPECT_TRUE(p.verbose);
  EXPECT_EQ(p.jobs, 8);
  p = parse({"-qj", "9"});
  EXPECT_EQ(p.jobs, 9);
}

TEST(Args, DoubleDashEndsOptionsAndALoneDashIsAnOperand) {
  auto p = parse({"--", "-q", "-"});
  ASSERT_EQ(p.error, "");
  EXPECT_FALSE(p.quiet);
  EXPECT_EQ(p.operands, (std::vector<std::string>{"-q", "-"}));
  p = parse({"-d", "-", "x"});
  EXPECT_EQ(p.dir, "-") << "a value may look like an option";
}

TEST(Args, MistakesAreOneLineEachWithASuggestion) {
  EXPECT_EQ(parse({"--conect-timeout", "3"}).error,
            "unknown option '--conect-timeout' (did you mean --connect-timeout?)");
  EXPECT_EQ(parse({"--verbsoe"}).error, "unknown option '--verbsoe' (did you mean --verbose?)");
  EXPECT_EQ(parse({"--verb"}).error, "unknown option '--verb' (did you mean --verbose?)");
  EXPECT_EQ(parse({"--conn"}).error, "unknown option '--conn'") << "two options start so";
  EXPECT_EQ(parse({"--frobnicate"}).error, "unknown option '--frobnicate'");
  EXPECT_EQ(parse({"-x"}).error, "unknown option '-x'");
  EXPECT_EQ(parse({"--dir"}).error, "option '--dir' needs a value (DIR)");
  EXPECT_EQ(parse({"--quiet=yes"}).error, "option '--quiet' takes no value");
  EXPECT_EQ(parse({"-j", "0"}).error,
            "bad value '0' for -j: expected a whole number from 1 to 100");
  EXPECT_EQ(parse({"--connections=many"}).error,
            "bad value 'many' for --connections: expected a whole number from 1 to 100");
}

TEST(Args, HelpGroupsOptionsWithinTheWidth) {
  ArgParser a;
  a.group("Output");
  std::string d;
  a.option("dir", 'd', "DIR",
           "a long description that has to wrap because it goes on and on well past the width "
           "that was asked for, word after word",
           text(&d));
  a.group("Display");
  a.flag("quiet", 'q', "no progress", [] {});
  std::string h = a.help(60);
  EXPECT_NE(h.find("Output:\n  -d, --dir DIR"), std::string::npos) << h;
  EXPECT_NE(h.find("Display:\n  -q, --quiet"), std::string::npos) << h;
  std::size_t start = 0;
  for (std::size_t nl; (nl = h.find('\n', start)) != std::string::npos; start = nl + 1)
    EXPECT_LE(nl - start, 60u) << h.substr(start, nl - start);
}

}  // namespace
}  // namespace uvget::cli
