// Fuzz target: a whole download against a server that sends arbitrary bytes. The real Client,
// Connection, parser, Transfer (redirects and retries off) and sink run on a uv loop; the server is
// a listener on 127.0.0.1 in the same loop that answers every request with the input's bytes, one
// cut per loop pass, so the client reads them in exactly those pieces, then closes. The first
// three input bytes choose GET or HEAD, the sink (memory with a cap, or a discard sink), and the
// cuts. Properties: on_done comes exactly once and the loop goes quiet (nothing hangs: a stall
// ends at the idle timeout); a success has a 2xx status and delivered exactly `bytes`; a failure
// names the URL it failed at.
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <uvget/uvget.hpp>

#include "fuzz_check.hpp"

namespace {

struct ServerConn {
  uv_tcp_t tcp{};
  std::string request;  // bytes of the request head so far
  bool answering = false;
  std::size_t sent = 0;
  uv_idle_t next{};  // one cut per loop pass
  int handles = 2;
};

struct World {
  uv_loop_t loop{};
  uv_tcp_t listener{};
  int port = 0;
  std::unique_ptr<uvget::Client> client;
  // The current input.
  std::string response;
  std::minstd_rand cuts;
  int open_conns = 0;
};

World* world = nullptr;

void close_conn(ServerConn* c) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
  auto done = [](uv_handle_t* h) {
    auto* conn = static_cast<ServerConn*>(h->data);
    if (--conn->handles == 0) {
      --world->open_conns;
      delete conn;
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c->next), done);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), done);
}

void send_next(uv_idle_t* idle) {
  auto* c = static_cast<ServerConn*>(idle->data);
  const std::string& r = world->response;
  if (c->sent >= r.size()) {
    uv_idle_stop(idle);
    close_conn(c);
    return;
  }
  std::size_t n = std::min<std::size_t>(r.size() - c->sent, 1 + world->cuts() % 96);
  uv_buf_t b = uv_buf_init(const_cast<char*>(r.data() + c->sent), static_cast<unsigned>(n));
  int w = uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1);
  if (w < 0 && w != UV_EAGAIN) {  // the client hung up
    uv_idle_stop(idle);
    close_conn(c);
    return;
  }
  if (w > 0) c->sent += static_cast<std::size_t>(w);
}

void on_server_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<ServerConn*>(s->data);
  if (n > 0 && !c->answering) {
    c->request.append(buf->base, static_cast<std::size_t>(n));
    if (c->request.find("\r\n\r\n") != std::string::npos) {
      c->answering = true;
      uv_idle_start(&c->next, send_next);
    }
  }
  delete[] buf->base;
  if (n < 0) close_conn(c);
}

void on_accept(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* c = new ServerConn;
  uv_tcp_init(&world->loop, &c->tcp);
  uv_idle_init(&world->loop, &c->next);
  c->tcp.data = c->next.data = c;
  ++world->open_conns;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return close_conn(c);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t*, std::size_t, uv_buf_t* b) { *b = uv_buf_init(new char[4096], 4096); },
      on_server_read);
}

World& setup() {
  if (world) return *world;
  world = new World;
  uv_loop_init(&world->loop);
  uv_tcp_init(&world->loop, &world->listener);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&world->listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  uv_listen(reinterpret_cast<uv_stream_t*>(&world->listener), 64, on_accept);
  sockaddr_storage got{};
  int len = sizeof got;
  uv_tcp_getsockname(&world->listener, reinterpret_cast<sockaddr*>(&got), &len);
  world->port = ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  uvget::ClientOptions o;
  o.idle_timeout_ms = 100;  // a stall ends quickly
  o.connect_timeout_ms = 1000;
  o.timeout_ms = 3000;
  // Never follow a redirect: a Location made of fuzz bytes could name any host, and tests talk
  // to loopback only. A redirect ends the transfer with too_many_redirects.
  o.max_redirects = 0;
  o.max_header_bytes = 16 * 1024;
  o.max_header_count = 64;
  o.loop_slice_us = 0;
  auto c = uvget::Client::create(&world->loop, o);
  FUZZ_CHECK(c);
  world->client = std::move(*c);
  return *world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  World& w = setup();
  w.response.assign(reinterpret_cast<const char*>(data + 3), size - 3);
  w.cuts.seed(static_cast<unsigned>(data[1] | (data[2] << 8)) + 1);

  uvget::Request req;
  std::string origin = "http://127.0.0.1:" + std::to_string(w.port) + "/";
  std::string url = origin + "f";
  req.url = url;
  req.method = (data[0] & 1) ? uvget::Method::head : uvget::Method::get;
  req.headers = {{"Connection", "close"}};  // every input on fresh connections
  std::string body;
  if (data[0] & 2)
    req.sink = uvget::make_discard_sink();
  else
    req.sink = uvget::make_memory_sink(&body, 1 << 20);
  int done = 0;
  uvget::TransferResult result;
  std::uint64_t seen = 0;
  uvget::Callbacks cbs;
  cbs.on_head = [&](const uvget::Response&) { seen = 0; };
  cbs.on_data = [&](std::span<const std::byte> b) { seen += b.size(); };
  cbs.on_done = [&](const uvget::TransferResult& r) {
    ++done;
    result = r;
  };
  FUZZ_CHECK(w.client->get(std::move(req), std::move(cbs)));
  // Until the download is over and the server's side of every connection is closed: the
  // client's idle timeout (100 ms) and the whole-transfer timeout bound this.
  while (done == 0 || w.open_conns > 0) uv_run(&w.loop, UV_RUN_ONCE);
  for (int i = 0; i < 4; ++i) uv_run(&w.loop, UV_RUN_NOWAIT);  // deferred frees
  FUZZ_CHECK(done == 1);
  if (result.ok()) {
    FUZZ_CHECK(result.status >= 200 && result.status <= 299);
    FUZZ_CHECK(seen == result.bytes);
    if (!(data[0] & 2)) FUZZ_CHECK(body.size() == result.bytes);
  } else {
    // The URL it was at (after a redirect, the one that failed).
    FUZZ_CHECK(result.error.message().find(origin) != std::string::npos);
  }
  return 0;
}
