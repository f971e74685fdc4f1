// The resolver against the project's own DNS server, inside a private network namespace: the
// server answers on 127.0.0.1:53 and the namespace's own /etc/resolv.conf and /etc/hosts (bind
// mounts the host never sees) point at it, so c-ares reads them as it would on a real machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "net/resolver.hpp"
#include "support/command.hpp"
#include "support/dns_server.hpp"
#include "support/loop_fixture.hpp"
#include "support/netns.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

constexpr uint16_t kA = DnsTestServer::kTypeA;
constexpr uint16_t kAaaa = DnsTestServer::kTypeAaaa;

// One server and one resolv.conf for the whole binary: c-ares reads the file whenever a channel
// is made, so every Resolver and Client below sees it.
DnsTestServer* dns = nullptr;

class DnsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!in_private_netns()) return;  // netns_test_main reports why
    DnsServerOptions o;
    o.port = 53;
    o.zone = "crawl.test";
    o.ttl = 300;
    server_ = std::make_unique<DnsTestServer>(o);
    dns = server_.get();
    std::string why;
    resolv_ = write_temp_file(
        "nameserver 127.0.0.1\nsearch corp.test lab.test\noptions ndots:1 timeout:1 attempts:1\n");
    hosts_ = write_temp_file("127.0.0.1 localhost\n127.0.0.9 pinned.example pinned\n");
    ASSERT_TRUE(bind_over(resolv_, "/etc/resolv.conf", &why)) << why;
    ASSERT_TRUE(bind_over(hosts_, "/etc/hosts", &why)) << why;
  }
  void TearDown() override {
    dns = nullptr;
    server_.reset();
    std::remove(resolv_.c_str());
    std::remove(hosts_.c_str());
  }

 private:
  std::unique_ptr<DnsTestServer> server_;
  std::string resolv_, hosts_;
};

std::string ip_of(const sockaddr_storage& a) {
  std::string s = address_string(a);
  if (s.front() == '[') return s.substr(1, s.find(']') - 1);
  return s.substr(0, s.rfind(':'));
}

struct Answer {
  bool done = false;
  Error error;
  std::vector<std::string> ips;
  std::uint16_t port = 0;
};

class ResolverTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    ASSERT_NE(dns, nullptr) << "no DNS server: the namespace could not be made";
  }

  std::unique_ptr<Resolver> make(Resolver::Options o = {}) {
    return std::make_unique<Resolver>(&loop_, o);
  }

  std::shared_ptr<Answer> ask(Resolver& r, const std::string& host, std::uint16_t port = 80) {
    auto a = std::make_shared<Answer>();
    r.resolve(host, port, [a](const Error& e, std::shared_ptr<const AddressList> list) {
      EXPECT_FALSE(a->done) << "called twice";
      a->done = true;
      a->error = e;
      if (list)
        for (auto& s : *list) {
          a->ips.push_back(ip_of(s));
          a->port = ntohs(reinterpret_cast<const sockaddr_in*>(&s)->sin_port);
        }
    });
    return a;
  }

  // The resolver's handles do not keep the loop alive (a host's loop must be able to end), so
  // a test keeps it running itself until `done` holds.
  template <class Pred>
  void run_until(Pred done, std::uint64_t limit_ms = 20'000) {
    struct Box {
      Pred* pred;
      std::uint64_t left;
    } box{&done, limit_ms};
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    t.data = &box;
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
          auto* b = static_cast<Box*>(h->data);
          if ((*b->pred)() || b->left-- == 0) uv_timer_stop(h);
        },
        1, 1);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_TRUE(done()) << "still waiting after " << limit_ms << " ms";
  }

  void close(std::unique_ptr<Resolver>& r) {
    bool idle = false;
    r->close([&] { idle = true; });
    run_until([&] { return idle; });
    r.reset();
  }
};

TEST_F(ResolverTest, ThousandsOfNamesAtOnceEachGetTheirOwnAddress) {
  auto r = make();
  std::vector<std::pair<std::string, std::shared_ptr<Answer>>> asked;
  for (int i = 0; i < 2000; ++i) {
    std::string name = "many" + std::to_string(i) + ".crawl.test";
    asked.emplace_back(name, ask(*r, name, 8080));
  }
  EXPECT_EQ(r->in_flight(), 2000u);
  run_until([&] {
    return std::all_of(asked.begin(), asked.end(), [](auto& p) { return p.second->done; });
  });
  for (auto& [name, a] : asked) {
    ASSERT_FALSE(a->error) << name << ": " << a->error.message();
    EXPECT_EQ(a->ips, std::vector<std::string>{DnsTestServer::address_for(name)}) << name;
    EXPECT_EQ(a->port, 8080);
    EXPECT_EQ(dns->queries(name, kA), 1) << name;
  }
  EXPECT_EQ(r->stats().lookups, 2000u);
  close(r);
}

TEST_F(ResolverTest, LookupsOfOneNameAreMergedAndThenCached) {
  auto r = make();
  std::vector<std::shared_ptr<Answer>> asked;
  for (int i = 0; i < 50; ++i) asked.push_back(ask(*r, "merged.crawl.test"));
  run_until([&] { return asked.back()->done; });
  for (auto& a : asked) EXPECT_EQ(a->ips, asked.front()->ips);
  EXPECT_EQ(dns->queries("merged.crawl.test", kA), 1);
  auto later = ask(*r, "merged.crawl.test");
  EXPECT_TRUE(later->done) << "a cached answer comes inline";
  EXPECT_EQ(dns->queries("merged.crawl.test", kA), 1);
  EXPECT_EQ(r->stats().lookups, 1u);
  EXPECT_EQ(r->stats().cache_hits, 50u);
  close(r);
}

TEST_F(ResolverTest, AnAnswerIsCachedForItsTtlAndAskedAgainAfter) {
  dns->add("short.crawl.test", kA, "127.0.0.21", 1);
  Resolver::Options o;
  o.min_ttl_ms = 0;
  auto r = make(o);
  auto first = ask(*r, "short.crawl.test");
  run_until([&] { return first->done; });
  EXPECT_EQ(first->ips, std::vector<std::string>{"127.0.0.21"});
  dns->remove("short.crawl.test");
  dns->add("short.crawl.test", kA, "127.0.0.22", 1);
  auto cached = ask(*r, "short.crawl.test");
  EXPECT_TRUE(cached->done);
  EXPECT_EQ(cached->ips, std::vector<std::string>{"127.0.0.21"}) << "within the TTL";
  run_for(1100);  // past the TTL
  auto again = ask(*r, "short.crawl.test");
  run_until([&] { return again->done; });
  EXPECT_EQ(again->ips, std::vector<std::string>{"127.0.0.22"});
  EXPECT_EQ(dns->queries("short.crawl.test", kA), 2);
  close(r);
}

TEST_F(ResolverTest, ATtlIsCappedAndKeptAtLeastTheFloor) {
  dns->add("long.crawl.test", kA, "127.0.0.23", 86400);
  dns->add("zero.crawl.test", kA, "127.0.0.24", 0);
  Resolver::Options o;
  o.max_ttl_ms = 300;
  o.min_ttl_ms = 200;
  auto r = make(o);
  auto a = ask(*r, "long.crawl.test");
  auto z = ask(*r, "zero.crawl.test");
  run_until([&] { return a->done && z->done; });
  EXPECT_TRUE(ask(*r, "zero.crawl.test")->done) << "a TTL of 0 is kept for the floor";
  run_for(400);
  auto b = ask(*r, "long.crawl.test");
  run_until([&] { return b->done; });
  EXPECT_EQ(dns->queries("long.crawl.test", kA), 2) << "a day's TTL is held to the cap";
  EXPECT_EQ(dns->queries("zero.crawl.test", kA), 1);
  close(r);
}

TEST_F(ResolverTest, NxdomainIsPermanentAndRememberedBriefly) {
  auto r = make();
  auto a = ask(*r, "nope.example");
  run_until([&] { return a->done; });
  EXPECT_EQ(a->error.code, Errc::resolve) << a->error.message();
  EXPECT_NE(a->error.message().find("cannot resolve host 'nope.example': no such host (NXDOMAIN)"),
            std::string::npos)
      << a->error.message();
  // The search domains were tried too (the name has ndots dots, so it went first).
  auto log = dns->log();
  std::vector<std::string> order;
  for (auto& q : log)
    if (q.type == kA && q.name.starts_with("nope.example")) order.push_back(q.name);
  EXPECT_EQ(order, (std::vector<std::string>{"nope.example", "nope.example.corp.test",
                                             "nope.example.lab.test"}));
  std::size_t before = dns->total_queries();
  auto again = ask(*r, "nope.example");
  EXPECT_TRUE(again->done) << "the negative answer is cached";
  EXPECT_EQ(again->error.code, Errc::resolve);
  EXPECT_EQ(dns->total_queries(), before);
  close(r);
}

TEST_F(ResolverTest, ServfailRefusedAndTimeoutsAreTemporaryAndNotCached) {
  dns->set_behavior("broken.crawl.test", DnsBehavior::kServfail);
  dns->set_behavior("refusing.crawl.test", DnsBehavior::kRefused);
  dns->set_behavior("silent.crawl.test", DnsBehavior::kDrop);
  auto r = make();
  auto s = ask(*r, "broken.crawl.test");
  auto f = ask(*r, "refusing.crawl.test");
  auto t = ask(*r, "silent.crawl.test");
  run_until([&] { return s->done && f->done && t->done; });
  EXPECT_EQ(s->error.code, Errc::dns_temporary) << s->error.message();
  EXPECT_NE(s->error.message().find("SERVFAIL"), std::string::npos) << s->error.message();
  EXPECT_NE(s->error.message().find("'broken.crawl.test'"), std::string::npos);
  EXPECT_EQ(f->error.code, Errc::dns_temporary) << f->error.message();
  EXPECT_NE(f->error.message().find("REFUSED"), std::string::npos) << f->error.message();
  EXPECT_EQ(t->error.code, Errc::dns_temporary) << t->error.message();
  EXPECT_NE(t->error.message().find("timed out"), std::string::npos) << t->error.message();
  dns->set_behavior("broken.crawl.test", DnsBehavior::kAnswer);
  auto healed = ask(*r, "broken.crawl.test");
  run_until([&] { return healed->done; });
  EXPECT_FALSE(healed->error) << "a temporary failure is not remembered";
  EXPECT_EQ(healed->ips, std::vector<std::string>{DnsTestServer::address_for("broken.crawl.test")});
  close(r);
}

TEST_F(ResolverTest, ASingleLabelNameGoesThroughTheSearchDomains) {
  dns->add("build.lab.test", kA, "127.0.0.31");
  auto r = make();
  auto a = ask(*r, "build");
  run_until([&] { return a->done; });
  ASSERT_FALSE(a->error) << a->error.message();
  EXPECT_EQ(a->ips, std::vector<std::string>{"127.0.0.31"});
  EXPECT_EQ(dns->queries("build.corp.test", kA), 1) << "the first search domain first";
  EXPECT_EQ(dns->queries("build.lab.test", kA), 1);
  close(r);
}

TEST_F(ResolverTest, EtcHostsAnswersWithoutAQuery) {
  auto r = make();
  auto a = ask(*r, "pinned.example");
  run_until([&] { return a->done; });
  ASSERT_FALSE(a->error) << a->error.message();
  EXPECT_EQ(a->ips, std::vector<std::string>{"127.0.0.9"});
  EXPECT_EQ(dns->queries("pinned.example", kA), 0);
  EXPECT_EQ(dns->queries("pinned.example", kAaaa), 0);
  close(r);
}

TEST_F(ResolverTest, BothFamiliesAlternateIpv6First) {
  dns->add("dual.crawl.test", kA, "127.0.0.41");
  dns->add("dual.crawl.test", kA, "127.0.0.42");
  dns->add("dual.crawl.test", kAaaa, "::1");
  auto r = make();
  auto a = ask(*r, "dual.crawl.test");
  run_until([&] { return a->done; });
  ASSERT_FALSE(a->error) << a->error.message();
  ASSERT_EQ(a->ips.size(), 3u);
  EXPECT_EQ(a->ips[0], "::1");
  EXPECT_EQ(std::set<std::string>(a->ips.begin() + 1, a->ips.end()),
            (std::set<std::string>{"127.0.0.41", "127.0.0.42"}));
  EXPECT_EQ(dns->queries("dual.crawl.test", kA), 1);
  EXPECT_EQ(dns->queries("dual.crawl.test", kAaaa), 1);
  close(r);
}

TEST_F(ResolverTest, CloseCancelsALookupInFlightAndLeavesTheLoopCloseable) {
  dns->set_behavior("hanging.crawl.test", DnsBehavior::kDrop);
  auto r = make();
  auto a = ask(*r, "hanging.crawl.test");
  ASSERT_TRUE(dns->wait_for_queries(1, 5000));
  run_for(50);
  EXPECT_FALSE(a->done);
  close(r);  // TearDown checks that uv_loop_close() succeeds
  EXPECT_FALSE(a->done) << "no callback after close()";
}

TEST_F(ResolverTest, TheSystemResolverReadsTheSameFiles) {
  Resolver::Options o;
  o.kind = ResolverKind::system;
  auto r = make(o);
  auto a = ask(*r, "sys.crawl.test");
  auto h = ask(*r, "pinned.example");
  auto n = ask(*r, "nope.example");
  run_until([&] { return a->done && h->done && n->done; });
  EXPECT_EQ(a->ips, std::vector<std::string>{DnsTestServer::address_for("sys.crawl.test")});
  EXPECT_EQ(h->ips, std::vector<std::string>{"127.0.0.9"});
  EXPECT_EQ(n->error.code, Errc::resolve) << n->error.message();
  close(r);
}

TEST_F(ResolverTest, AClientFetchesByNameAndLooksItUpOnce) {
  dns->add("www.crawl.test", kA, "127.0.0.1");
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 20; ++i)
    outs.push_back(
        fetch("http://www.crawl.test:" + std::to_string(server.port()) + "/p" + std::to_string(i)));
  run();
  for (auto& o : outs) EXPECT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(dns->queries("www.crawl.test", kA), 1);
  EXPECT_EQ(client().stats().dns_lookups, 1u);
}

// The command line in the namespace: a name that does not exist is one clear line and exit 1,
// a name that does is fetched, with either resolver.
TEST_F(ResolverTest, TheCommandLineNamesTheDnsCauseAndFetchesByName) {
  const char* bin = std::getenv("UVGET_BIN");
  ASSERT_NE(bin, nullptr);
  dns->add("cli.crawl.test", kA, "127.0.0.1");
  TestServer server([](const RecordedRequest&) { return Script().send(http_response(200, "ok")); });
  std::string port = std::to_string(server.port());
  for (std::string kind : {"dns", "system"}) {
    auto r = run_command(
        {bin, "-q", "--resolver", kind, "-o", "-", "http://cli.crawl.test:" + port + "/x"});
    EXPECT_EQ(r.exit_code, 0) << kind << ": " << r.err;
    EXPECT_EQ(r.out, "ok") << kind;
    r = run_command({bin, "-q", "--retries", "0", "--resolver", kind, "-o", "-",
                     "http://missing.example:" + port + "/x"});
    EXPECT_EQ(r.exit_code, 1) << kind;
    EXPECT_NE(r.err.find("http://missing.example:" + port +
                         "/x: cannot resolve host "
                         "'missing.example'"),
              std::string::npos)
        << kind << ": " << r.err;
  }
}

// An international host name is looked up and sent as its A-labels, as curl does.
TEST_F(ResolverTest, AnInternationalNameIsResolvedAndSentAsALabels) {
  const char* bin = std::getenv("UVGET_BIN");
  ASSERT_NE(bin, nullptr);
  dns->add("xn--bcher-kva.crawl.test", kA, "127.0.0.1");
  TestServer server([](const RecordedRequest& r) {
    return Script().send(http_response(200, std::string(r.header("Host").value_or(""))));
  });
  std::string port = std::to_string(server.port());
  auto r = run_command({bin, "-q", "-o", "-",
                        "http://b\xc3\xbc"
                        "cher.crawl.test:" +
                            port + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "xn--bcher-kva.crawl.test:" + port);
  EXPECT_EQ(dns->queries("xn--bcher-kva.crawl.test", kA), 1);
}

}  // namespace
}  // namespace uvget::test

int main(int argc, char** argv) {
  ::testing::AddGlobalTestEnvironment(new uvget::test::DnsEnvironment);
  return uvget::test::netns_test_main(argc, argv);
}
