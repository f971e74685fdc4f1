// run_command implementation: fork + execv with three pipes, a poll loop that feeds stdin and
// drains stdout/stderr until EOF or the deadline, then waitpid; PATH lookup.
#include "support/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace uvget::test {

namespace {

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Reads what is available on `fd` into `out`; closes `fd` at EOF or on an error.
void drain(int& fd, std::string& out) {
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);
    return;
  }
}

// Blocks SIGPIPE in the calling thread while the child's stdin is fed (a child that exits early
// must give EPIPE, not kill the test), then discards a SIGPIPE raised meanwhile and restores.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (sigismember(&old_, SIGPIPE) == 0) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
};

}  // namespace

std::string find_program(std::string_view name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    return is_executable(path) ? path : std::string();
  }
  const char* env = std::getenv("PATH");
  std::string_view rest = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  while (!rest.empty()) {
    std::size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + std::string(name);
    if (is_executable(candidate)) return candidate;
  }
  return {};
}

CommandResult run_command(const std::vector<std::string>& argv, std::string_view input,
                          int timeout_ms, const std::string& cwd) {
  CommandResult result;
  if (argv.empty()) {
    result.err = "run_command: empty argv";
    return result;
  }
  const std::string path = find_program(argv[0]);
  if (path.empty()) {
    result.err = "run_command: " + argv[0] + " not found";
    return result;
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& arg : args) cargv.push_back(arg.data());
  cargv.push_back(nullptr);
  static constexpr char kExecFailed[] = "run_command: exec or chdir failed in the child\n";

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    result.err = std::string("run_command: pipe2: ") + std::strerror(errno);
    for (int* p : {in, out, err}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    return result;
  }

  SigpipeBlock sigpipe_block;
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    if (cwd.empty() || ::chdir(cwd.c_str()) == 0) ::execv(path.c_str(), cargv.data());
    ssize_t ignored = ::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    (void)ignored;
    ::_exit(127);
  }
  int fork_errno = errno;
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  if (pid < 0) {
    result.err = std::string("run_command: fork: ") + std::strerror(fork_errno);
    close_fd(in[1]);
    close_fd(out[0]);
    close_fd(err[0]);
    return result;
  }

  int stdin_fd = in[1], stdout_fd = out[0], stderr_fd = err[0];
  for (int fd : {stdin_fd, stdout_fd, stderr_fd}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  if (input.empty()) close_fd(stdin_fd);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (stdout_fd >= 0 || stderr_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[3] = {{stdin_fd, POLLOUT, 0}, {stdout_fd, POLLIN, 0}, {stderr_fd, POLLIN, 0}};
    int ready = ::poll(fds, 3, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) {
      result.err += std::string("run_command: poll: ") + std::strerror(errno) + "\n";
      ::kill(pid, SIGKILL);
      break;
    }
    if (ready <= 0) continue;
    if (stdin_fd >= 0 && fds[0].revents != 0) {
      ssize_t n = ::write(stdin_fd, input.data(), input.size());
      if (n > 0) input.remove_prefix(static_cast<std::size_t>(n));
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || input.empty()) close_fd(stdin_fd);
    }
    if (stdout_fd >= 0 && fds[1].revents != 0) drain(stdout_fd, result.out);
    if (stderr_fd >= 0 && fds[2].revents != 0) drain(stderr_fd, result.err);
  }
  close_fd(stdin_fd);
  close_fd(stdout_fd);
  close_fd(stderr_fd);

  // The child may have closed its outputs and still run: the deadline holds for the exit too.
  int status = 0;
  while (true) {
    pid_t rc = ::waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (rc == pid) break;
    if (rc < 0 && errno != EINTR) {
      result.err += std::string("run_command: waitpid: ") + std::strerror(errno) + "\n";
      return result;
    }
    if (rc == 0 && std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
    } else if (rc == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace uvget::test
