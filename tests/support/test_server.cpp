// TestServer implementation: a uv loop on its own thread accepting on 127.0.0.1, parsing request
// heads and running one Script per request (TLS via TlsServerSession between the socket and the
// scripts); response builders; BlackholeListener (POSIX sockets).
#include "support/test_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <stdexcept>

#include "support/tls_server_session.hpp"

namespace uvget::test {

namespace {

constexpr std::size_t kMaxRequestHead = 64 * 1024;
constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr std::string_view kHeadEnd = "\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";
constexpr int kListenBacklog = 511;
constexpr uint64_t kLingerMs = 1000;

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (equals_ignore_case(key, name)) return true;
  }
  return false;
}

// `head` is a complete request head ending in "\r\n\r\n".
RecordedRequest parse_request_head(std::string_view head) {
  RecordedRequest request;
  request.raw = std::string(head);
  std::size_t line_end = head.find(kCrlf);
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' ');
  request.method = std::string(line.substr(0, sp1));
  if (sp1 != std::string_view::npos) {
    std::string_view rest = line.substr(sp1 + 1);
    std::size_t sp2 = rest.find(' ');
    request.target = std::string(rest.substr(0, sp2));
    if (sp2 != std::string_view::npos) request.version = std::string(rest.substr(sp2 + 1));
  }
  std::size_t pos = line_end + kCrlf.size();
  while (pos < head.size()) {
    std::size_t end = head.find(kCrlf, pos);
    if (end == std::string_view::npos || end == pos) break;
    std::string_view field = head.substr(pos, end - pos);
    pos = end + kCrlf.size();
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) {
      request.headers.emplace_back(std::string(trim_ows(field)), std::string());
    } else {
      request.headers.emplace_back(std::string(field.substr(0, colon)),
                                   std::string(trim_ows(field.substr(colon + 1))));
    }
  }
  return request;
}

Script default_script(const RecordedRequest&) {
  return Script().send(http_response(404, "not found\n", {{"Content-Type", "text/plain"}}));
}

struct Connection;

struct WriteReq {
  uv_write_t req;
  std::string bytes;
  Connection* conn;
  bool advances_script;  // a script's send: its next step runs once written
};

struct ShutdownReq {
  uv_shutdown_t req;
  Connection* conn;
};

}  // namespace

struct TestServer::Impl {
  TestServer* owner = nullptr;
  TlsServerConfig* tls = nullptr;  // TLS mode when set
  uv_loop_t loop{};
  uv_tcp_t listener{};
  uv_async_t wakeup{};
  bool stopping = false;
  std::set<Connection*> connections;
  std::vector<char> read_buffer = std::vector<char>(kReadBufferSize);

  void accept_one();
  void stop();
  std::size_t requests_recorded() const {
    std::lock_guard lock(owner->mutex_);
    return owner->requests_.size();
  }
  void connection_closed() { owner->connection_closed(); }
  void tls_handshake_done(bool resumed) { owner->tls_handshake_done(resumed); }
  void tls_failed(std::string why) { owner->tls_failed(std::move(why)); }
  // Records `request` and returns the script that answers it.
  Script serve(const RecordedRequest& request) {
    owner->record_request(request);
    return owner->script_for(request);
  }
};

namespace {

// One accepted connection. Lives from accept until both of its handles are closed.
struct Connection {
  TestServer::Impl* server = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  int id = 0;
  int requests_seen = 0;
  std::string input;                // bytes received and not yet consumed
  std::vector<Script::Step> steps;  // the script in progress
  std::size_t next_step = 0;
  bool running = false;     // a script is in progress
  bool early = false;       // bytes of a request came while the one before it was answered
  bool processing = false;  // inside process_input (guards against recursion)
  bool stalled = false;
  bool peer_eof = false;
  bool closing = false;         // no more steps or requests
  bool shutdown_done = false;   // our FIN is out; lingering for the peer's
  bool handles_closed = false;  // uv_close called on both handles
  int open_handles = 2;
  // TLS mode: `input` holds decrypted bytes; scripts' sends are encrypted.
  std::unique_ptr<TlsServerSession> tls;
  bool tls_bytes_seen = false;        // some ciphertext arrived (a handshake started)
  bool tls_peer_closed = false;       // the peer's close_notify arrived
  bool tls_failure_recorded = false;  // counted in tls_failures() once
};

std::runtime_error uv_failure(const char* what, int rc) {
  return std::runtime_error(std::string("TestServer: ") + what + ": " + uv_strerror(rc));
}

}  // namespace

static void process_input(Connection& conn);
static void run_next_step(Connection& conn);
static void close_handles(Connection& conn, bool reset);

static void on_timer(uv_timer_t* timer) noexcept {
  auto* conn = static_cast<Connection*>(timer->data);
  if (conn->shutdown_done) {
    close_handles(*conn, false);  // linger over
  } else if (!conn->closing) {
    run_next_step(*conn);
  }
}

static void on_handle_closed(uv_handle_t* handle) noexcept {
  auto* conn = static_cast<Connection*>(handle->data);
  if (--conn->open_handles > 0) return;
  conn->server->connections.erase(conn);
  delete conn;
}

static void close_handles(Connection& conn, bool reset) {
  if (conn.handles_closed) return;
  conn.handles_closed = true;
  conn.closing = true;
  uv_timer_stop(&conn.timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&conn.timer), on_handle_closed);
  if (!reset || uv_tcp_close_reset(&conn.tcp, on_handle_closed) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&conn.tcp), on_handle_closed);
  }
  conn.server->connection_closed();
}

// After our FIN, wait for the peer's (or kLingerMs) before closing, so that bytes the peer still
// sends do not turn the close into a RST.
static void on_shutdown(uv_shutdown_t* req, int status) noexcept {
  auto* shutdown = reinterpret_cast<ShutdownReq*>(req);
  Connection* conn = shutdown->conn;
  delete shutdown;
  if (conn->handles_closed) return;
  if (status < 0 || conn->peer_eof) {
    close_handles(*conn, false);
  } else {
    conn->shutdown_done = true;
    uv_timer_start(&conn->timer, on_timer, kLingerMs, 0);
  }
}

static void close_gracefully(Connection& conn) {
  conn.closing = true;
  auto* shutdown = new ShutdownReq{};
  shutdown->conn = &conn;
  if (uv_shutdown(&shutdown->req, reinterpret_cast<uv_stream_t*>(&conn.tcp), on_shutdown) != 0) {
    delete shutdown;
    close_handles(conn, false);
  }
}

static void on_write(uv_write_t* req, int status) noexcept {
  auto* write = reinterpret_cast<WriteReq*>(req);
  Connection* conn = write->conn;
  bool advances_script = write->advances_script;
  delete write;
  if (status < 0) {
    close_handles(*conn, false);
    return;
  }
  if (advances_script && !conn->closing) run_next_step(*conn);
}

// Queues `bytes` on the socket. False, with the connection closed, when that fails.
static bool write_bytes(Connection& conn, std::string bytes, bool advances_script) {
  auto* write = new WriteReq{};
  write->bytes = std::move(bytes);
  write->conn = &conn;
  write->advances_script = advances_script;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  if (uv_write(&write->req, reinterpret_cast<uv_stream_t*>(&conn.tcp), &buf, 1, on_write) != 0) {
    delete write;
    close_handles(conn, false);
    return false;
  }
  return true;
}

// Sends the records the TLS session produced (handshake messages, alerts), if any.
static bool flush_tls(Connection& conn) {
  std::string records = conn.tls->take_output();
  return records.empty() || write_bytes(conn, std::move(records), false);
}

// close(): in TLS mode a close_notify goes out first.
static void close_with_notify(Connection& conn) {
  if (conn.tls) {
    conn.tls->close_notify();
    if (!flush_tls(conn)) return;
  }
  close_gracefully(conn);
}

static void record_tls_failure(Connection& conn, const std::string& why) {
  if (conn.tls_failure_recorded) return;
  conn.tls_failure_recorded = true;
  conn.server->tls_failed("connection " + std::to_string(conn.id) + ": " + why);
}

static void finish_script(Connection& conn) {
  conn.running = false;
  conn.steps.clear();
  conn.next_step = 0;
  if (!conn.processing) process_input(conn);
}

static void run_next_step(Connection& conn) {
  while (!conn.closing) {
    if (conn.next_step == conn.steps.size()) {
      finish_script(conn);
      return;
    }
    Script::Step& step = conn.steps[conn.next_step++];
    switch (step.kind) {
      case Script::StepKind::kSend: {
        if (step.bytes.empty()) continue;
        std::string bytes = std::move(step.bytes);
        if (conn.tls) {
          if (!conn.tls->write(bytes)) {
            close_handles(conn, false);
            return;
          }
          bytes = conn.tls->take_output();
        }
        write_bytes(conn, std::move(bytes), true);
        return;
      }
      case Script::StepKind::kPause:
        uv_timer_start(&conn.timer, on_timer, static_cast<uint64_t>(step.ms > 0 ? step.ms : 0), 0);
        return;
      case Script::StepKind::kAwaitRequests:
        if (conn.server->requests_recorded() >= step.requests) continue;
        --conn.next_step;  // this step again, a millisecond later
        uv_timer_start(&conn.timer, on_timer, 1, 0);
        return;
      case Script::StepKind::kClose:
        close_with_notify(conn);
        return;
      case Script::StepKind::kCut:
        close_gracefully(conn);  // TLS: no close_notify, a truncated stream
        return;
      case Script::StepKind::kReset:
        close_handles(conn, true);
        return;
      case Script::StepKind::kStall:
        conn.stalled = true;
        conn.input.clear();
        if (conn.peer_eof) close_handles(conn, false);
        return;
    }
  }
}

static void start_script(Connection& conn, Script script) {
  conn.early = !conn.input.empty();  // the next request is already here: pipelined
  conn.steps = script.steps();
  conn.next_step = 0;
  conn.running = true;
  run_next_step(conn);
}

// Serves the complete requests buffered in `conn.input`, one at a time.
static void process_input(Connection& conn) {
  conn.processing = true;
  while (!conn.closing && !conn.running && !conn.stalled) {
    while (conn.input.size() >= 2 && conn.input.compare(0, 2, kCrlf) == 0) conn.input.erase(0, 2);
    std::size_t end = conn.input.find(kHeadEnd);
    if (end == std::string::npos) {
      if (conn.input.size() > kMaxRequestHead) {
        close_with_notify(conn);
      } else if (conn.peer_eof) {
        close_handles(conn, false);
      } else if (conn.tls_peer_closed) {
        close_with_notify(conn);  // answer the peer's close_notify
      }
      break;
    }
    std::size_t head_size = end + kHeadEnd.size();
    if (head_size > kMaxRequestHead) {
      close_with_notify(conn);
      break;
    }
    RecordedRequest request = parse_request_head(std::string_view(conn.input).substr(0, head_size));
    conn.input.erase(0, head_size);
    request.connection_id = conn.id;
    request.pipelined = conn.requests_seen > 0 && conn.early;
    request.index_on_connection = conn.requests_seen++;
    if (conn.tls) {
      request.tls = true;
      request.tls_server_name = conn.tls->server_name();
      request.tls_alpn = conn.tls->alpn();
      request.tls_resumed = conn.tls->resumed();
    }
    start_script(conn, conn.server->serve(request));
  }
  conn.processing = false;
}

static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
  auto* conn = static_cast<Connection*>(handle->data);
  std::vector<char>& buffer = conn->server->read_buffer;
  *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

// TLS mode: ciphertext in, handshake records or alerts out, decrypted bytes into `input`.
static void tls_receive(Connection& conn, std::string_view ciphertext) {
  TlsServerSession& tls = *conn.tls;
  conn.tls_bytes_seen = true;
  bool was_complete = tls.handshake_complete();
  if (conn.running) conn.early = true;
  TlsServerSession::Status status = tls.receive(ciphertext, conn.input);
  if (!flush_tls(conn)) return;
  if (!was_complete && tls.handshake_complete()) conn.server->tls_handshake_done(tls.resumed());
  if (status == TlsServerSession::Status::kFailed) {
    if (!tls.handshake_complete()) record_tls_failure(conn, tls.error());
    close_gracefully(conn);  // after the alert, if mbedTLS produced one
    return;
  }
  if (status == TlsServerSession::Status::kPeerClosed) conn.tls_peer_closed = true;
  if (!conn.running) process_input(conn);
}

// TLS mode: the peer hung up (FIN or error) before the handshake completed.
static void note_tls_hangup(Connection& conn) {
  if (conn.tls && conn.tls_bytes_seen && !conn.tls->handshake_complete()) {
    record_tls_failure(conn, "peer closed the connection during the handshake");
  }
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* conn = static_cast<Connection*>(stream->data);
  if (conn->handles_closed) return;
  if (nread > 0) {
    if (conn->stalled || conn->closing) return;  // never processed: drop
    if (conn->tls) {
      tls_receive(*conn, std::string_view(buf->base, static_cast<std::size_t>(nread)));
      return;
    }
    if (conn->running) conn->early = true;
    conn->input.append(buf->base, static_cast<std::size_t>(nread));
    if (!conn->running) process_input(*conn);
  } else if (nread == UV_EOF) {
    note_tls_hangup(*conn);
    conn->peer_eof = true;
    uv_read_stop(stream);
    if (conn->stalled || conn->shutdown_done) {
      close_handles(*conn, false);
    } else if (!conn->running && !conn->closing) {
      process_input(*conn);
    }
  } else if (nread < 0) {
    note_tls_hangup(*conn);
    close_handles(*conn, false);
  }
}

static void on_connection(uv_stream_t* listener, int status) noexcept {
  if (status < 0) return;
  static_cast<TestServer::Impl*>(listener->data)->accept_one();
}

static void on_wakeup(uv_async_t* async) noexcept {
  static_cast<TestServer::Impl*>(async->data)->stop();
}

void TestServer::Impl::accept_one() {
  if (stopping) return;
  auto* conn = new Connection{};
  conn->server = this;
  uv_tcp_init(&loop, &conn->tcp);
  uv_timer_init(&loop, &conn->timer);
  conn->tcp.data = conn;
  conn->timer.data = conn;
  connections.insert(conn);
  conn->id = owner->connection_opened();
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener),
                reinterpret_cast<uv_stream_t*>(&conn->tcp)) != 0) {
    close_handles(*conn, false);
    return;
  }
  if (tls != nullptr) {
    try {
      conn->tls = std::make_unique<TlsServerSession>(*tls);
    } catch (const std::exception& e) {
      record_tls_failure(*conn, e.what());
      close_handles(*conn, false);
      return;
    }
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&conn->tcp), on_alloc, on_read) != 0) {
    close_handles(*conn, false);
  }
}

void TestServer::Impl::stop() {
  stopping = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup), nullptr);
  for (Connection* conn : connections) close_handles(*conn, false);
}

// ---- Script ----------------------------------------------------------------------------------

Script& Script::send(std::string bytes) {
  steps_.push_back(Step{StepKind::kSend, std::move(bytes), 0});
  return *this;
}

Script& Script::pause_ms(int ms) {
  steps_.push_back(Step{StepKind::kPause, {}, ms});
  return *this;
}

Script& Script::await_requests(std::size_t n) {
  steps_.push_back(Step{StepKind::kAwaitRequests, {}, 0, n});
  return *this;
}

Script& Script::close() {
  steps_.push_back(Step{StepKind::kClose, {}, 0});
  return *this;
}

Script& Script::cut() {
  steps_.push_back(Step{StepKind::kCut, {}, 0});
  return *this;
}

Script& Script::reset() {
  steps_.push_back(Step{StepKind::kReset, {}, 0});
  return *this;
}

Script& Script::stall() {
  steps_.push_back(Step{StepKind::kStall, {}, 0});
  return *this;
}

std::optional<std::string_view> RecordedRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equals_ignore_case(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

// ---- TestServer --------------------------------------------------------------------------------

TestServer::TestServer() : TestServer(Handler(default_script)) {}

TestServer::TestServer(Handler handler) : TestServer(std::move(handler), "127.0.0.1") {}

TestServer::TestServer(Handler handler, std::string bind_ip)
    : handler_(std::move(handler)), bind_ip_(std::move(bind_ip)), impl_(new Impl) {
  start();
}

TestServer::TestServer(TlsServerFiles tls) : TestServer(Handler(default_script), std::move(tls)) {}

TestServer::TestServer(Handler handler, TlsServerFiles tls)
    : TestServer(std::move(handler), "127.0.0.1", std::move(tls)) {}

TestServer::TestServer(Handler handler, std::string bind_ip, TlsServerFiles tls)
    : handler_(std::move(handler)),
      bind_ip_(std::move(bind_ip)),
      tls_(std::make_unique<TlsServerConfig>(tls.cert, tls.key)),
      impl_(new Impl) {
  start();
}

void TestServer::start() {
  Impl& impl = *impl_;
  impl.owner = this;
  impl.tls = tls_.get();
  int rc = uv_loop_init(&impl.loop);
  if (rc != 0) throw uv_failure("uv_loop_init", rc);
  uv_tcp_init(&impl.loop, &impl.listener);
  uv_async_init(&impl.loop, &impl.wakeup, on_wakeup);
  impl.listener.data = &impl;
  impl.wakeup.data = &impl;

  const char* step = "uv_ip_addr";
  sockaddr_storage addr{};
  bool v6 = bind_ip_.find(':') != std::string::npos;
  rc = v6 ? uv_ip6_addr(bind_ip_.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&addr))
          : uv_ip4_addr(bind_ip_.c_str(), 0, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc == 0) {
    step = "uv_tcp_bind";
    rc = uv_tcp_bind(&impl.listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  }
  if (rc == 0) {
    step = "uv_listen";
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl.listener), kListenBacklog, on_connection);
  }
  if (rc == 0) {
    step = "uv_tcp_getsockname";
    sockaddr_storage bound{};
    int len = sizeof(bound);
    rc = uv_tcp_getsockname(&impl.listener, reinterpret_cast<sockaddr*>(&bound), &len);
    if (rc == 0)
      port_ = v6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                 : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }
  if (rc != 0) {
    impl.stop();
    uv_run(&impl.loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl.loop);
    throw uv_failure(step, rc);
  }

  thread_ = std::thread([&impl] {
    // A write to a peer that hung up must fail with EPIPE, not kill the test binary.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    uv_run(&impl.loop, UV_RUN_DEFAULT);
  });
}

TestServer::~TestServer() {
  uv_async_send(&impl_->wakeup);
  thread_.join();
  int rc = uv_loop_close(&impl_->loop);
  if (rc != 0) {
    std::fprintf(stderr, "TestServer: uv_loop_close: %s\n", uv_strerror(rc));
    std::abort();
  }
}

void TestServer::route(std::string target, Script script) {
  std::lock_guard lock(mutex_);
  routes_.insert_or_assign(std::move(target), std::move(script));
}

void TestServer::set_handler(Handler handler) {
  std::lock_guard lock(mutex_);
  handler_ = std::move(handler);
}

std::string TestServer::url(std::string_view target) const {
  std::string host = bind_ip_.find(':') != std::string::npos ? "[" + bind_ip_ + "]" : bind_ip_;
  return (tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + std::string(target);
}

std::string TestServer::localhost_url(std::string_view target) const {
  return (tls_ ? "https://localhost:" : "http://localhost:") + std::to_string(port_) +
         std::string(target);
}

std::vector<RecordedRequest> TestServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

int TestServer::accepted_connections() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

int TestServer::current_connections() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::vector<int> TestServer::answers_before_each_accept() const {
  std::lock_guard lock(mutex_);
  return answers_before_accept_;
}

int TestServer::peak_connections() const {
  std::lock_guard lock(mutex_);
  return peak_;
}

bool TestServer::wait_for_requests(std::size_t n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return requests_.size() >= n; });
}

bool TestServer::wait_for_current_connections(int n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return current_ == n; });
}

int TestServer::tls_handshakes() const {
  std::lock_guard lock(mutex_);
  return tls_handshakes_;
}

int TestServer::tls_resumed_handshakes() const {
  std::lock_guard lock(mutex_);
  return tls_resumed_;
}

int TestServer::tls_failures() const {
  std::lock_guard lock(mutex_);
  return tls_failures_;
}

std::string TestServer::last_tls_failure() const {
  std::lock_guard lock(mutex_);
  return last_tls_failure_;
}

bool TestServer::wait_for_tls_handshakes(int n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return tls_handshakes_ >= n; });
}

bool TestServer::wait_for_tls_failures(int n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return tls_failures_ >= n; });
}

void TestServer::tls_handshake_done(bool resumed) {
  {
    std::lock_guard lock(mutex_);
    ++tls_handshakes_;
    if (resumed) ++tls_resumed_;
  }
  changed_.notify_all();
}

void TestServer::tls_failed(std::string why) {
  {
    std::lock_guard lock(mutex_);
    ++tls_failures_;
    last_tls_failure_ = std::move(why);
  }
  changed_.notify_all();
}

void TestServer::record_request(RecordedRequest request) {
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
  }
  changed_.notify_all();
}

Script TestServer::script_for(const RecordedRequest& request) {
  Handler handler;
  {
    std::lock_guard lock(mutex_);
    ++scripts_started_;
    auto it = routes_.find(request.target);
    if (it != routes_.end()) return it->second;
    handler = handler_;
  }
  if (!handler) return default_script(request);
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return Script().send(http_response(500, e.what())).close();
  } catch (...) {
    return Script().send(http_response(500, "handler threw")).close();
  }
}

int TestServer::connection_opened() {
  int id;
  {
    std::lock_guard lock(mutex_);
    id = ++accepted_;
    answers_before_accept_.push_back(scripts_started_);
    ++current_;
    if (current_ > peak_) peak_ = current_;
  }
  changed_.notify_all();
  return id;
}

void TestServer::connection_closed() {
  {
    std::lock_guard lock(mutex_);
    --current_;
  }
  changed_.notify_all();
}

// ---- Response builders -------------------------------------------------------------------------

std::string_view reason_phrase(int status) {
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {410, "Gone"},
      {413, "Content Too Large"},
      {416, "Range Not Satisfiable"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [code, text] : kReasons) {
    if (code == status) return text;
  }
  return "Status";
}

namespace {

std::string status_line(int status) {
  std::string line = "HTTP/1.1 " + std::to_string(status) + " ";
  line += reason_phrase(status);
  line += kCrlf;
  return line;
}

void append_headers(std::string& out, const Headers& headers) {
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += kCrlf;
  }
}

}  // namespace

std::string http_response(int status, std::string_view body, const Headers& extra) {
  std::string out = status_line(status);
  bool no_length = (status >= 100 && status < 200) || status == 204 ||
                   (status == 304 && body.empty()) || has_header(extra, "Content-Length") ||
                   has_header(extra, "Transfer-Encoding");
  if (!no_length) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  append_headers(out, extra);
  out += kCrlf;
  out += body;
  return out;
}

std::string chunked_response(int status, const std::vector<std::string>& chunks,
                             const Headers& extra) {
  std::string out = status_line(status);
  out += "Transfer-Encoding: chunked\r\n";
  append_headers(out, extra);
  out += kCrlf;
  for (const std::string& chunk : chunks) {
    if (chunk.empty()) continue;
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    out += size;
    out += chunk;
    out += kCrlf;
  }
  out += "0\r\n\r\n";
  return out;
}

std::optional<std::pair<uint64_t, std::optional<uint64_t>>> requested_range(
    const RecordedRequest& request) {
  auto v = request.header("Range");
  if (!v || !v->starts_with("bytes=")) return std::nullopt;
  std::string spec(v->substr(6));
  auto dash = spec.find('-');
  if (dash == std::string::npos || dash == 0) return std::nullopt;
  uint64_t first = std::stoull(spec.substr(0, dash));
  if (dash + 1 == spec.size()) return std::pair{first, std::optional<uint64_t>{}};
  return std::pair{first, std::optional<uint64_t>{std::stoull(spec.substr(dash + 1))}};
}

RangedAnswer answer_ranges(const RecordedRequest& request, uint64_t size, const std::string& etag) {
  Headers h = {{"ETag", etag}, {"Accept-Ranges", "bytes"}};
  auto range = requested_range(request);
  auto if_range = request.header("If-Range");
  int status = 200;
  uint64_t first = 0, end = size;  // the body is [first, end)
  if (range && !(if_range && *if_range != etag)) {
    if (range->first >= size) {
      status = 416;
      first = end = 0;
      h.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    } else {
      status = 206;
      first = range->first;
      end = std::min<uint64_t>(range->second.value_or(size - 1), size - 1) + 1;
      h.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" +
                                          std::to_string(end - 1) + "/" + std::to_string(size));
    }
  }
  h.emplace_back("Content-Length", std::to_string(end - first));
  return {http_response(status, "", h), first, end};
}

Script serve_ranges(const RecordedRequest& request, const std::string& body,
                    const std::string& etag) {
  RangedAnswer a = answer_ranges(request, body.size(), etag);
  return Script().send(a.head + body.substr(a.from, a.to - a.from));
}

Script trickle_ranges(const RecordedRequest& request, const std::string& body,
                      const std::string& etag, uint64_t fast, std::size_t chunk, int pause_ms) {
  RangedAnswer a = answer_ranges(request, body.size(), etag);
  uint64_t at = std::min(a.to, a.from + fast);
  Script s;
  s.send(a.head + body.substr(a.from, at - a.from));
  for (; at < a.to; at += chunk)
    s.pause_ms(pause_ms).send(body.substr(at, std::min<uint64_t>(chunk, a.to - at)));
  return s;
}

std::string digest_hex(mbedtls_md_type_t type, std::string_view data) {
  const mbedtls_md_info_t* info = mbedtls_md_info_from_type(type);
  unsigned char out[MBEDTLS_MD_MAX_SIZE];
  mbedtls_md(info, reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  std::string hex;
  for (std::size_t i = 0; i < mbedtls_md_get_size(info); ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", out[i]);
    hex += b;
  }
  return hex;
}

std::string pattern_bytes(std::size_t n, uint32_t seed) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  static_assert(kAlphabet.size() == 64);
  uint32_t state = seed * 0x9E3779B9u + 0x6D2B79F5u;
  if (state == 0) state = 1;
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    state ^= state << 13;  // xorshift32
    state ^= state >> 17;
    state ^= state << 5;
    out[i] = kAlphabet[state >> 26];
  }
  return out;
}

// ---- BlackholeListener -------------------------------------------------------------------------

namespace {

constexpr int kMaxFillers = 4;
constexpr int kFillerConnectWaitMs = 200;

[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string("BlackholeListener: ") + what + ": " + std::strerror(errno));
}

}  // namespace

BlackholeListener::BlackholeListener() : BlackholeListener("127.0.0.1", 0) {}

BlackholeListener::BlackholeListener(const std::string& ip, uint16_t port) {
  try {
    sockaddr_storage addr{};
    bool v6 = ip.find(':') != std::string::npos;
    int rc = v6 ? uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
                : uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
    if (rc != 0) throw std::runtime_error("BlackholeListener: bad address " + ip);
    socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    listen_fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw_errno("socket");
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
      throw_errno("bind");
    }
    if (::listen(listen_fd_, 0) != 0) throw_errno("listen");
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw_errno("getsockname");
    }
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);

    // Connect until one connection no longer completes: the accept queue is then full and the
    // kernel drops further SYNs. Keep every filler socket open for the listener's lifetime.
    for (int i = 0; i < kMaxFillers; ++i) {
      int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) throw_errno("socket");
      fillers_.push_back(fd);
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) continue;
      if (errno != EINPROGRESS) throw_errno("connect");
      pollfd pfd{fd, POLLOUT, 0};
      int ready = ::poll(&pfd, 1, kFillerConnectWaitMs);
      if (ready < 0) throw_errno("poll");
      if (ready == 0) return;  // this connect hangs: the queue is full
    }
    throw std::runtime_error("BlackholeListener: accept queue never filled up");
  } catch (...) {
    for (int fd : fillers_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw;
  }
}

BlackholeListener::~BlackholeListener() {
  for (int fd : fillers_) ::close(fd);
  ::close(listen_fd_);
}

}  // namespace uvget::test
