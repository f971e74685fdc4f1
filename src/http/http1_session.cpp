// Requests out, responses in, matched in order; the keep-alive decision after each response.
#include "http/http1_session.hpp"

namespace uvget {
namespace {

// Stands in for an abandoned exchange behind others: its response is read and dropped.
struct DiscardExchange final : Exchange {
  void on_exchange_head(Response&) override {}
  void on_exchange_body(std::span<const std::byte>) override {}
  void on_exchange_done(const Error&, bool) override {}
  void on_exchange_unanswered(bool) override {}
};
DiscardExchange discarded;

// A response with more than this still to come is not queued behind: the requests would wait
// for all of it. An abandoned one larger than this is not read away either.
constexpr std::uint64_t kBehindMax = 256 * 1024;

}  // namespace

Http1Session::Http1Session(Link& link, std::size_t max_header_bytes, std::size_t max_header_count)
    : link_(link), parser_(*this, max_header_bytes, max_header_count) {}

void Http1Session::submit(Exchange* exchange, std::string_view request, bool head_request) {
  out_ += request;
  if (exchange_) {
    behind_.push_back({exchange, head_request});
    ++requests_;
    return;
  }
  exchange_ = exchange;
  head_request_ = head_request;
  pipelined_ = false;
  reused_ = requests_ > 0;
  reusable_ = false;
  ++requests_;
  parser_.start(head_request);
}

bool Http1Session::can_pipeline(std::size_t depth) const noexcept {
  if (shut_ || !kept_alive_ || !exchange_ || in_flight() >= depth) return false;
  // Unknown length (chunked, or until close) counts as large once the head is in; a response
  // that ends the connection would leave the request unanswered.
  if (parser_.head_done() && (parser_.identity_body_left() > kBehindMax ||
                              parser_.identity_body_left() == 0 || parser_.ends_connection()))
    return false;
  return true;
}

std::string Http1Session::take_output() {
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

void Http1Session::receive(const char* data, std::size_t n, bool more_pending) {
  if (shut_) return;
  if (!exchange_) {
    // Bytes nobody asked for (on a parked connection, say): the server is out of step.
    if (n > 0) link_.must_close();
    return;
  }
  std::string carry;  // what follows a pipelined response, kept across its callbacks
  for (;;) {
    auto progress = parser_.feed(data, n);
    if (shut_ || !exchange_) return;  // closed or cancelled from a callback
    if (progress.status == ResponseParser::Status::need_more) return;
    if (progress.status == ResponseParser::Status::failed) return finish(parser_.error());
    std::size_t rest = n - progress.consumed;
    if (behind_.empty() || !parser_.keep_alive()) {
      // Bytes after the response were never asked for: the connection is out of step. (With
      // requests behind and `Connection: close`, shut() tells them they went unanswered.)
      reusable_ = parser_.keep_alive() && rest == 0 && !more_pending;
      return finish({});
    }
    std::string next(data + progress.consumed, rest);  // `data` may point into `carry`
    carry.swap(next);
    advance();
    if (shut_ || !exchange_ || carry.empty()) return;
    data = carry.data();
    n = carry.size();
  }
}

void Http1Session::on_eof(bool clean) {
  if (shut_) return;
  if (!exchange_) {
    link_.must_close();
    return;
  }
  if (parser_.finish_on_eof() != ResponseParser::Status::complete) return finish(parser_.error());
  if (!clean)
    return finish(Error(Errc::connection_closed,
                        "TLS stream truncated: the connection closed without close_notify after " +
                            std::to_string(parser_.body_bytes()) + " body bytes"));
  reusable_ = false;
  finish({});
}

void Http1Session::fail(const Error& error) {
  if (shut_) return;
  if (!exchange_) {
    link_.must_close();
    return;
  }
  finish(error);
}

std::string Http1Session::where() const {
  if (!parser_.started()) return "before any response";
  if (!parser_.head_done()) return "in the response head";
  return "after " + std::to_string(parser_.body_bytes()) + " body bytes";
}

void Http1Session::abandon(Exchange* exchange) {
  if (exchange != exchange_) {
    for (Behind& b : behind_)
      if (b.exchange == exchange) b.exchange = &discarded;
    return;
  }
  link_.must_close();
}

void Http1Session::shut() {
  if (shut_) return;
  shut_ = true;
  exchange_ = nullptr;
  reusable_ = false;
  out_.clear();
  std::deque<Behind> unanswered;
  unanswered.swap(behind_);
  for (auto it = unanswered.rbegin(); it != unanswered.rend(); ++it)
    it->exchange->on_exchange_unanswered(server_broke_);
}

// The response being read ended and the connection stays: the first request behind it becomes
// the one whose response is read, and the finished exchange is told (it may queue more).
void Http1Session::advance() {
  Exchange* done = exchange_;
  Behind next = behind_.front();
  behind_.pop_front();
  exchange_ = next.exchange;
  head_request_ = next.head_request;
  pipelined_ = true;
  reused_ = true;
  reusable_ = true;
  kept_alive_ = true;
  parser_.start(head_request_);
  link_.next_response();
  done->on_exchange_done({}, false);
}

void Http1Session::finish(const Error& error) {
  Exchange* ex = exchange_;
  exchange_ = nullptr;
  bool retry_safe = error && reused_ && !parser_.started() &&
                    (error.code == Errc::connection_closed || error.code == Errc::connection_reset);
  if (error) reusable_ = false;
  if (reusable_) kept_alive_ = true;
  link_.exchange_ending();
  if (error && pipelined_ && !parser_.started()) {
    // A pipelined request the server never answered (it closed, or ignored it until the idle
    // timeout): it and every request behind it go again, elsewhere.
    server_broke_ = true;
    link_.must_close();
    if (ex) ex->on_exchange_unanswered(true);
    return;
  }
  if (ex == &discarded) {
    link_.released();  // parks the connection, or closes it (and tells those behind)
    return;
  }
  if (ex) ex->on_exchange_done(error, retry_safe);  // may park or close: nothing after this
}

void Http1Session::on_response_head(Response& head) {
  if (exchange_ == &discarded) {
    // Nobody wants this answer: read it away only when it is small and known; else the
    // connection goes, and the requests behind it are sent again elsewhere.
    auto length = head.content_length();
    if (head_request_ || (length && *length <= kBehindMax)) return;
    link_.must_close();
    return;
  }
  if (exchange_) exchange_->on_exchange_head(head);
}

void Http1Session::on_response_body(std::span<const std::byte> bytes) {
  if (exchange_) exchange_->on_exchange_body(bytes);
}

}  // namespace uvget
