// dns_test_server: DnsTestServer as a process, for benchmarks and manual runs.
//   dns_test_server [--bind 127.0.0.1] [--port 0] [--zone crawl.test] [--delay-ms 0] [--ttl 300]
//                   [--aaaa-loopback]
// Prints "ready PORT" on stdout once listening, serves until SIGTERM or SIGINT, then prints
// "dns_test_server: N answered, M queries" on stderr and exits 0.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "support/dns_server.hpp"

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "dns_test_server: %s\n"
               "usage: dns_test_server [--bind ADDR] [--port N] [--zone ZONE] [--delay-ms N]\n"
               "                       [--ttl SECONDS] [--aaaa-loopback]\n",
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

}  // namespace

int main(int argc, char** argv) {
  uvget::test::DnsServerOptions options;
  // A benchmark resolves thousands of distinct names: no per-name log growing without bound.
  options.record_queries = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (arg == "--bind") {
      options.bind = value();
    } else if (arg == "--port") {
      options.port = static_cast<uint16_t>(number(value(), 65535));
    } else if (arg == "--zone") {
      options.zone = value();
    } else if (arg == "--delay-ms") {
      options.delay_ms = static_cast<int>(number(value(), 3600 * 1000));
    } else if (arg == "--ttl") {
      options.ttl = static_cast<uint32_t>(number(value(), 0x7fffffff));
    } else if (arg == "--aaaa-loopback") {
      options.aaaa_loopback = true;
    } else if (arg == "--help" || arg == "-h") {
      usage("an authoritative DNS server for tests");
    } else {
      usage("unknown option");
    }
  }

  // Blocked before the server's thread starts, so it inherits the mask and sigwait() below is
  // the only place these signals land.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    uvget::test::DnsTestServer server(options);
    std::printf("ready %u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    std::size_t answered = server.answers_sent();
    std::size_t received = server.total_queries();
    std::fprintf(stderr, "dns_test_server: %zu answered, %zu queries\n", answered, received);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dns_test_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
