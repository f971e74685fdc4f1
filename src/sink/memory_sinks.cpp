// The sinks that keep a body in memory or count and drop it.
#include <uvget/request.hpp>

namespace uvget {
namespace {

class MemorySink final : public Sink {
 public:
  MemorySink(std::string* out, std::size_t max) : out_(out), max_(max) {}
  Error open(uv_loop_s*, const Response& head, Events events) override {
    events_ = std::move(events);
    out_->clear();
    if (auto n = head.content_length(); n && *n > max_)
      return Error(Errc::body_too_large, "body of " + std::to_string(*n) +
                                             " bytes is over the limit of " + std::to_string(max_));
    if (auto n = head.content_length()) out_->reserve(static_cast<std::size_t>(*n));
    return {};
  }
  bool write(std::span<const std::byte> data) override {
    if (failed_) return true;
    if (out_->size() + data.size() > max_) {
      failed_ = true;
      events_.failed(Error(Errc::body_too_large,
                           "body is over the limit of " + std::to_string(max_) + " bytes"));
      return true;
    }
    out_->append(reinterpret_cast<const char*>(data.data()), data.size());
    return true;
  }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }
  bool restart(std::function<void()> done) override {
    out_->clear();
    failed_ = false;
    done();
    return true;
  }

 private:
  std::string* out_;
  std::size_t max_;
  Events events_;
  bool failed_ = false;
};

class DiscardSink final : public Sink {
 public:
  Error open(uv_loop_s*, const Response&, Events) override { return {}; }
  bool write(std::span<const std::byte>) override { return true; }
  void finish(std::function<void(Error)> done) override { done({}); }
  void abort(const Error&, std::function<void()> done) override { done(); }
  bool restart(std::function<void()> done) override {
    done();
    return true;
  }
};

}  // namespace

std::unique_ptr<Sink> make_memory_sink(std::string* out, std::size_t max_bytes) {
  return std::make_unique<MemorySink>(out, max_bytes);
}
std::unique_ptr<Sink> make_discard_sink() {
  return std::make_unique<DiscardSink>();
}

}  // namespace uvget
