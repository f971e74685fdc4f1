// A download's state machine: exchange, redirects, the sink, the result.
#include "core/transfer.hpp"

#include "core/client_impl.hpp"
#include "http/request_writer.hpp"

namespace uvget {
namespace {

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

Transfer::Transfer(Client::Impl& client, std::uint64_t id, Request request, Url url,
                   Callbacks callbacks)
    : client_(client),
      id_(id),
      requested_url_(std::move(request.url)),
      url_(std::move(url)),
      method_(request.method),
      headers_(std::move(request.headers)),
      sink_(std::move(request.sink)),
      fail_on_http_error_(request.fail_on_http_error),
      cbs_(std::move(callbacks)),
      started_ns_(uv_hrtime()) {}

Error Transfer::with_url(Error e) const {
  if (e) e.detail = url_.str() + ": " + e.message();
  return e;
}

void Transfer::start(Connection* c) {
  phase_ = Phase::running;
  conn_ = c;
  needs_fresh_ = false;
  keep_body_ = false;
  redirect_to_.clear();
  deferred_error_ = {};
  status_ = 0;
  bytes_ = 0;
  ++attempts_;
  std::string req;
  req.reserve(256);
  write_request(req, method_, url_, client_.opts().user_agent, client_.opts().headers, headers_);
  client_.count_request(c->requests() > 0);
  reused_ = c->requests() > 0;
  c->begin(this, std::move(req), method_ == Method::head);
}

void Transfer::on_exchange_head(Response& head) {
  status_ = head.status;
  first_byte_ns_ = uv_hrtime();
  if (is_redirect(head.status)) {
    auto location = head.header("Location");
    if (!location || location->empty()) {
      deferred_error_ =
          Error(Errc::bad_redirect, "HTTP " + std::to_string(head.status) + " without a Location");
    } else if (redirects_ >= client_.opts().max_redirects) {
      deferred_error_ =
          Error(Errc::too_many_redirects,
                "more than " + std::to_string(client_.opts().max_redirects) + " redirects");
    } else {
      redirect_to_ = std::string(*location);
    }
    return;  // the body of a redirect is drained, not kept
  }
  if (fail_on_http_error_ && (head.status < 200 || head.status > 299)) {
    deferred_error_ = Error(Errc::http_status, "HTTP " + std::to_string(head.status) +
                                                   (head.reason.empty() ? "" : " " + head.reason));
    return;
  }
  keep_body_ = true;
  if (cbs_.on_head) cbs_.on_head(head);
  if (phase_ != Phase::running) return;  // cancelled from on_head
  if (sink_) {
    Sink::Events ev;
    ev.drained = [this] {
      if (conn_) conn_->resume_reading();
    };
    ev.failed = [this](Error e) { fail(std::move(e)); };
    sink_opened_ = true;
    if (Error e = sink_->open(client_.loop(), head, std::move(ev))) fail(std::move(e));
  }
}

void Transfer::on_exchange_body(std::span<const std::byte> bytes) {
  if (!keep_body_) return;
  bytes_ += bytes.size();
  client_.count_body(bytes.size());
  if (cbs_.on_data) {
    cbs_.on_data(bytes);
    if (phase_ != Phase::running) return;
  }
  if (sink_ && !sink_->write(bytes) && conn_) conn_->pause_reading();
}

void Transfer::on_exchange_done(const Error& error, bool retry_safe) {
  Connection* c = conn_;
  conn_ = nullptr;
  if (c) client_.release(c);
  if (phase_ != Phase::running) return;
  if (error && retry_safe && !stale_retry_used_ && !sink_opened_) {
    // The server dropped a kept-alive connection as the request went out: repeat once.
    stale_retry_used_ = true;
    needs_fresh_ = true;
    phase_ = Phase::queued;
    --attempts_;
    client_.requeue(this);
    return;
  }
  if (error) return fail(error);
  if (deferred_error_) return fail(deferred_error_);
  if (!redirect_to_.empty()) return follow_redirect();
  phase_ = Phase::finishing;
  if (!sink_) return complete({});
  sink_->finish([this](Error e) { complete(std::move(e)); });
}

void Transfer::follow_redirect() {
  auto next = url_.resolve(redirect_to_);
  if (!next)
    return fail(Error(Errc::bad_redirect, "cannot follow Location: " + next.error().message()));
  if (url_.is_https() && !next->is_https() && !client_.opts().allow_https_downgrade)
    return fail(
        Error(Errc::bad_redirect,
              "refusing to follow a redirect from https to plain http (" + next->str() + ")"));
  if (next->origin() != url_.origin()) {
    // Credentials are for the origin they were given for.
    std::erase_if(headers_, [](auto& h) {
      return iequals(h.first, "Authorization") || iequals(h.first, "Cookie") ||
             iequals(h.first, "Proxy-Authorization");
    });
  }
  url_ = std::move(*next);
  ++redirects_;
  attempts_ = 0;
  stale_retry_used_ = false;
  phase_ = Phase::queued;
  client_.requeue(this);
}

void Transfer::fail(Error error) {
  if (phase_ == Phase::done || phase_ == Phase::finishing) return;
  phase_ = Phase::finishing;
  if (conn_) {
    Connection* c = conn_;
    conn_ = nullptr;
    c->close();
  }
  Error e = std::move(error);
  if (!sink_) return complete(std::move(e));
  Sink* sink = sink_.get();
  sink->abort(e, [this, e]() mutable { complete(std::move(e)); });
}

void Transfer::complete(Error error) {
  phase_ = Phase::done;
  TransferResult r;
  r.url = requested_url_;
  r.final_url = url_.str();
  r.status = status_;
  r.bytes = bytes_;
  r.attempts = attempts_;
  r.redirects = redirects_;
  r.reused_connection = reused_;
  std::uint64_t now = uv_hrtime();
  r.seconds = static_cast<double>(now - started_ns_) / 1e9;
  r.ttfb_seconds = first_byte_ns_ ? static_cast<double>(first_byte_ns_ - started_ns_) / 1e9 : 0;
  r.error = with_url(std::move(error));
  client_.transfer_done(this, r, cbs_);  // deletes this
}

}  // namespace uvget
