// Running a test binary inside a private network and mount namespace (root only): its own
// loopback, where a test may take port 53 and bind-mount its own /etc/resolv.conf and /etc/hosts
// without touching the host's.
#pragma once

#include <string>
#include <string_view>

namespace uvget::test {

// unshare(CLONE_NEWNET | CLONE_NEWNS), makes every mount private (so later mounts never reach the
// host) and brings `lo` up. Call it first thing in main(): CLONE_NEWNS fails once the process has
// a second thread. On failure returns false with a one-line reason in *why.
bool enter_private_netns(std::string* why);

// Whether enter_private_netns succeeded in this process.
bool in_private_netns();

// Bind-mounts the file `source` over `target` (e.g. /etc/resolv.conf). Refuses unless
// in_private_netns(): outside it the mount would change the host's files for every process.
bool bind_over(const std::string& source, const std::string& target, std::string* why);

// A new file holding `content` in $TMPDIR (/tmp without it), mode 0644; returns its path. Throws
// std::runtime_error on failure. The caller removes it.
std::string write_temp_file(std::string_view content);

// A gtest main() that enters the namespace before anything else. If it cannot, no test runs
// outside it (they would reach the host's port 53 and /etc files): the run is one test,
// PrivateNetworkNamespace.CouldBeEntered, which fails with the reason.
int netns_test_main(int argc, char** argv);

}  // namespace uvget::test
