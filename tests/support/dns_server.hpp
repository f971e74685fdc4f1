// DnsTestServer: an in-process authoritative DNS server (UDP and TCP on one port, own thread and
// uv loop) for resolver tests and benchmarks: a synthetic zone whose names all resolve to
// predictable loopback addresses, explicit records, and per-name failures, delays and drops.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace uvget::test {

struct DnsServerOptions {
  std::string bind = "127.0.0.1";  // an IPv4 or IPv6 literal ("::1")
  uint16_t port = 0;               // 0: ephemeral (the same port for UDP and TCP)
  // Every name below it ("<label>.crawl.test", one or more labels) has an A record,
  // DnsTestServer::address_for(name). The apex itself and names outside it get NXDOMAIN. "" for
  // no synthetic zone.
  std::string zone = "crawl.test";
  uint32_t ttl = 300;          // seconds, for synthetic answers
  int delay_ms = 0;            // before each answer (uv_timer), unless set per name
  bool aaaa_loopback = false;  // synthetic AAAA: ::1 (by default NOERROR with no answer)
  bool record_queries = true;  // keep the log and per-name counts (off for long benchmarks)
};

enum class DnsBehavior {
  kAnswer,    // records (explicit, else synthetic), else NXDOMAIN
  kNxdomain,  // rcode 3
  kServfail,  // rcode 2
  kRefused,   // rcode 5
  kDrop,      // never answer: the client times out
};

enum class DnsTransport { kUdp, kTcp };

struct DnsQuery {
  std::string name;  // lower-cased, without a trailing dot
  uint16_t type = 0;
  DnsTransport transport = DnsTransport::kUdp;
};

class DnsTestServer {
 public:
  static constexpr uint16_t kTypeA = 1;
  static constexpr uint16_t kTypeAaaa = 28;

  // Binds UDP and TCP and starts the thread; throws std::runtime_error if it cannot.
  DnsTestServer();
  explicit DnsTestServer(DnsServerOptions options);
  ~DnsTestServer();  // stops the loop (pending delayed answers are never sent), joins the thread
  DnsTestServer(const DnsTestServer&) = delete;
  DnsTestServer& operator=(const DnsTestServer&) = delete;

  uint16_t port() const { return port_; }
  const DnsServerOptions& options() const { return options_; }

  // The synthetic zone's A record for `name` (case and a trailing dot do not matter), so tests and
  // scripts can predict it: with h the 32-bit FNV-1a hash of the lower-cased name without its
  // trailing dot, "127.A.B.C" where A = (h >> 16) & 255, B = (h >> 8) & 255 and
  // C = 1 + (h & 255) % 254. Never 127.0.0.0, never a last octet of 0 or 255.
  static std::string address_for(std::string_view name);

  // Explicit records: `type` kTypeA or kTypeAaaa, `address` a literal of that family. Several per
  // name add up. A name with any explicit record answers from those only (NOERROR with no answer
  // for a type it has none of), inside the zone or not. Throws std::invalid_argument.
  void add(std::string_view name, uint16_t type, std::string_view address, uint32_t ttl = 300);
  void remove(std::string_view name);  // its explicit records (back to the synthetic answer)
  // `delay_ms` overrides the global delay for this name (0 answers at once); nullopt keeps it.
  void set_behavior(std::string_view name, DnsBehavior behavior,
                    std::optional<int> delay_ms = std::nullopt);
  void set_delay_ms(int ms);  // the global delay, for answers queued from now on

  // Well-formed queries received (a question parsed), dropped ones included.
  std::size_t total_queries() const;
  // Responses sent (error rcodes included), counted before the bytes go out: once a client has
  // an answer, it is in here.
  std::size_t answers_sent() const;
  std::size_t malformed_queries() const;  // ignored or answered FORMERR
  // By lower-cased name and type; both stay empty when options.record_queries is off.
  int queries(std::string_view name, uint16_t type) const;
  std::vector<DnsQuery> log() const;                           // in arrival order
  bool wait_for_queries(std::size_t n, int timeout_ms) const;  // until total_queries() >= n

  struct Impl;  // loop-thread state, defined in dns_server.cpp

 private:
  struct Decision;  // what to do with one question, defined in dns_server.cpp
  struct Record {
    uint16_t type = 0;
    std::string bytes;  // 4 or 16
    uint32_t ttl = 0;
  };
  struct NameRule {
    DnsBehavior behavior = DnsBehavior::kAnswer;
    std::optional<int> delay_ms;
  };

  void start();
  // Loop thread: records the query and decides its answer from the current settings.
  Decision decide(const DnsQuery& query, bool class_in);
  void note_answer_sent(int delta);  // +1 before a send, -1 if it failed
  void note_malformed();

  DnsServerOptions options_;
  std::string zone_;  // normalised

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, std::vector<Record>, std::less<>> records_;
  std::map<std::string, NameRule, std::less<>> rules_;
  int delay_ms_ = 0;
  std::size_t total_ = 0;
  std::size_t answered_ = 0;
  std::size_t malformed_ = 0;
  std::map<std::pair<std::string, uint16_t>, int> counts_;
  std::vector<DnsQuery> log_;

  uint16_t port_ = 0;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace uvget::test
