// Client options: limits, timeouts and defaults applied to every transfer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uvget {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// How host names are looked up.
enum class ResolverKind {
  /// DNS on the client's own loop (c-ares): /etc/hosts and /etc/resolv.conf (nameservers,
  /// search, ndots, timeout, attempts) read as the system's resolver reads them, A and AAAA,
  /// no thread and no threadpool, thousands of lookups at once.
  dns,
  /// The system's getaddrinfo on libuv's threadpool: every source nsswitch names (LDAP, mDNS,
  /// ...), at one threadpool thread per lookup in flight.
  system,
};

struct ClientOptions {
  /// Open connections (busy, idle or connecting) never exceed this, across all origins.
  int max_connections = 64;
  /// Open connections to one origin (scheme, host, port) never exceed this. Its effective
  /// limit adapts below it: 429 and 503 answers lower it, other answers raise it back (see
  /// TransferResult::host_limit and docs/architecture.md).
  int max_per_host = 16;
  /// Requests per second to one origin: a token bucket holding one token, so requests start at
  /// least 1/max_rate_per_host s apart. Retries and redirects count. 0: no limit.
  double max_rate_per_host = 0;
  /// A pause between the starts of two requests to one origin (wget's --wait). With
  /// random_wait, each pause is drawn anew from [0.5, 1.5] x wait_ms. 0: none.
  std::uint64_t wait_ms = 0;
  bool random_wait = false;
  /// Obey robots.txt (RFC 9309): before an origin's first request its /robots.txt is fetched
  /// (retried like any request, redirects followed, the first 512 KiB read) and kept for the
  /// client's life, up to 24 h. The group for user_agent's product token is used, else `*`.
  /// A URL it disallows fails with Errc::robots_disallowed and is never requested; so does
  /// every URL of an origin whose robots.txt answered 5xx or could not be fetched (for the
  /// next 5 minutes, then it is asked again). A 4xx allows everything. Crawl-delay paces the
  /// origin as wait_ms does, up to retry_after_max_ms.
  bool robots = false;
  /// Connections to an origin open gradually: at most this many of them may be waiting for
  /// their first response at once, so a host gets more only as it answers (a fast one has all
  /// of max_per_host after a few round trips). A small server with a short accept queue
  /// (python's http.server listens with a backlog of 5, and closes after each answer) is then
  /// not flooded with connections it drops. 0: all of max_per_host at once.
  int initial_per_host = 4;
  /// New connections to one origin that may be opening (TCP, and TLS) at the same time; more
  /// wait until one is established. A burst of thousands of downloads would otherwise overflow
  /// the server's accept queue (Linux caps it at 4096 by default, nginx asks for 511), and the
  /// dropped connections fail. 0: no limit.
  int max_connecting_per_host = 256;
  /// HTTP/1.1 pipelining: requests in flight on one connection. 1: one at a time (the default).
  /// Above 1, when every connection an origin may have is open and busy, a plain GET or HEAD
  /// (not split, not resumed) is sent on one of them behind the requests already there, once
  /// that connection has kept alive for one response and is not reading a large one. When the
  /// server closes with requests unanswered, they go again (not counted as retries); if it did
  /// so without `Connection: close`, pipelining to that origin stops.
  int pipeline = 1;
  /// Per connection attempt to one address; the next address gets a fresh timeout.
  std::uint64_t connect_timeout_ms = 30'000;
  /// Happy Eyeballs (RFC 8305): while an attempt to one address has not connected for this
  /// long, the next address (of the other family first) is tried beside it; the first to
  /// connect wins. A failed attempt starts the next one at once.
  std::uint64_t happy_eyeballs_delay_ms = 250;
  /// A transfer fails when no byte arrives (or leaves) for this long. 0: never.
  std::uint64_t idle_timeout_ms = 60'000;
  /// A transfer fails with Errc::timeout when it has not finished this long after get(),
  /// whatever it is doing (queued, connecting, reading). 0: no limit.
  std::uint64_t timeout_ms = 0;
  /// How long an unused keep-alive connection is kept open.
  std::uint64_t keepalive_timeout_ms = 30'000;
  int max_redirects = 10;
  /// Bytes in the response head (status line and headers).
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_header_count = 256;
  std::string user_agent = "uvget/0.1";
  /// Sent with every request, after the defaults; a header named here replaces the default.
  HeaderList headers;
  /// Verify the server's certificate chain, validity dates and name (DNS name or IP address).
  bool tls_verify = true;
  /// PEM (or DER) file of trusted CAs replacing the system bundle; empty: the file the
  /// SSL_CERT_FILE environment variable names when set (read by Client::create), else the system
  /// bundle.
  std::string ca_file;
  /// Origins whose TLS session is kept for resumption (least recently used go first).
  std::size_t tls_session_cache = 1024;
  /// Follow a redirect from https to plain http. Off: such a redirect is an error, because a
  /// secure download must not silently become a plain one.
  bool allow_https_downgrade = false;
  /// Host names answered without DNS, in this order (like curl's --resolve), e.g.
  /// {"mirror.test", {"::1", "127.0.0.1"}}: the next address is tried when one fails.
  std::vector<std::pair<std::string, std::vector<std::string>>> resolve_overrides;
  /// Retries after a failure that may pass: DNS temporary failure, connect failure or timeout,
  /// reset, idle timeout, a body cut short, HTTP 408, 429 and 5xx (never another 4xx, never a
  /// TLS verification or file error, never past timeout_ms). 0: none.
  int retries = 0;
  /// Before retry k (1, 2, ...) the transfer waits a random time in [0, min(retry_wait_ms *
  /// 2^(k-1), retry_max_wait_ms)] (exponential backoff with full jitter), or longer when the
  /// server sent Retry-After (seconds or an HTTP date), which is honoured up to
  /// retry_after_max_ms; a longer Retry-After ends the transfer with the server's error.
  std::uint64_t retry_wait_ms = 1000;
  std::uint64_t retry_max_wait_ms = 30'000;
  std::uint64_t retry_after_max_ms = 120'000;
  /// A transfer that moves fewer than low_speed_bytes_per_s for low_speed_time_ms in a row (from
  /// its request on, measured each second; not while its own sink holds it back) fails with
  /// Errc::too_slow, which is retried like a timeout. 0 in either: off. Catches a trickle that
  /// the idle timeout, which needs a byte-free stretch, never sees.
  std::uint64_t low_speed_bytes_per_s = 0;
  std::uint64_t low_speed_time_ms = 0;
  /// Caps the bytes read per second over all of this client's downloads together (a token
  /// bucket; reads are sized to what is left and sockets wait, not read, when it is empty, so
  /// the kernel's flow control slows the servers). 0: no cap. The Runner splits it between loops.
  std::uint64_t limit_rate_bytes_per_s = 0;
  /// Time one pass of the host's loop may spend on this client's reads; after that, sockets are
  /// not read until the next pass (the bytes wait in the kernel), so the host's own timers and
  /// handles are never held for long: a pass over many ready connections would otherwise decrypt
  /// and parse a response on each. Costs some throughput; 0: no limit (the command line's choice,
  /// and the Runner's for its worker loops).
  std::uint64_t loop_slice_us = 500;
  ResolverKind resolver = ResolverKind::dns;
  /// Names kept in the per-client DNS cache (least recently used go first). An answer is kept
  /// for its TTL, at least 5 s (names from /etc/hosts have none) and at most dns_cache_ttl_ms
  /// (the system resolver tells no TTL: 60 s at most); "no such host" for dns_negative_ttl_ms.
  std::size_t dns_cache_size = 10'000;
  std::uint64_t dns_cache_ttl_ms = 300'000;
  std::uint64_t dns_negative_ttl_ms = 5'000;
  /// Lookups started ahead for queued downloads whose host is not cached yet, so that a
  /// connection finds its addresses ready when its turn comes. 0: none ahead.
  std::size_t dns_prefetch = 1'000;
};

}  // namespace uvget
