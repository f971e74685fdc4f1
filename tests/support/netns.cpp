// Private network + mount namespace for test binaries (unshare, a private mount tree, lo up), bind
// mounts over /etc files inside it, and the gtest main that refuses to run tests outside it.
#include "support/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace uvget::test {

namespace {

bool entered = false;

std::string errno_text(int err) {
  return std::strerror(err);
}

int thread_count() {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return -1;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

bool bring_up_loopback(std::string* why) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = "socket(AF_INET) in the new namespace: " + errno_text(errno);
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  if (!ok) *why = "bringing lo up (SIOCSIFFLAGS): " + errno_text(errno);
  close(fd);
  return ok;
}

// The one test of a run that could not enter the namespace.
class NamespaceUnavailable : public ::testing::Test {
 public:
  explicit NamespaceUnavailable(std::string why) : why_(std::move(why)) {}
  void TestBody() override { FAIL() << why_; }

 private:
  std::string why_;
};

}  // namespace

bool enter_private_netns(std::string* why) {
  if (entered) return true;
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    int err = errno;
    std::string reason = "unshare(CLONE_NEWNET | CLONE_NEWNS): " + errno_text(err);
    int threads = thread_count();
    if (err == EPERM) {
      reason += " (the resolver tests need root, or CAP_SYS_ADMIN)";
    } else if (err == EINVAL && threads > 1) {
      reason += " (the process already has " + std::to_string(threads) +
                " threads: call it first thing in main())";
    }
    *why = reason;
    return false;
  }
  // Without this, a bind mount in here would propagate to the host's mount namespace wherever
  // / is a shared mount (systemd makes it one).
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    *why = "mount(/, MS_REC | MS_PRIVATE): " + errno_text(errno);
    return false;
  }
  if (!bring_up_loopback(why)) return false;
  entered = true;
  return true;
}

bool in_private_netns() {
  return entered;
}

bool bind_over(const std::string& source, const std::string& target, std::string* why) {
  if (!entered) {
    *why = "bind_over(" + target +
           "): not inside a private mount namespace; refusing to mount "
           "over the host's file";
    return false;
  }
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    *why = "mount --bind " + source + " " + target + ": " + errno_text(errno);
    return false;
  }
  return true;
}

std::string write_temp_file(std::string_view content) {
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/uvget-file-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0) throw std::runtime_error("write_temp_file: mkstemp: " + errno_text(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      unlink(path.c_str());
      throw std::runtime_error("write_temp_file: write " + path + ": " + errno_text(err));
    }
    done += static_cast<std::size_t>(n);
  }
  // Readable by everyone, like the /etc files it is meant to stand in for.
  fchmod(fd, 0644);
  close(fd);
  return path;
}

int netns_test_main(int argc, char** argv) {
  std::string why;
  bool ok = enter_private_netns(&why);
  ::testing::InitGoogleTest(&argc, argv);
  if (!ok) {
    std::fprintf(stderr, "cannot enter a private network namespace: %s\n", why.c_str());
    ::testing::RegisterTest("PrivateNetworkNamespace", "CouldBeEntered", nullptr, nullptr, __FILE__,
                            __LINE__,
                            [why]() -> ::testing::Test* { return new NamespaceUnavailable(why); });
    // Only the failing one: the others would run against the host's network and /etc.
    GTEST_FLAG_SET(filter, "PrivateNetworkNamespace.CouldBeEntered");
  }
  return RUN_ALL_TESTS();
}

}  // namespace uvget::test
