// Many hosts: what a client keeps per origin is bounded and goes once the origin is idle.
#include <gtest/gtest.h>

#include "support/certs.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using ManyHostsTest = LoopTest;

TEST_F(ManyHostsTest, AnIdleOriginsStateIsFreedOnceItsConnectionsClose) {
  TestServer server(
      [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); });
  ClientOptions o;
  o.max_connections = 16;
  o.keepalive_timeout_ms = 50;
  for (int i = 0; i < 300; ++i)
    o.resolve_overrides.push_back({"h" + std::to_string(i) + ".test", {"127.0.0.1"}});
  client(o);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 300; ++i)
    outs.push_back(fetch("http://h" + std::to_string(i) + ".test:" + std::to_string(server.port()) +
                         "/p" + std::to_string(i)));
  run();
  for (auto& out : outs) ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(server.accepted_connections(), 300) << "one connection per origin";
  EXPECT_LE(client().stats().origins_tracked, 16u) << "only origins with a parked connection";
  run_for(300);  // past the keep-alive timeout: every parked connection closes
  EXPECT_EQ(client().stats().open_connections, 0u);
  EXPECT_EQ(client().stats().origins_tracked, 0u);
}

TEST_F(ManyHostsTest, TlsSessionsAreKeptForABoundedNumberOfOrigins) {
  const TestCerts& certs = shared_test_certs();
  ClientOptions o;
  o.ca_file = certs.ca_cert;
  o.tls_session_cache = 3;
  o.keepalive_timeout_ms = 50;
  o.max_connections = 1;  // one handshake at a time: two at once may both verify the chain
  // Five origins (one server each, so no session crosses them), one certificate.
  std::vector<std::unique_ptr<TestServer>> more;
  for (int i = 0; i < 5; ++i)
    more.push_back(std::make_unique<TestServer>(
        [](const RecordedRequest& r) { return Script().send(http_response(200, r.target)); },
        TlsServerFiles{certs.good_cert, certs.good_key}));
  client(o);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (auto& s : more) outs.push_back(fetch(s->localhost_url("/x")));
  run();
  for (auto& out : outs) ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  ClientStats st = client().stats();
  EXPECT_EQ(st.tls_full_handshakes, 5u);
  EXPECT_EQ(st.tls_sessions_kept, 3u);
  EXPECT_EQ(st.tls_chains_verified, 1u) << "one chain for all five";
  run_for(300);
  EXPECT_EQ(client().stats().origins_tracked, 3u) << "only the origins whose session is kept";
}

}  // namespace
}  // namespace uvget::test
