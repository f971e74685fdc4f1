// Micro benchmarks of the pure hot paths: response parsing (Content-Length and chunked, whole and
// split), URL parsing, request serialisation and output-name sanitising.
#include <benchmark/benchmark.h>

#include <string>

#include "cli/naming.hpp"
#include "http/request_writer.hpp"
#include "http/response_parser.hpp"
#include "url.hpp"

namespace {

using namespace uvget;

struct CountingHandler final : ResponseParser::Handler {
  void on_response_head(Response& head) override { status = head.status; }
  void on_response_body(std::span<const std::byte> b) override { bytes += b.size(); }
  int status = 0;
  std::size_t bytes = 0;
};

std::string plain_response(std::size_t body) {
  return "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 09:00:00 GMT\r\n"
         "Content-Type: application/octet-stream\r\nContent-Length: " +
         std::to_string(body) +
         "\r\nLast-Modified: Wed, 25 Nov 2026 08:00:00 GMT\r\nConnection: keep-alive\r\n"
         "ETag: \"6564a2b0-1000\"\r\nAccept-Ranges: bytes\r\n\r\n" +
         std::string(body, 'x');
}

std::string chunked_response(std::size_t body, std::size_t chunk) {
  std::string r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size[32];
  for (std::size_t done = 0; done < body; done += chunk) {
    std::size_t n = std::min(chunk, body - done);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    r += size;
    r.append(n, 'y');
    r += "\r\n";
  }
  return r + "0\r\n\r\n";
}

void run_parser(benchmark::State& state, const std::string& wire, std::size_t piece) {
  CountingHandler h;
  ResponseParser p(h, 64 * 1024, 256);
  for (auto _ : state) {
    p.start(false);
    for (std::size_t off = 0; off < wire.size(); off += piece) {
      auto prog = p.feed(wire.data() + off, std::min(piece, wire.size() - off));
      if (prog.status == ResponseParser::Status::failed) state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(h.bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
  state.SetItemsProcessed(state.iterations());
}

void BM_ParseContentLength4K(benchmark::State& s) {
  run_parser(s, plain_response(4096), 1 << 20);
}
void BM_ParseContentLength1M(benchmark::State& s) {
  run_parser(s, plain_response(1 << 20), 256 * 1024);
}
void BM_ParseChunked1M(benchmark::State& s) {
  run_parser(s, chunked_response(1 << 20, 16 * 1024), 256 * 1024);
}
void BM_ParseSplitEvery100Bytes(benchmark::State& s) {
  run_parser(s, plain_response(4096), 100);
}

void BM_UrlParse(benchmark::State& state) {
  for (auto _ : state) {
    auto u =
        Url::parse("https://downloads.example.org:8443/pub/releases/v1.2/file%20name.tar.gz?x=1");
    benchmark::DoNotOptimize(u);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_UrlResolve(benchmark::State& state) {
  auto base = *Url::parse("http://a.example/b/c/d;p?q");
  for (auto _ : state) {
    auto u = base.resolve("../../g/./h?y#f");
    benchmark::DoNotOptimize(u);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_WriteRequest(benchmark::State& state) {
  auto url = *Url::parse("http://127.0.0.1:8080/files/f1234");
  HeaderList client = {{"X-Trace", "1"}};
  HeaderList req = {{"Authorization", "Bearer abc"}};
  std::string out;
  for (auto _ : state) {
    out.clear();
    write_request(out, Method::get, url, "uvget/0.1", client, req);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NameFromPath(benchmark::State& state) {
  for (auto _ : state) {
    auto n = cli::name_from_path("/pub/releases/..%2f%2e%2e/v1.2/some%20file%C3%A9.tar.gz?x=1");
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ParseContentLength4K);
BENCHMARK(BM_ParseContentLength1M);
BENCHMARK(BM_ParseChunked1M);
BENCHMARK(BM_ParseSplitEvery100Bytes);
BENCHMARK(BM_UrlParse);
BENCHMARK(BM_UrlResolve);
BENCHMARK(BM_WriteRequest);
BENCHMARK(BM_NameFromPath);

}  // namespace
