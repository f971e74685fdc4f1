// run_command: runs a helper program (openssl, curl) as a child process with its stdin, stdout and
// stderr on pipes and a deadline; find_program looks a name up on PATH.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace uvget::test {

struct CommandResult {
  int exit_code = -1;      // the exit status; -1 when killed by a signal or never started
  bool timed_out = false;  // killed (SIGKILL) at the deadline
  std::string out;         // everything the child wrote to stdout
  std::string err;         // stderr, or why the child could not be started

  bool ok() const { return exit_code == 0; }
};

// argv[0] is a path or a name looked up on PATH. `input` is written to the child's stdin, which is
// then closed. The child runs in `cwd` when it is not empty. Never throws for a failing child.
CommandResult run_command(const std::vector<std::string>& argv, std::string_view input = {},
                          int timeout_ms = 30000, const std::string& cwd = {});

// The absolute path of an executable `name` on PATH ("" when there is none). A name containing
// '/' is returned as is when it is executable.
std::string find_program(std::string_view name);

}  // namespace uvget::test
