// Nginx: a real nginx child process serving a directory on 127.0.0.1 (HTTP or HTTPS) for
// end-to-end tests, plus temp-directory helpers (make_temp_dir, remove_tree).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace uvget::test {

// HTTPS for Nginx: PEM certificate (chain) and key; TLS 1.2 and 1.3, HTTP/1.1 only.
struct TlsFiles {
  std::string cert;
  std::string key;
  bool session_tickets = true;  // ssl_session_tickets on|off (the session cache is always on)
  std::string protocols = "TLSv1.2 TLSv1.3";  // ssl_protocols
};

// Serves root_dir on 127.0.0.1:<free port> from a generated config in a temp prefix directory.
// The child gets PR_SET_PDEATHSIG(SIGTERM): construct it on a thread that outlives it (the test's).
class Nginx {
 public:
  // `extra_server_config` is inserted verbatim inside the server { } block.
  explicit Nginx(std::string root_dir, std::string extra_server_config = "");
  // HTTPS when tls.cert is not empty (plain HTTP otherwise).
  Nginx(std::string root_dir, std::string extra_server_config, TlsFiles tls);
  ~Nginx();  // SIGTERM (SIGKILL to its process group after 3 s), waitpid, removes the prefix dir
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }  // why start failed, with the log's tail

  uint16_t port() const { return port_; }
  bool tls() const { return !tls_.cert.empty(); }
  std::string url(std::string_view path) const;              // "http[s]://127.0.0.1:PORT" + path
  std::string localhost_url(std::string_view path) const;    // "http[s]://localhost:PORT" + path
  const std::string& prefix_dir() const { return prefix_; }  // nginx.conf, error.log, temp dirs

  static bool available();  // /usr/sbin/nginx or nginx on PATH

 private:
  enum class Launch { kOk, kPortTaken, kFailed };

  Launch launch(const std::string& binary);
  bool write_config();
  void stop();
  std::string log_tail() const;

  std::string root_;
  std::string extra_;
  TlsFiles tls_;
  std::string prefix_;
  std::string error_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
};

// mkdtemp("$TMPDIR/<prefix>XXXXXX") (/tmp without TMPDIR), then chmod 0755. Throws on failure.
std::string make_temp_dir(std::string_view prefix);
// Like rm -rf; errors are ignored.
void remove_tree(const std::string& path);

}  // namespace uvget::test
