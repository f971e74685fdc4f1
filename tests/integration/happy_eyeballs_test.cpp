// Happy Eyeballs (RFC 8305): a host's addresses are raced, IPv6 first, so one family that
// swallows connections costs the attempt delay, not a connect timeout.
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

using HappyEyeballsTest = LoopTest;

// A server on 127.0.0.1:P and, when `hole_v6`, a full-backlog listener on [::1]:P that never
// completes a connect. The name "dual.test" answers both, IPv6 listed first.
struct DualHost {
  TestServer server{[](const RecordedRequest& r) {
    return Script().send(http_response(200, "over " + r.target));
  }};
  std::unique_ptr<BlackholeListener> hole;
  explicit DualHost(bool hole_v6) {
    if (hole_v6) hole = std::make_unique<BlackholeListener>("::1", server.port());
  }
  std::string url(const std::string& target) const {
    return "http://dual.test:" + std::to_string(server.port()) + target;
  }
};

ClientOptions dual_options() {
  ClientOptions o;
  o.resolve_overrides = {{"dual.test", {"::1", "127.0.0.1"}}};  // tried in this order
  // A connect timeout far beyond the whole-transfer deadline: waiting for the black-holed
  // address to time out would fail the transfer; racing the other address finishes it.
  o.connect_timeout_ms = 600'000;
  o.timeout_ms = 20'000;
  return o;
}

TEST_F(HappyEyeballsTest, ABlackHoledIpv6AddressIsRacedAndIpv4Wins) {
  DualHost host(true);
  client(dual_options());
  auto o = fetch(host.url("/a"));
  run();
  ASSERT_TRUE(o->result.ok()) << o->result.error.message();
  EXPECT_EQ(o->body, "over /a");
  EXPECT_EQ(host.server.accepted_connections(), 1);
  ClientStats st = client().stats();
  EXPECT_EQ(st.connect_attempts, 2u) << "IPv6 first, then IPv4 beside it";
  EXPECT_EQ(st.connections_opened, 1u);
}

TEST_F(HappyEyeballsTest, ARefusedAddressMovesToTheNextAtOnce) {
  // Nothing listens on [::1]:P: the refusal starts the IPv4 attempt without waiting.
  DualHost host(false);
  ClientOptions o = dual_options();
  o.happy_eyeballs_delay_ms = 600'000;  // only a failure can start the second attempt
  client(o);
  auto out = fetch(host.url("/b"));
  run();
  ASSERT_TRUE(out->result.ok()) << out->result.error.message();
  EXPECT_EQ(client().stats().connect_attempts, 2u);
}

TEST_F(HappyEyeballsTest, EveryAddressFailingNamesTheLastAndTheCount) {
  BlackholeListener hole4("127.0.0.1", 0);
  std::unique_ptr<BlackholeListener> hole6;
  ASSERT_NO_THROW(hole6 = std::make_unique<BlackholeListener>("::1", hole4.port()));
  ClientOptions o;
  o.resolve_overrides = {{"dual.test", {"127.0.0.1", "::1"}}};
  o.connect_timeout_ms = 200;
  o.happy_eyeballs_delay_ms = 50;
  client(o);
  auto out = fetch("http://dual.test:" + std::to_string(hole4.port()) + "/c");
  run();
  EXPECT_EQ(out->result.error.code, Errc::connect_timeout) << out->result.error.message();
  EXPECT_NE(out->result.error.message().find("(tried 2 addresses)"), std::string::npos)
      << out->result.error.message();
  EXPECT_EQ(client().stats().connect_attempts, 2u);
}

TEST_F(HappyEyeballsTest, TheLosingAttemptIsClosedAndManyConnectionsEachWinOnce) {
  DualHost host(true);
  ClientOptions o = dual_options();
  o.max_per_host = 8;
  client(o);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 8; ++i) outs.push_back(fetch(host.url("/m" + std::to_string(i))));
  run();
  for (auto& out : outs) EXPECT_TRUE(out->result.ok()) << out->result.error.message();
  ClientStats st = client().stats();
  EXPECT_EQ(st.connections_opened, static_cast<std::uint64_t>(host.server.accepted_connections()));
  EXPECT_EQ(st.connect_attempts, 2 * st.connections_opened);
  client().close([] {});
  run();  // the black-holed attempts are closed with everything else: the loop ends
}

}  // namespace
}  // namespace uvget::test
