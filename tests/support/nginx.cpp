// Nginx fixture implementation: config generation, fork+exec of the child, readiness polling,
// shutdown and cleanup; temp-directory helpers.
#include "support/nginx.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace uvget::test {

namespace {

constexpr const char* kDefaultBinary = "/usr/sbin/nginx";
constexpr int kMaxPortAttempts = 5;
constexpr auto kStartTimeout = std::chrono::seconds(5);
constexpr auto kStopTimeout = std::chrono::seconds(3);
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr int kConnectProbeMs = 100;
constexpr std::size_t kLogTailBytes = 2000;
constexpr const char* kTempDirs[] = {"client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp",
                                     "scgi_temp"};

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string find_nginx() {
  if (is_executable(kDefaultBinary)) return kDefaultBinary;
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string_view rest(path);
  while (!rest.empty()) {
    std::size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = dir + "/nginx";
    if (is_executable(candidate)) return candidate;
  }
  return {};
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Binds 127.0.0.1:0 and returns the port the kernel chose (0 on failure).
uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

bool can_connect(uint16_t port, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = loopback(port);
  bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  if (!connected && errno == EINPROGRESS) {
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, timeout_ms) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      connected = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return connected;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

// waitpid(WNOHANG) that retries on EINTR; true once `pid` has been reaped.
bool reap_nohang(pid_t pid, int* status) {
  pid_t rc;
  do {
    rc = ::waitpid(pid, status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  return rc == pid || (rc < 0 && errno == ECHILD);
}

void reap_blocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

// ---- temp directories ------------------------------------------------------------------------

std::string make_temp_dir(std::string_view prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  path += '/';
  path += prefix;
  path += "XXXXXX";
  std::vector<char> buffer(path.begin(), path.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp(" + path + "): " + std::strerror(errno));
  }
  std::string dir(buffer.data());
  if (::chmod(dir.c_str(), 0755) != 0) {
    int err = errno;
    remove_tree(dir);
    throw std::runtime_error("chmod(" + dir + "): " + std::strerror(err));
  }
  return dir;
}

void remove_tree(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// ---- Nginx -----------------------------------------------------------------------------------

bool Nginx::available() {
  return !find_nginx().empty();
}

Nginx::Nginx(std::string root_dir, std::string extra_server_config)
    : Nginx(std::move(root_dir), std::move(extra_server_config), TlsFiles{}) {}

Nginx::Nginx(std::string root_dir, std::string extra_server_config, TlsFiles tls)
    : root_(std::move(root_dir)), extra_(std::move(extra_server_config)), tls_(std::move(tls)) {
  std::string binary = find_nginx();
  if (binary.empty()) {
    error_ = std::string("nginx not found (") + kDefaultBinary + " or nginx on PATH)";
    return;
  }
  try {
    prefix_ = make_temp_dir("uvget-nginx-");
  } catch (const std::exception& e) {
    error_ = e.what();
    return;
  }
  for (const char* dir : kTempDirs) {
    std::error_code ec;
    std::filesystem::create_directory(prefix_ + "/" + dir, ec);
  }
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    port_ = pick_free_port();
    if (port_ == 0) {
      error_ = std::string("could not pick a free port: ") + std::strerror(errno);
      return;
    }
    if (!write_config()) return;
    switch (launch(binary)) {
      case Launch::kOk:
        ok_ = true;
        error_.clear();
        return;
      case Launch::kFailed:
        return;
      case Launch::kPortTaken:
        break;  // lost a race for the port: try another one
    }
  }
  error_ = "nginx could not bind a port in " + std::to_string(kMaxPortAttempts) +
           " attempts; last log:\n" + error_;
}

Nginx::~Nginx() {
  stop();
  remove_tree(prefix_);
}

std::string Nginx::url(std::string_view path) const {
  return (tls() ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_) +
         std::string(path);
}

std::string Nginx::localhost_url(std::string_view path) const {
  return (tls() ? "https://localhost:" : "http://localhost:") + std::to_string(port_) +
         std::string(path);
}

bool Nginx::write_config() {
  std::ostringstream conf;
  conf << "daemon off;\n"
       << "master_process on;\n"
       << "worker_processes 1;\n"
       << "pid \"" << prefix_ << "/nginx.pid\";\n"
       << "error_log stderr;\n";
  // As root, workers would otherwise drop to nobody and could not read 0700 temp dirs.
  if (::getuid() == 0) conf << "user root;\n";
  conf << "events {\n"
       << "  worker_connections 4096;\n"
       << "}\n"
       << "http {\n"
       << "  access_log off;\n"
       << "  sendfile on;\n"
       << "  keepalive_requests 100000;\n"
       << "  keepalive_timeout 60;\n";
  for (const char* dir : kTempDirs) {
    conf << "  " << dir << "_path \"" << prefix_ << "/" << dir << "\";\n";
  }
  conf << "  default_type application/octet-stream;\n"
       << "  server {\n";
  if (tls()) {
    conf << "    listen 127.0.0.1:" << port_ << " ssl;\n"
         << "    ssl_certificate \"" << tls_.cert << "\";\n"
         << "    ssl_certificate_key \"" << tls_.key << "\";\n"
         << "    ssl_protocols " << tls_.protocols << ";\n"
         << "    ssl_session_tickets " << (tls_.session_tickets ? "on" : "off") << ";\n"
         << "    ssl_session_cache shared:SSL:1m;\n"
         << "    ssl_session_timeout 5m;\n";
  } else {
    conf << "    listen 127.0.0.1:" << port_ << ";\n";
  }
  conf << "    root \"" << root_ << "\";\n"
       << extra_ << "\n"
       << "  }\n"
       << "}\n";
  std::ofstream out(prefix_ + "/nginx.conf", std::ios::binary | std::ios::trunc);
  out << conf.str();
  out.close();
  if (!out) {
    error_ = "could not write " + prefix_ + "/nginx.conf";
    return false;
  }
  return true;
}

Nginx::Launch Nginx::launch(const std::string& binary) {
  const std::string log_path = prefix_ + "/error.log";
  const std::string pid_path = prefix_ + "/nginx.pid";
  const std::string prefix_arg = prefix_ + "/";
  const std::string conf_path = prefix_ + "/nginx.conf";
  ::unlink(pid_path.c_str());

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  std::vector<std::string> args = {binary, "-p", prefix_arg, "-c", conf_path, "-e", "stderr"};
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    error_ = "could not open " + log_path + " or /dev/null: " + std::strerror(errno);
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return Launch::kFailed;
  }

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group: a stuck nginx is killed with its workers
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) {
    error_ = std::string("fork: ") + std::strerror(fork_errno);
    return Launch::kFailed;
  }
  ::setpgid(pid, pid);  // also from the parent, so the group exists before we might signal it
  pid_ = pid;

  // Ready once the pid file exists (written after the listening socket is bound) and a TCP
  // connect succeeds while the child is still running.
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (reap_nohang(pid_, &status)) {
      pid_ = -1;
      std::string tail = log_tail();
      error_ = "nginx " + describe_status(status) + "; error log:\n" + tail;
      return tail.find("Address already in use") != std::string::npos ? Launch::kPortTaken
                                                                      : Launch::kFailed;
    }
    std::string tail = log_tail();
    if (tail.find("Address already in use") != std::string::npos) {
      error_ = "nginx could not bind 127.0.0.1:" + std::to_string(port_) + "; error log:\n" + tail;
      stop();  // it would retry bind() for seconds before giving up
      return Launch::kPortTaken;
    }
    if (::access(pid_path.c_str(), F_OK) == 0 && can_connect(port_, kConnectProbeMs)) {
      return Launch::kOk;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  error_ = "nginx did not accept connections on 127.0.0.1:" + std::to_string(port_) +
           " within 5 s; error log:\n" + log_tail();
  stop();
  return Launch::kFailed;
}

void Nginx::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);  // the master stops its workers, then exits
  const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  int status = 0;
  bool reaped = false;
  while (!(reaped = reap_nohang(pid_, &status)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!reaped) {
    ::kill(-pid_, SIGKILL);  // the whole process group: master and workers
    reap_blocking(pid_);
  }
  pid_ = -1;
}

std::string Nginx::log_tail() const {
  std::ifstream in(prefix_ + "/error.log", std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > kLogTailBytes) text.erase(0, text.size() - kLogTailBytes);
  return text;
}

}  // namespace uvget::test
