// Embedding latency: a host program owns its loop and runs a 1 ms uv_timer; an embedded Client
// downloads a list of URLs on the same loop. Each tick records its lateness: the gap since the
// previous tick minus 1 ms, clamped at 0 (libuv re-arms a repeating timer from the time it fired,
// so this gap is what the host sees; libuv's timers count whole milliseconds, so even an idle
// loop's ticks come some tens of µs late: --baseline). The target: uvget never holds the loop for
// over 1 ms.
//
// Usage: embed_latency [-j N] [--cacert FILE] [--trace] (--discard | --dir DIR) URL_FILE
//        embed_latency --baseline SECS   (the timer alone: this machine's own loop jitter)
// Prints one line of key=value results on stdout (--trace: each tick over 1 ms late on stderr);
// exits 1 when a download failed or the loop does not close, 2 on bad usage.
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uvget/uvget.hpp>

namespace {

constexpr std::uint64_t kTickNs = 1'000'000;

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

long involuntary_switches() {  // of the loop's thread: the kernel preempted it
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}

// Per tick after the first: `late`, the wall-clock gap since the previous tick minus 1 ms; and
// `held`, the loop thread's CPU time over that gap minus 1 ms. Both are clamped at 0. A tick late
// without CPU time to match was waiting for the core (another thread or process ran there), not
// for the loop's own work.
struct Ticker {
  uv_timer_t timer{};
  std::uint64_t prev_ns = 0;  // 0: no tick yet
  std::uint64_t prev_cpu_ns = 0;
  std::vector<std::uint64_t> late, held;
  long switches = 0;  // involuntary context switches of the loop thread while recording
  bool recording = true;
  // --trace: every tick over 1 ms late, on stderr, with what the client was doing.
  std::function<void(std::uint64_t now_ns, std::uint64_t late_ns, std::uint64_t held_ns)> on_late;

  void start(uv_loop_t* loop) {
    late.reserve(1 << 16);
    held.reserve(1 << 16);
    switches = involuntary_switches();
    uv_timer_init(loop, &timer);
    timer.data = this;
    uv_timer_start(&timer, &on_tick, 1, 1);
  }
  static void on_tick(uv_timer_t* t) {
    auto* self = static_cast<Ticker*>(t->data);
    std::uint64_t now = uv_hrtime(), cpu = thread_cpu_ns();
    if (self->recording && self->prev_ns != 0) {
      std::uint64_t gap = now - self->prev_ns, cpu_gap = cpu - self->prev_cpu_ns;
      std::uint64_t late = gap > kTickNs ? gap - kTickNs : 0;
      std::uint64_t held = cpu_gap > kTickNs ? cpu_gap - kTickNs : 0;
      self->late.push_back(late);
      self->held.push_back(held);
      if (late > kTickNs && self->on_late) self->on_late(now, late, held);
    }
    self->prev_ns = now;
    self->prev_cpu_ns = cpu;
  }
  void stop() {
    recording = false;
    switches = involuntary_switches() - switches;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  }
};

// Feeds URLs as the command line does: at most 4 x N transfers queued in the client, more
// submitted from on_done.
struct Downloader {
  uvget::Client* client = nullptr;
  std::deque<std::string> urls;
  std::string dir;  // empty: discard bodies
  std::size_t window = 0;
  std::size_t in_flight = 0;
  std::uint64_t submitted = 0, ok = 0, failed = 0, bytes = 0;
  std::uint64_t end_ns = 0;
  std::string first_error;
  std::function<void()> on_all_done;

  void feed() {
    while (in_flight < window && !urls.empty()) {
      uvget::Request req;
      req.url = std::move(urls.front());
      urls.pop_front();
      ++submitted;
      // Files are named by their position in the list, so every name is unique.
      req.sink = dir.empty() ? uvget::make_discard_sink()
                             : uvget::make_file_sink(dir + "/" + std::to_string(submitted));
      uvget::Callbacks cbs;
      cbs.on_done = [this](const uvget::TransferResult& r) {
        --in_flight;
        count(r.ok(), r.error);
        bytes += r.bytes;
        feed();
      };
      if (auto id = client->get(std::move(req), std::move(cbs)); !id)
        count(false, id.error());
      else
        ++in_flight;
    }
    if (in_flight == 0 && urls.empty() && on_all_done) {
      end_ns = uv_hrtime();
      auto done = std::move(on_all_done);
      on_all_done = nullptr;
      done();
    }
  }
  void count(bool good, const uvget::Error& e) {
    if (good) {
      ++ok;
    } else {
      ++failed;
      if (first_error.empty()) first_error = e.message();
    }
  }
};

std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

void print_latency(Ticker& ticker) {
  auto& late = ticker.late;
  auto& held = ticker.held;
  std::sort(late.begin(), late.end());
  std::sort(held.begin(), held.end());
  auto us = [](std::uint64_t ns) { return static_cast<unsigned long long>(ns / 1000); };
  auto max = [](const std::vector<std::uint64_t>& v) { return v.empty() ? 0 : v.back(); };
  auto over =
      std::count_if(late.begin(), late.end(), [](std::uint64_t ns) { return ns > kTickNs; });
  std::printf(
      "ticks=%zu p50_us=%llu p99_us=%llu max_us=%llu over_1ms=%lld held_p99_us=%llu "
      "held_max_us=%llu preempted=%ld\n",
      late.size(), us(percentile(late, 0.50)), us(percentile(late, 0.99)), us(max(late)),
      static_cast<long long>(over), us(percentile(held, 0.99)), us(max(held)), ticker.switches);
}

int usage() {
  std::fprintf(
      stderr,
      "usage: embed_latency [-j N] [--cacert FILE] [--trace] (--discard | --dir DIR) URL_FILE\n"
      "       embed_latency --baseline SECS\n");
  return 2;
}

int close_loop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  if (rc != 0) std::fprintf(stderr, "embed_latency: uv_loop_close: %s\n", uv_strerror(rc));
  return rc;
}

int run_baseline(double secs) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Ticker ticker;
  ticker.start(&loop);
  struct Stop {
    uv_timer_t timer{};
    Ticker* ticker = nullptr;
  } stop;
  stop.ticker = &ticker;
  uv_timer_init(&loop, &stop.timer);
  stop.timer.data = &stop;
  uv_timer_start(
      &stop.timer,
      [](uv_timer_t* t) {
        static_cast<Stop*>(t->data)->ticker->stop();
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      static_cast<std::uint64_t>(secs * 1000), 0);
  std::uint64_t t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  double elapsed = static_cast<double>(uv_hrtime() - t0) / 1e9;
  if (close_loop(&loop) != 0) return 1;
  std::printf("mode=baseline secs=%.3f ", elapsed);
  print_latency(ticker);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int conns = 64;
  std::string ca_file, dir, list;
  bool discard = false, trace = false;
  double baseline = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "-j" && has_value)
      conns = std::atoi(argv[++i]);
    else if (a == "--cacert" && has_value)
      ca_file = argv[++i];
    else if (a == "--dir" && has_value)
      dir = argv[++i];
    else if (a == "--discard")
      discard = true;
    else if (a == "--trace")
      trace = true;
    else if (a == "--baseline" && has_value)
      baseline = std::atof(argv[++i]);
    else if (a.starts_with("-") || !list.empty())
      return usage();
    else
      list = a;
  }
  if (baseline > 0) return run_baseline(baseline);
  if (conns < 1 || list.empty() || discard == !dir.empty()) return usage();
  // A peer closing a kept-alive connection must be an error on the write, not the end of the host.
  std::signal(SIGPIPE, SIG_IGN);

  Downloader dl;
  dl.dir = dir;
  dl.window = static_cast<std::size_t>(conns) * 4;
  {
    std::ifstream in(list);
    if (!in) {
      std::fprintf(stderr, "embed_latency: cannot read %s\n", list.c_str());
      return 2;
    }
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) dl.urls.push_back(line);
  }
  std::size_t files = dl.urls.size();

  uv_loop_t loop;
  uv_loop_init(&loop);
  uvget::ClientOptions opts;
  opts.max_connections = conns;
  opts.max_per_host = conns;
  opts.ca_file = ca_file;
  auto client = uvget::Client::create(&loop, opts);
  if (!client) {
    std::fprintf(stderr, "embed_latency: %s\n", client.error().message().c_str());
    return 2;
  }
  dl.client = client->get();

  Ticker ticker;
  ticker.start(&loop);
  std::uint64_t t0 = 0;
  if (trace)
    ticker.on_late = [&](std::uint64_t now, std::uint64_t late, std::uint64_t held) {
      uvget::ClientStats st = (*client)->stats();
      std::fprintf(
          stderr,
          "late %6llu us (held %6llu us) at %7.3f ms: done=%llu active=%zu queued=%zu open=%zu "
          "connections_opened=%llu\n",
          static_cast<unsigned long long>(late / 1000),
          static_cast<unsigned long long>(held / 1000), static_cast<double>(now - t0) / 1e6,
          static_cast<unsigned long long>(st.transfers_done), st.active, st.queued,
          st.open_connections, static_cast<unsigned long long>(st.connections_opened));
    };
  bool closed = false;
  dl.on_all_done = [&] {
    ticker.stop();
    (*client)->close([&] { closed = true; });
  };
  t0 = uv_hrtime();
  dl.feed();
  uv_run(&loop, UV_RUN_DEFAULT);
  client->reset();
  int rc = close_loop(&loop);

  double secs = static_cast<double>(dl.end_ns - t0) / 1e9;
  std::printf("mode=%s files=%zu ok=%llu failed=%llu bytes=%llu secs=%.3f files_per_s=%.0f ",
              discard ? "discard" : "dir", files, static_cast<unsigned long long>(dl.ok),
              static_cast<unsigned long long>(dl.failed), static_cast<unsigned long long>(dl.bytes),
              secs, secs > 0 ? static_cast<double>(dl.ok) / secs : 0.0);
  print_latency(ticker);
  if (!dl.first_error.empty())
    std::fprintf(stderr, "embed_latency: %llu failed, first: %s\n",
                 static_cast<unsigned long long>(dl.failed), dl.first_error.c_str());
  if (!closed) std::fprintf(stderr, "embed_latency: the client's close callback never ran\n");
  return (dl.failed == 0 && dl.ok == files && closed && rc == 0) ? 0 : 1;
}
