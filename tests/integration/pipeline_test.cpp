// HTTP/1.1 pipelining (ClientOptions::pipeline) against the scripted test server: requests go
// out behind others on one connection, every body lands with its own URL, and a server that
// closes, cuts or ignores a pipeline costs no attempt and no byte.
#include <gtest/gtest.h>

#include <map>

#include "support/certs.hpp"
#include "support/loop_fixture.hpp"
#include "support/test_server.hpp"

namespace uvget::test {
namespace {

class PipelineTest : public LoopTest {
 protected:
  // Every target gets a body of its own; `pause_ms` before each answer lets requests pile up.
  static std::string body_of(const std::string& target) {
    return target + ":" +
           pattern_bytes(3000 + target.size() * 97, static_cast<uint32_t>(target.size()));
  }

  static Script answer(const RecordedRequest& r, int pause_ms = 10, Headers extra = {}) {
    Script s;
    if (pause_ms > 0) s.pause_ms(pause_ms);
    std::string body = body_of(r.target);
    if (r.method == "HEAD") {
      extra.emplace_back("Content-Length", std::to_string(body.size()));
      return s.send(http_response(200, "", extra));  // the length a GET would get, no body
    }
    return s.send(http_response(200, body, extra));
  }

  ClientOptions one_connection(int depth) {
    ClientOptions o;
    o.max_connections = 1;
    o.max_per_host = 1;
    o.pipeline = depth;
    return o;
  }

  std::vector<std::shared_ptr<Outcome>> fetch_all(const TestServer& server, int n,
                                                  const std::string& prefix = "/f") {
    std::vector<std::shared_ptr<Outcome>> out;
    for (int i = 0; i < n; ++i) out.push_back(fetch(server.url(prefix + std::to_string(i))));
    return out;
  }

  static void expect_all_whole(const std::vector<std::shared_ptr<Outcome>>& outs,
                               const std::string& prefix = "/f") {
    for (std::size_t i = 0; i < outs.size(); ++i) {
      const auto& o = *outs[i];
      std::string target = prefix + std::to_string(i);
      ASSERT_TRUE(o.done) << target;
      EXPECT_TRUE(o.result.ok()) << target << ": " << o.result.error.message();
      EXPECT_EQ(o.body, body_of(target)) << target << " got another URL's bytes, or a part";
      EXPECT_EQ(o.result.attempts, 1) << target << ": an unanswered request counted as a try";
    }
  }

  // fetch() of /fI that also gives the transfer's id (for cancel()).
  std::shared_ptr<Outcome> fetch_with_id(const TestServer& server, int i, TransferId* id) {
    auto out = std::make_shared<Outcome>();
    Request req;
    req.url = server.url("/f" + std::to_string(i));
    req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    cbs.on_done = [out](const TransferResult& r) {
      out->done = true;
      out->result = r;
    };
    auto got = client_->get(std::move(req), std::move(cbs));
    EXPECT_TRUE(got) << got.error().message();
    if (got) *id = *got;
    return out;
  }

  static int pipelined(const TestServer& server, int connection_id = 0) {
    int n = 0;
    for (const auto& r : server.requests())
      if (r.pipelined && (connection_id == 0 || r.connection_id == connection_id)) ++n;
    return n;
  }
};

TEST_F(PipelineTest, RequestsGoBehindOthersOnOneConnection) {
  TestServer server([](const RecordedRequest& r) { return answer(r); });
  client(one_connection(4));
  auto outs = fetch_all(server, 24);
  run();
  expect_all_whole(outs);
  EXPECT_EQ(server.accepted_connections(), 1);
  // Only the first request and the one after it (the connection had not kept alive yet) go
  // alone; the rest are sent while earlier responses are still coming.
  EXPECT_GE(pipelined(server), 20) << "a freed place in the pipeline was not refilled";
  ClientStats st = client_->stats();
  EXPECT_EQ(st.requests_sent, 24u);
  EXPECT_EQ(st.requests_reused, 23u);
}

TEST_F(PipelineTest, OffByDefault) {
  TestServer server([](const RecordedRequest& r) { return answer(r); });
  ClientOptions o = one_connection(1);
  client(o);
  auto outs = fetch_all(server, 8);
  run();
  expect_all_whole(outs);
  EXPECT_EQ(pipelined(server), 0);
  EXPECT_EQ(server.accepted_connections(), 1);
}

TEST_F(PipelineTest, NeverMoreThanTheDepthInFlight) {
  // The server counts the requests it has seen but not answered when each answer starts.
  std::mutex m;
  int seen = 0, answered = 0, most = 0;
  TestServer server([&](const RecordedRequest& r) {
    {
      std::lock_guard lock(m);
      ++seen;
    }
    Script s = answer(r, 15);
    return s;
  });
  client(one_connection(3));
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 15; ++i) {
    auto out = std::make_shared<Outcome>();
    Request req;
    req.url = server.url("/f" + std::to_string(i));
    req.sink = make_memory_sink(&out->body);
    Callbacks cbs;
    cbs.on_done = [&, out](const TransferResult& r) {
      out->done = true;
      out->result = r;
      std::lock_guard lock(m);
      ++answered;
    };
    cbs.on_head = [&](const Response&) {
      std::lock_guard lock(m);
      // Requests the server has read, minus those answered: a lower bound of what is in flight
      // from the client, and never above the depth.
      most = std::max(most, seen - answered);
    };
    ASSERT_TRUE(client_->get(std::move(req), std::move(cbs)));
    outs.push_back(out);
  }
  run();
  expect_all_whole(outs);
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 2);
}

TEST_F(PipelineTest, HeadAndGetShareAPipeline) {
  TestServer server([](const RecordedRequest& r) { return answer(r); });
  client(one_connection(4));
  std::vector<std::shared_ptr<Outcome>> gets, heads;
  for (int i = 0; i < 12; ++i) {
    std::string t = "/f" + std::to_string(i);
    if (i % 2) {
      Request req;
      req.method = Method::head;
      heads.push_back(fetch(server.url(t), std::move(req)));
    } else {
      gets.push_back(fetch(server.url(t)));
    }
  }
  run();
  for (std::size_t i = 0; i < gets.size(); ++i) {
    ASSERT_TRUE(gets[i]->result.ok()) << gets[i]->result.error.message();
    EXPECT_EQ(gets[i]->body, body_of("/f" + std::to_string(2 * i)));
  }
  for (auto& h : heads) {
    ASSERT_TRUE(h->result.ok()) << h->result.error.message();
    EXPECT_EQ(h->body, "");  // a HEAD answer's Content-Length promises nothing to read
  }
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_GE(pipelined(server), 6);
}

TEST_F(PipelineTest, ConnectionCloseMidPipelineSendsTheRestAgainAndKeepsPipelining) {
  // The third answer on each connection says Connection: close and closes: the requests behind
  // it go again on a new connection, and pipelining goes on there (the server warned).
  TestServer server([](const RecordedRequest& r) {
    if (r.index_on_connection == 2) return answer(r, 10, {{"Connection", "close"}}).close();
    return answer(r);
  });
  client(one_connection(4));
  auto outs = fetch_all(server, 16);
  run();
  expect_all_whole(outs);
  EXPECT_GE(server.accepted_connections(), 4);
  EXPECT_GT(pipelined(server, 3), 0) << "pipelining stopped after a warned close";
  // Sent again in list order: the last time each URL went out follows the list.
  std::map<int, std::size_t> last;
  auto reqs = server.requests();
  for (std::size_t i = 0; i < reqs.size(); ++i) last[std::stoi(reqs[i].target.substr(2))] = i;
  for (int i = 1; i < 16; ++i)
    EXPECT_LT(last[i - 1], last[i]) << "/f" << i << " went before /f" << i - 1;
}

TEST_F(PipelineTest, AServerThatDropsAPipelineSilentlyGetsOneRequestAtATime) {
  // Connection 1 answers three requests, then closes without a word while more wait.
  TestServer server([](const RecordedRequest& r) {
    if (r.connection_id == 1 && r.index_on_connection == 2) return answer(r).close();
    return answer(r);
  });
  client(one_connection(4));
  auto outs = fetch_all(server, 12);
  run();
  expect_all_whole(outs);
  EXPECT_GT(pipelined(server, 1), 0);
  for (const auto& r : server.requests())
    EXPECT_FALSE(r.connection_id > 1 && r.pipelined) << r.target << " was pipelined again";
}

TEST_F(PipelineTest, AServerThatIgnoresPipelinedRequestsCostsOneIdleTimeout) {
  // Pipelined requests are read and never answered (the server stalls): after one idle
  // timeout they go again, one at a time.
  TestServer server([](const RecordedRequest& r) {
    if (r.pipelined) return Script().stall();
    return answer(r, 0);
  });
  ClientOptions o = one_connection(4);
  o.idle_timeout_ms = 300;
  client(o);
  auto outs = fetch_all(server, 10);
  run();
  expect_all_whole(outs);
  // One pipelined request was ever read (then the origin went to one at a time): a single
  // idle timeout, which cost one connection, not one per connection.
  EXPECT_EQ(pipelined(server), 1);
  EXPECT_EQ(server.accepted_connections(), 2);
}

TEST_F(PipelineTest, CancellingARequestBehindOthersThrowsItsAnswerAwayAndKeepsTheConnection) {
  // /f1 is answered slowly: /f2.. wait behind it when /f3 is cancelled. Its answer is read and
  // dropped; /f4 gets its own bytes, on the same connection.
  TestServer server(
      [](const RecordedRequest& r) { return answer(r, r.target == "/f1" ? 300 : 5); });
  client(one_connection(4));
  std::vector<std::shared_ptr<Outcome>> outs;
  TransferId cancel_me{};
  for (int i = 0; i < 6; ++i) {
    TransferId id{};
    outs.push_back(fetch_with_id(server, i, &id));
    if (i == 3) cancel_me = id;
  }
  run_for(120);
  ASSERT_TRUE(server.wait_for_requests(4, 2000));
  client_->cancel(cancel_me);
  run();
  EXPECT_EQ(outs[3]->result.error.code, Errc::cancelled);
  for (int i : {0, 1, 2, 4, 5}) {
    ASSERT_TRUE(outs[i]->result.ok()) << outs[i]->result.error.message();
    EXPECT_EQ(outs[i]->body, body_of("/f" + std::to_string(i)));
  }
  EXPECT_EQ(server.accepted_connections(), 1);
}

TEST_F(PipelineTest, ACancelledRequestWhoseAnswerIsLargeIsNotReadAway) {
  // /f2 is cancelled while it waits behind the slow /f1; its answer announces 100 MB and then
  // trickles. Reading it away would hold /f3 for all of it: the connection goes instead, and
  // /f3 is sent again on a new one.
  TestServer server([](const RecordedRequest& r) {
    if (r.target == "/f2")
      return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nxyz").stall();
    return answer(r, r.target == "/f1" ? 300 : 5);
  });
  client(one_connection(4));
  std::vector<std::shared_ptr<Outcome>> outs;
  TransferId cancel_me{};
  for (int i = 0; i < 4; ++i) {
    TransferId id{};
    outs.push_back(fetch_with_id(server, i, &id));
    if (i == 2) cancel_me = id;
  }
  run_for(120);
  ASSERT_TRUE(server.wait_for_requests(3, 2000));
  client_->cancel(cancel_me);
  run(5000);
  EXPECT_EQ(outs[2]->result.error.code, Errc::cancelled);
  for (int i : {0, 1, 3}) {
    ASSERT_TRUE(outs[i]->result.ok()) << outs[i]->result.error.message();
    EXPECT_EQ(outs[i]->body, body_of("/f" + std::to_string(i)));
    EXPECT_EQ(outs[i]->result.attempts, 1);
  }
  EXPECT_EQ(server.accepted_connections(), 2);
}

TEST_F(PipelineTest, CancellingTheAnswerBeingReadSendsThoseBehindAgain) {
  TestServer server([](const RecordedRequest& r) {
    if (r.target == "/f1")
      return Script().send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc").stall();
    return answer(r, 5);
  });
  client(one_connection(4));
  std::vector<std::shared_ptr<Outcome>> outs;
  TransferId slow{};
  for (int i = 0; i < 5; ++i) {
    TransferId id{};
    outs.push_back(fetch_with_id(server, i, &id));
    if (i == 1) slow = id;
  }
  run_for(150);
  client_->cancel(slow);
  run();
  EXPECT_EQ(outs[1]->result.error.code, Errc::cancelled);
  for (int i : {0, 2, 3, 4}) {
    ASSERT_TRUE(outs[i]->result.ok()) << outs[i]->result.error.message();
    EXPECT_EQ(outs[i]->body, body_of("/f" + std::to_string(i)));
    EXPECT_EQ(outs[i]->result.attempts, 1);
  }
  EXPECT_EQ(server.accepted_connections(), 2);
}

TEST_F(PipelineTest, WaitingBehindASlowAnswerIsNotTooSlow) {
  // /f1 trickles in for about 2.4 s, above the lowest speed; the requests behind it move no
  // byte all that time and must not be failed as too slow.
  TestServer server([](const RecordedRequest& r) {
    if (r.target != "/f1") return answer(r, 0);
    std::string body = body_of(r.target);
    Script s;
    s.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    std::size_t piece = body.size() / 6 + 1;
    for (std::size_t at = 0; at < body.size(); at += piece)
      s.pause_ms(400).send(body.substr(at, piece));
    return s;
  });
  ClientOptions o = one_connection(4);
  o.low_speed_bytes_per_s = 500;
  o.low_speed_time_ms = 1000;
  client(o);
  auto outs = fetch_all(server, 5);
  run();
  expect_all_whole(outs);
  EXPECT_GT(pipelined(server), 0);
}

TEST_F(PipelineTest, ClosingTheClientWithAPipelineInFlightEndsEveryTransfer) {
  TestServer server([](const RecordedRequest& r) { return answer(r, 50); });
  client(one_connection(4));
  auto outs = fetch_all(server, 10);
  run_for(130);
  client_->close([] {});
  run();
  int cancelled = 0;
  for (auto& o : outs) {
    ASSERT_TRUE(o->done);
    if (!o->result.ok()) {
      EXPECT_EQ(o->result.error.code, Errc::cancelled);
      ++cancelled;
    }
  }
  EXPECT_GT(cancelled, 0);
}

TEST_F(PipelineTest, OverTls) {
  const TestCerts& certs = shared_test_certs();
  TestServer server([](const RecordedRequest& r) { return answer(r); },
                    TlsServerFiles{certs.good_cert, certs.good_key});
  ClientOptions o = one_connection(4);
  o.ca_file = certs.ca_cert;
  client(o);
  std::vector<std::shared_ptr<Outcome>> outs;
  for (int i = 0; i < 16; ++i)
    outs.push_back(fetch(server.localhost_url("/f" + std::to_string(i))));
  run();
  expect_all_whole(outs);
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_GE(pipelined(server), 8);
}

}  // namespace
}  // namespace uvget::test
