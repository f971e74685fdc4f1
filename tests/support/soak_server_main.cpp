// soak_server: a fault-injecting HTTP server for bench/soak.sh, built on TestServer.
//   soak_server [--files N] [--faults PERCENT] [--busy N] [--limit-above K] [--size BYTES]
// Serves /f0 .. /f<N-1> (also as /f<i>/NAME and /f<i>?QUERY), each 4 to 64 KiB of
// pattern_bytes (the same on every run; --size: each that long), and
// /manifest: one "f<i> <size> <sha-256>" line per file.
// The first answer to PERCENT % of the files is faulty, the kinds in turn: a reset before any
// answer, a body cut short, a 500, a stall (3 s of silence, then the connection closes), a
// trickle (the body in 16 pieces 100 ms apart: slow, not wrong), and a keep-alive drop (a
// connection that already answered closes without answering). Of those faulty files, the first
// --busy (default 39) answer 503 with Retry-After: 1 instead. Every later request is answered
// right.
// --limit-above K: no faults; a request that finds more than K connections open gets 429 (no
// Retry-After). On exit it reports the peak of connections open at a request once 64 requests
// have come after the first 429.
// Prints "ready PORT" on stdout once listening; on SIGTERM or SIGINT prints its counts on
// stderr and exits 0.
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_server.hpp"

namespace {

using uvget::test::http_response;
using uvget::test::pattern_bytes;
using uvget::test::RecordedRequest;
using uvget::test::Script;

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "soak_server: %s\n"
               "usage: soak_server [--files N] [--faults PERCENT] [--busy N] [--limit-above K]\n"
               "                   [--size BYTES]\n",
               why);
  std::exit(2);
}

long number(const char* text, long max) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > max) usage("bad number");
  return v;
}

enum class Fault { none, reset, truncate, error500, stall, trickle, keepalive_drop, busy503 };
const char* fault_name(Fault f) {
  switch (f) {
    case Fault::none:
      return "none";
    case Fault::reset:
      return "reset";
    case Fault::truncate:
      return "truncated";
    case Fault::error500:
      return "500";
    case Fault::stall:
      return "stall";
    case Fault::trickle:
      return "trickle";
    case Fault::keepalive_drop:
      return "keep-alive drop";
    case Fault::busy503:
      return "503";
  }
  return "?";
}

struct Soak {
  long files = 5000;
  long percent = 5;
  long busy = 39;
  long limit_above = 0;  // 0: fault mode
  long size = 0;         // 0: 4 to 64 KiB by file

  std::mutex mu;
  std::string manifest_text;   // made at the first request for it
  std::vector<Fault> pending;  // per file: the fault its next answer has (none once used)
  std::map<Fault, long> served_faults;
  long requests = 0;
  long first_429_at = -1;  // request number of the first 429
  int peak_after = 0;      // connections open at a request, 64 requests after the first 429

  std::size_t size_of(long i) const {
    if (size > 0) return static_cast<std::size_t>(size);
    return (4 + static_cast<std::size_t>(i * 7919 % 61)) * 1024;
  }
  std::string body_of(long i) const {
    return pattern_bytes(size_of(i), static_cast<uint32_t>(i) + 1);
  }

  void plan() {
    pending.assign(static_cast<std::size_t>(files), Fault::none);
    static const Fault kinds[] = {Fault::reset, Fault::truncate, Fault::error500,
                                  Fault::stall, Fault::trickle,  Fault::keepalive_drop};
    long faulty = 0, busy_left = busy;
    for (long i = 0; i < files; ++i) {
      // A fixed scatter: about `percent` of the files, spread over the list.
      if ((static_cast<unsigned long>(i) * 2654435761UL >> 7) % 100 >=
          static_cast<unsigned long>(percent))
        continue;
      if (busy_left > 0) {
        pending[static_cast<std::size_t>(i)] = Fault::busy503;
        --busy_left;
      } else {
        pending[static_cast<std::size_t>(i)] = kinds[faulty++ % 6];
      }
    }
  }

  std::string manifest() const {
    std::string out;
    for (long i = 0; i < files; ++i)
      out += "f" + std::to_string(i) + " " + std::to_string(size_of(i)) + " " +
             uvget::test::sha256_hex(body_of(i)) + "\n";
    return out;
  }

  Script answer(uvget::test::TestServer& server, const RecordedRequest& r) {
    if (limit_above > 0) return limited(server, r);
    if (r.target == "/manifest") {
      std::lock_guard lock(mu);
      if (manifest_text.empty()) manifest_text = manifest();
      return Script().send(http_response(200, manifest_text));
    }
    if (r.target.size() < 3 || r.target.compare(0, 2, "/f") != 0)
      return Script().send(http_response(404, "no such file"));
    // /f<i>, or /f<i>/NAME or /f<i>?QUERY: the same file under another name.
    char* end = nullptr;
    long i = std::strtol(r.target.c_str() + 2, &end, 10);
    if ((*end != '\0' && *end != '/' && *end != '?') || i < 0 || i >= files)
      return Script().send(http_response(404, "no such file"));
    Fault f;
    {
      std::lock_guard lock(mu);
      ++requests;
      f = pending[static_cast<std::size_t>(i)];
      if (f == Fault::keepalive_drop && r.index_on_connection == 0) f = Fault::none;  // not yet
      if (f != Fault::none) {
        pending[static_cast<std::size_t>(i)] = Fault::none;
        ++served_faults[f];
      }
    }
    std::string body = body_of(i);
    std::string whole = http_response(200, body);
    switch (f) {
      case Fault::none:
        return Script().send(whole);
      case Fault::reset:
        return Script().reset();
      case Fault::truncate:
        return Script().send(whole.substr(0, whole.size() - body.size() / 2)).close();
      case Fault::error500:
        return Script().send(http_response(500, "internal error"));
      case Fault::stall:
        return Script().pause_ms(3000).close();
      case Fault::trickle: {
        Script s;
        std::size_t head = whole.size() - body.size(), piece = (body.size() + 15) / 16;
        s.send(whole.substr(0, head));
        for (std::size_t at = 0; at < body.size(); at += piece)
          s.pause_ms(100).send(body.substr(at, piece));
        return s;
      }
      case Fault::keepalive_drop:
        return Script().close();
      case Fault::busy503:
        return Script().send(http_response(503, "busy", {{"Retry-After", "1"}}));
    }
    return Script().send(whole);
  }

  Script limited(uvget::test::TestServer& server, const RecordedRequest& r) {
    int open = server.current_connections();
    bool refuse = open > limit_above;
    {
      std::lock_guard lock(mu);
      ++requests;
      if (refuse && first_429_at < 0) first_429_at = requests;
      if (first_429_at >= 0 && requests > first_429_at + 64)
        peak_after = std::max(peak_after, open);
      if (refuse) ++served_faults[Fault::none];
    }
    if (refuse) return Script().send(http_response(429, "too many connections"));
    char* end = nullptr;
    long i = r.target.size() > 2 ? std::strtol(r.target.c_str() + 2, &end, 10) : -1;
    if (i < 0 || i >= files || *end != '\0') return Script().send(http_response(404, "no"));
    return Script().send(http_response(200, body_of(i)));
  }
};

}  // namespace

int main(int argc, char** argv) {
  Soak soak;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (arg == "--files")
      soak.files = number(value(), 10'000'000);
    else if (arg == "--faults")
      soak.percent = number(value(), 100);
    else if (arg == "--busy")
      soak.busy = number(value(), 10'000'000);
    else if (arg == "--limit-above")
      soak.limit_above = number(value(), 100'000);
    else if (arg == "--size")
      soak.size = number(value(), 1L << 30);
    else
      usage(arg == "--help" || arg == "-h" ? "a fault-injecting HTTP server" : "unknown option");
  }
  soak.plan();

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    uvget::test::TestServer server;
    server.set_handler([&](const RecordedRequest& r) { return soak.answer(server, r); });
    std::printf("ready %u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    std::lock_guard lock(soak.mu);
    std::fprintf(stderr, "soak_server: %ld requests, %d connections at most, %d accepted",
                 soak.requests, server.peak_connections(), server.accepted_connections());
    if (soak.limit_above > 0) {
      std::fprintf(stderr, "; %ld answered 429, %d connections at most after the first 429s\n",
                   soak.served_faults[Fault::none], soak.peak_after);
    } else {
      std::fprintf(stderr, "; faults served:");
      for (auto& [f, n] : soak.served_faults) std::fprintf(stderr, " %s %ld", fault_name(f), n);
      std::fprintf(stderr, "\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
