// The uvget command: parse options, stream the URL list into a Client on one loop, name the
// outputs, report each failure and a summary, and map the outcome to an exit status.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <uvget/uvget.hpp>

#include "cli/args.hpp"
#include "cli/done_list.hpp"
#include "cli/file_checks.hpp"
#include "cli/input.hpp"
#include "cli/list_line.hpp"
#include "cli/naming.hpp"
#include "cli/report.hpp"
#include "text.hpp"

namespace {

using namespace uvget;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

struct Settings {
  std::vector<std::string> urls;
  std::string input_file;
  std::string dir = ".";
  bool create_dirs = false;
  bool remote_time = false;  // -R
  std::string output;
  int connections = 64;
  int per_host = 16;
  int initial_per_host = 4;
  int pipeline = 1;
  bool discard = false;
  bool overwrite = false;
  bool resume = false;  // -c
  int split = 1;
  std::string min_split_size = "20M";
  std::string max_filesize = "0";
  std::uint64_t max_filesize_bytes = 0;  // parsed
  std::uint64_t min_split_bytes = 0;     // parsed
  double connect_timeout = 30;
  double idle_timeout = 60;
  int max_redirects = 10;
  std::vector<std::string> headers;
  std::string user_agent = std::string("uvget/") + kVersion;
  bool quiet = false;
  bool verbose = false;
  std::string cacert;
  bool insecure = false;
  bool compressed = false;
  bool allow_downgrade = false;
  double timeout = 0;
  std::string json;
  std::string shard;
  std::string progress = "auto";
  std::string loops = "1";
  std::string resolver = "dns";
  int retries = 3;
  double retry_wait = 1;
  std::string checksum;
  std::string min_speed = "100";
  std::string limit_rate = "0";
  double min_speed_time = 60;
  double max_rate_per_host = 0;
  double wait = 0;
  bool random_wait = false;
  bool robots = false;
  bool robots_skip_ok = false;
  std::string skip_done;
  std::string name_from = "path";
  bool force_dirs = false;
  bool no_host_dirs = false;
  int cut_dirs = 0;
  bool content_disposition = false;
  std::string if_changed;
  bool timestamping = false;
};

// "512", "100K", "2M", "1G" (powers of 1024) in bytes; nullopt when malformed.
std::optional<std::uint64_t> parse_bytes(const std::string& text) {
  if (text.empty() || text.size() > 15) return {};
  std::size_t digits = text.find_first_not_of("0123456789");
  if (digits == std::string::npos) return std::stoull(text);
  if (digits == 0 || digits + 1 != text.size()) return {};
  std::uint64_t n = std::stoull(text.substr(0, digits));
  switch (text[digits]) {
    case 'k':
    case 'K':
      return n << 10;
    case 'm':
    case 'M':
      return n << 20;
    case 'g':
    case 'G':
      return n << 30;
    default:
      return {};
  }
}

// "auto": one loop per core this process may use; otherwise a count >= 1. 0 when invalid.
int parse_loops(const std::string& text) {
  if (text == "auto") return available_cores();
  if (text.empty() || text.size() > 4 || text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return std::stoi(text);
}

// Every connection is a socket, and a download whose body streams holds its file open too:
// raise the soft limit of open files to the hard one, and keep -j within what that allows
// (with a warning) instead of failing connections with EMFILE halfway through a list.
int fit_open_files(int connections, bool discard, bool quiet) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return connections;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) lim = want;
  }
  constexpr rlim_t kSpare = 64;  // the loop, the list, stdio, the resolver, TLS files...
  rlim_t per = discard ? 1 : 2;
  if (lim.rlim_cur == RLIM_INFINITY ||
      per * static_cast<rlim_t>(connections) + kSpare <= lim.rlim_cur)
    return connections;
  int fit =
      static_cast<int>(std::max<rlim_t>(1, (lim.rlim_cur - std::min(lim.rlim_cur, kSpare)) / per));
  if (!quiet)
    std::fprintf(stderr,
                 "uvget: warning: -j %d needs up to %llu open files and the limit is %llu: "
                 "using -j %d\n",
                 connections, static_cast<unsigned long long>(per * connections + kSpare),
                 static_cast<unsigned long long>(lim.rlim_cur), fit);
  return fit;
}

class App {
 public:
  App(uv_loop_t* loop, Settings s) : loop_(loop), s_(std::move(s)) {}
  ~App() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
  }
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  int run() {
    name_from_ = s_.name_from == "hash"         ? cli::NameFrom::hash
                 : s_.name_from == "path+query" ? cli::NameFrom::path_query
                                                : cli::NameFrom::path;
    ClientOptions o;
    s_.connections = fit_open_files(s_.connections, s_.discard, s_.quiet);
    s_.per_host = std::min(s_.per_host, s_.connections);
    o.max_connections = s_.connections;
    o.max_per_host = s_.per_host;
    o.initial_per_host = s_.initial_per_host;
    o.pipeline = s_.pipeline;
    o.connect_timeout_ms = static_cast<std::uint64_t>(s_.connect_timeout * 1000);
    o.idle_timeout_ms = static_cast<std::uint64_t>(s_.idle_timeout * 1000);
    o.max_redirects = s_.max_redirects;
    o.user_agent = s_.user_agent;
    o.ca_file = s_.cacert;
    o.timeout_ms = static_cast<std::uint64_t>(s_.timeout * 1000);
    o.tls_verify = !s_.insecure;
    o.allow_https_downgrade = s_.allow_downgrade;
    // This loop runs nothing that needs sub-millisecond turns: read as much as arrives per pass.
    o.loop_slice_us = 0;
    o.retries = s_.retries;
    o.resolver = s_.resolver == "system" ? ResolverKind::system : ResolverKind::dns;
    // Byte counts with K, M, G suffixes.
    struct {
      const char* option;
      const std::string& text;
      const char* expected;
      std::uint64_t& out;
    } sizes[] = {
        {"--min-speed", s_.min_speed, "bytes/s, e.g. 100, 10K, 1M", o.low_speed_bytes_per_s},
        {"--limit-rate", s_.limit_rate, "bytes/s, e.g. 500K, 2M", o.limit_rate_bytes_per_s},
        {"--min-split-size", s_.min_split_size, "bytes, e.g. 20M", s_.min_split_bytes},
        {"--max-filesize", s_.max_filesize, "bytes, e.g. 500K, 2G", s_.max_filesize_bytes},
    };
    for (auto& size : sizes) {
      auto n = parse_bytes(size.text);
      if (!n) {
        std::fprintf(stderr, "uvget: bad %s '%s' (expected %s)\n", size.option, size.text.c_str(),
                     size.expected);
        return kExitUsage;
      }
      size.out = *n;
    }
    o.low_speed_time_ms = static_cast<std::uint64_t>(s_.min_speed_time * 1000);
    o.retry_wait_ms = static_cast<std::uint64_t>(s_.retry_wait * 1000);
    o.max_rate_per_host = s_.max_rate_per_host;
    o.wait_ms = static_cast<std::uint64_t>(s_.wait * 1000);
    o.random_wait = s_.random_wait;
    o.robots = s_.robots || s_.robots_skip_ok;
    if (s_.insecure && !s_.quiet)
      std::fprintf(stderr, "uvget: warning: --insecure: TLS certificates are not verified\n");
    for (auto& h : s_.headers) {
      auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0) {
        std::fprintf(stderr, "uvget: bad header '%s' (expected 'Name: value')\n", h.c_str());
        return kExitUsage;
      }
      std::string value = h.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      o.headers.emplace_back(h.substr(0, colon), value);
    }
    if (!s_.shard.empty()) {
      auto sh = cli::parse_shard(s_.shard);
      if (!sh) {
        std::fprintf(stderr, "uvget: bad --shard '%s' (expected K/N with 0 <= K < N)\n",
                     s_.shard.c_str());
        return kExitUsage;
      }
      shard_ = *sh;
    }
    // Before --json opens its file: it may be the same one (a re-run that converges).
    if (!s_.skip_done.empty() && !load_records(s_.skip_done, "--skip-done", done_list_))
      return kExitUsage;
    if (!s_.if_changed.empty() && !load_records(s_.if_changed, "--if-changed", changed_list_))
      return kExitUsage;
    if (done_list_ || changed_list_) checks_.emplace(loop_, [this] { feed(); });
    if (s_.timestamping) s_.remote_time = true;  // the file's time is what the next -N asks by
    if (!s_.json.empty()) {
      json_ = s_.json == "-" ? stdout : std::fopen(s_.json.c_str(), "w");
      if (!json_) {
        std::fprintf(stderr, "uvget: cannot write '%s': %s\n", s_.json.c_str(),
                     std::strerror(errno));
        return kExitUsage;
      }
    }
    int loops = parse_loops(s_.loops);
    if (loops < 1) {
      std::fprintf(stderr, "uvget: bad --loops '%s' (expected a number >= 1 or 'auto')\n",
                   s_.loops.c_str());
      return kExitUsage;
    }
    if (loops > 1) {
      auto runner = Runner::create(loop_, RunnerOptions{loops, o});
      if (!runner) {
        std::fprintf(stderr, "uvget: %s\n", runner.error().message().c_str());
        return kExitUsage;
      }
      loops_ = (*runner)->loops();
      client_ = std::move(*runner);
    } else {
      auto client = Client::create(loop_, o);
      if (!client) {
        std::fprintf(stderr, "uvget: %s\n", client.error().message().c_str());
        return kExitUsage;
      }
      client_ = std::move(*client);
    }
    // Enough submitted to keep every connection busy, pipelines full.
    window_ = static_cast<std::size_t>(s_.connections) * std::max(4, s_.pipeline + 2);
    bool tty = isatty(2) != 0;
    if (s_.quiet || s_.progress == "none")
      mode_ = Progress::none;
    else if (s_.progress == "lines" || (s_.verbose && s_.progress == "auto"))
      mode_ = Progress::lines;
    else if (s_.progress == "bar" || tty)
      mode_ = Progress::bar;
    else
      mode_ = Progress::status;

    // -o FILE with -d DIR: a relative FILE lands in DIR, as every other file does.
    if (!s_.output.empty() && s_.output != "-" && s_.dir != "." && s_.output.front() != '/')
      s_.output = (std::filesystem::path(s_.dir) / s_.output).string();
    std::string make_dir = s_.discard || s_.output == "-" ? ""
                           : s_.output.empty()            ? s_.dir
                           : s_.create_dirs || s_.dir != "."
                               ? std::filesystem::path(s_.output).parent_path().string()
                               : "";
    if (!make_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(make_dir, ec);
      if (ec) {
        std::fprintf(stderr, "uvget: cannot create directory '%s': %s\n", make_dir.c_str(),
                     ec.message().c_str());
        return abandon(kExitFailed);
      }
    }
    for (auto& u : s_.urls)
      if (cli::in_shard(u, shard_)) {
        Item it;
        it.url = u;
        it.checksum = s_.checksum;
        enqueue(std::move(it));
      }
    if (!s_.input_file.empty()) {
      uv_file fd = 0;
      bool owns = false;
      if (s_.input_file != "-") {
        fd = ::open(s_.input_file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          std::fprintf(stderr, "uvget: cannot open input file '%s': %s\n", s_.input_file.c_str(),
                       std::strerror(errno));
          return abandon(kExitFailed);
        }
        owns = true;
      }
      struct stat st {};
      input_is_file_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
      reader_ = std::make_unique<cli::LineReader>(
          loop_, fd, owns, [this](std::string_view line, std::uint64_t n) { on_line(line, n); },
          [this](int status) {
            if (status < 0)
              std::fprintf(stderr, "uvget: reading '%s': %s\n", s_.input_file.c_str(),
                           uv_strerror(status));
            if (status < 0) input_error_ = true;
            // The last entry has all its options at the end of the list; from a pipe (a list
            // that streams), at the end of what came so far, so that it starts now.
            if (status != 0 || !input_is_file_) close_item();
            if (draining_) return drain_input();
            feed();
          });
    }

    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    uv_signal_start(&sigint_, &on_signal, SIGINT);
    uv_signal_start(&sigterm_, &on_signal, SIGTERM);

    start_ns_ = uv_hrtime();
    if (mode_ == Progress::bar || mode_ == Progress::status) {
      uv_timer_init(loop_, &progress_timer_);
      progress_timer_.data = this;
      std::uint64_t every = mode_ == Progress::bar ? 100 : 5000;
      uv_timer_start(&progress_timer_, &on_progress, every, every);
      uv_unref(reinterpret_cast<uv_handle_t*>(&progress_timer_));
      progress_on_ = true;
    }
    if (mode_ == Progress::bar) {
      // The width is read once and again on each SIGWINCH, which redraws at once in the new
      // width (a line wider than the window would wrap and leave a line behind per redraw).
      columns_ = terminal_columns();
      uv_signal_init(loop_, &sigwinch_);
      sigwinch_.data = this;
      uv_signal_start(&sigwinch_, &on_resize, SIGWINCH);
      uv_unref(reinterpret_cast<uv_handle_t*>(&sigwinch_));
      resize_on_ = true;
    }
    feed();
    uv_run(loop_, UV_RUN_DEFAULT);
    finish();
    uv_run(loop_, UV_RUN_DEFAULT);
    return exit_code();
  }

 private:
  // Gives up before any download started: the client's handles close and the loop ends empty.
  int abandon(int code) {
    client_.reset();
    uv_run(loop_, UV_RUN_DEFAULT);
    if (json_ && json_ != stdout) std::fclose(json_);
    json_ = nullptr;
    return code;
  }

  struct Item {
    std::string url;
    std::uint64_t line = 0;  // 0: from the command line
    std::string checksum;    // "sha-256=HEX" or empty
    // From the list (aria2c's form): other URLs of the same file, tried in turn when one
    // fails; the indented options; why the entry cannot be downloaded ("" when it can).
    std::vector<std::string> mirrors;
    std::string out, dir;
    std::vector<std::string> headers;  // "Name: value"
    std::string bad;
    std::size_t mirror = 0;    // mirrors tried so far
    bool conditional = false;  // --if-changed or -N asked: a 304 keeps the file at `path`
    std::string path;          // the output file, once chosen (mirrors write the same one)
    // An earlier run's record of it (--skip-done, --if-changed; 0 when none), and whether its
    // file is still there with its size (asked off the loop; known before it leaves pending_).
    std::uint32_t done_record = 0, changed_record = 0;
    cli::FileChecks::Ticket done_check, changed_check;
  };

  // Into pending_, with the questions about its recorded files asked.
  void enqueue(Item&& item) {
    Item& it = pending_.emplace_back(std::move(item));
    if (done_list_ && (it.done_record = done_list_->find_index(it.url))) {
      cli::DoneRecord d = done_list_->at(it.done_record);
      it.done_check = checks_->ask(d.path, d.size());
    }
    if (changed_list_ && !s_.discard && s_.output.empty() &&
        (it.changed_record = changed_list_->find_index(it.url))) {
      cli::DoneRecord d = changed_list_->at(it.changed_record);
      if (d.etag.empty() && d.last_modified.empty())
        it.changed_record = 0;  // nothing to ask the server with
      else
        it.changed_check = checks_->ask(d.path, d.size());
    }
  }

  // Whether the answers about the item's recorded files are in (asking for them if not).
  bool checked(const Item& it) {
    bool ready = true;
    for (const auto* t : {&it.done_check, &it.changed_check})
      if (*t && !checks_->answer(*t)) ready = false;
    return ready;
  }

  // A list entry is complete at the next URL line or the end of the list: indented option
  // lines below a URL belong to it.
  void on_line(std::string_view text, std::uint64_t n) {
    auto parsed = cli::parse_list_line(text);
    if (!parsed) return;
    if (parsed->kind == cli::ListLine::Kind::option) {
      if (!open_item_) {
        say("line " + std::to_string(n) + ": option '" + std::string(parsed->key) +
            "' with no URL above it (ignored)");
        input_error_ = true;
        return;
      }
      return apply_option(*open_item_, parsed->key, parsed->value, n);
    }
    close_item();
    open_item_ = Item();
    Item& it = *open_item_;
    it.url = parsed->url;
    it.line = n;
    it.checksum = parsed->checksum;
    for (std::string_view m : parsed->mirrors) it.mirrors.emplace_back(m);
  }

  void close_item() {
    if (!open_item_) return;
    if (!cli::in_shard(open_item_->url, shard_)) {
      open_item_.reset();
    } else if (draining_) {
      not_started(open_item_->url, open_item_->line);
      open_item_.reset();
    } else {
      enqueue(std::move(*open_item_));
      open_item_.reset();
    }
  }

  // out=NAME (a name under -d, sanitised), dir=DIR (a directory under -d, each part sanitised),
  // checksum=ALGO=HEX, header=NAME: VALUE. A bad one makes the entry fail, naming the line.
  void apply_option(Item& it, std::string_view key, std::string_view value, std::uint64_t n) {
    std::string where = "line " + std::to_string(n) + ": ";
    if (key == "out") {
      if (value.empty()) it.bad = where + "out= needs a name";
      it.out = cli::sanitise_name(value);
    } else if (key == "dir") {
      std::string dir = cli::layout_dirs("", std::string(value) + "/", true, 0);
      if (dir.empty()) it.bad = where + "dir= names no directory";
      it.dir = dir;
    } else if (key == "checksum") {
      it.checksum = std::string(value);
    } else if (key == "header") {
      std::size_t colon = value.find(':');
      if (colon == std::string_view::npos || colon == 0)
        it.bad = where + "bad header '" + std::string(value) + "' (expected 'Name: value')";
      it.headers.emplace_back(value);
    } else {
      it.bad = where + "unknown option '" + std::string(key) +
               "' (expected out=, dir=, checksum= or header=)";
    }
  }

  // Interrupted: a URL that was accepted (read) but never started still gets its record, so
  // that a retry built from the records misses none.
  void not_started(std::string_view url, std::uint64_t line) {
    ++not_started_;
    if (!json_) return;
    std::string rec = cli::json_not_started(url, line);
    rec.push_back('\n');
    std::fwrite(rec.data(), 1, rec.size(), json_);
  }

  // After an interrupt, the rest of a list file is read only to record its URLs as not started
  // (stdin is not: it may never end). The records close once that and the client are done.
  void drain_input() {
    if (reader_ && !reader_->done() && !reader_->busy()) reader_->want_more();
    close_records_if_done();
  }

  void close_records_if_done() {
    if (!json_ || !client_closed_ ||
        (reader_ && draining_ && (!reader_->done() || reader_->busy())))
      return;
    std::fflush(json_);
    if (json_ != stdout) std::fclose(json_);
    json_ = nullptr;
  }

  // Moves URLs into the client while fewer than window_ are in flight, and asks the reader for
  // more when the backlog is short: memory stays bounded by the window (and a few thousand URLs
  // read ahead while their records are checked), not the list.
  void feed() {
    while (!interrupted_ && in_flight_ < window_ && !pending_.empty()) {
      if (!checked(pending_.front())) break;  // feed() runs again when the answers are in
      ++total_;
      if (skip_if_done(pending_.front())) {
        pending_.pop_front();
        continue;
      }
      Item it = std::move(pending_.front());
      pending_.pop_front();
      submit(it);
    }
    // With records to check, the list is read further ahead: the checks of the next URLs run
    // in the threadpool while these are handled.
    std::size_t ahead = window_ + (checks_ ? 4096 : 0);
    if (reader_ && !interrupted_ && pending_.size() < ahead) reader_->want_more();
    if (done_submitting() && in_flight_ == 0) finish();
  }

  bool done_submitting() const {
    return pending_.empty() && !open_item_ && (!reader_ || reader_->done()) &&
           !(reader_ && reader_->busy());
  }

  // --skip-done: the records of an earlier run. A missing file is an empty one (the first
  // run of a command that is run again with the same file).
  bool load_records(const std::string& file, const char* option,
                    std::optional<cli::DoneList>& list) {
    std::FILE* f = std::fopen(file.c_str(), "r");
    if (!f) {
      if (errno == ENOENT) return true;
      std::fprintf(stderr, "uvget: cannot read %s '%s': %s\n", option, file.c_str(),
                   std::strerror(errno));
      return false;
    }
    list.emplace();
    struct stat st;
    if (::fstat(fileno(f), &st) == 0 && st.st_size > 0)  // records are about 200 bytes each
      list->reserve(std::min<std::size_t>(static_cast<std::size_t>(st.st_size / 200), 1u << 22));
    std::string line;
    char buf[64 * 1024];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) {
      std::string_view chunk(buf, n);
      for (std::size_t nl; (nl = chunk.find('\n')) != std::string_view::npos;) {
        if (line.empty()) {
          list->add_line(chunk.substr(0, nl));  // whole in this read: no copy
        } else {
          line.append(chunk.substr(0, nl));
          list->add_line(line);
          line.clear();
        }
        chunk.remove_prefix(nl + 1);
      }
      line.append(chunk);
    }
    if (!line.empty()) list->add_line(line);
    std::fclose(f);
    return true;
  }

  // The URL is done by an earlier run's record and its file is still there with that size: it
  // counts as done, with a record, and no request.
  bool skip_if_done(const Item& it) {
    if (!it.done_record || !checks_->answer(it.done_check).value_or(false)) return false;
    std::optional<cli::DoneRecord> d = done_list_->at(it.done_record);
    ++done_;
    ++ok_;
    ++skipped_done_;
    if (mode_ == Progress::lines) say(it.url + " -> " + std::string(d->path) + " (already done)");
    if (json_) {
      TransferResult& r = skipped_result_;  // reused: its strings keep their room
      r.url = it.url;
      r.status = d->status;
      r.bytes = d->bytes;
      r.resumed_from = d->resumed_from;
      r.etag = d->etag;
      r.last_modified = d->last_modified;
      write_json(r, d->path, /*skipped=*/true);
    }
    return true;
  }

  void submit(const Item& item) {
    if (!item.bad.empty()) return fail_item(item, Error(Errc::bad_request, item.bad));
    auto entry = std::make_shared<Item>(item);
    ask_if_changed(*entry);
    start(entry);
  }

  // --if-changed: a URL recorded as done whose file is still there with its size is asked for
  // only if it changed (If-None-Match with its ETag, If-Modified-Since with its Last-Modified),
  // into the same file, which a 200 replaces once complete and a 304 leaves as it is.
  void ask_if_changed(Item& it) {
    if (!it.changed_record || !checks_->answer(it.changed_check).value_or(false)) return;
    std::optional<cli::DoneRecord> d = changed_list_->at(it.changed_record);
    it.conditional = true;
    it.path = d->path;
    if (!d->etag.empty()) it.headers.push_back("If-None-Match: " + std::string(d->etag));
    if (!d->last_modified.empty())
      it.headers.push_back("If-Modified-Since: " + std::string(d->last_modified));
  }

  static bool same_origin(const std::string& a, const std::string& b) {
    auto x = parse_url(a), y = parse_url(b);
    return x && y && x->scheme == y->scheme && x->host == y->host && x->port == y->port;
  }
  static bool is_credential(std::string_view name) {
    return iequals(name, "Authorization") || iequals(name, "Cookie") ||
           iequals(name, "Proxy-Authorization");
  }

  // -N: a file already there under the URL's name is asked for only if the server's copy is
  // newer than it (If-Modified-Since its modification time), and replaced if so.
  void ask_if_newer(Item& it, const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    char date[64];
    std::tm tm{};
    gmtime_r(&st.st_mtime, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    it.conditional = true;
    it.headers.push_back(std::string("If-Modified-Since: ") + date);
  }

  // Runs the entry's current URL (its own, or the mirror it is on) into its file.
  void start(std::shared_ptr<Item> entry) {
    const Item& it = *entry;
    const std::string& at = it.mirror == 0 ? it.url : it.mirrors[it.mirror - 1];
    Request req;
    req.url = at;
    req.checksum = it.checksum;
    req.decompress = s_.compressed;
    req.split = s_.split;
    req.min_split_size = s_.min_split_bytes;
    // A split download spreads its segments over the mirrors not yet given up on.
    if (s_.split > 1 && it.mirror < it.mirrors.size())
      req.mirrors.assign(it.mirrors.begin() + static_cast<std::ptrdiff_t>(it.mirror),
                         it.mirrors.end());
    req.max_body_bytes = s_.max_filesize_bytes;
    std::string path = it.path;
    if (!s_.discard) {
      auto url = parse_url(it.url);
      if (url) {
        if (!path.empty()) {
          // a mirror: the file the entry's own URL named
        } else if (!s_.output.empty() && s_.output != "-") {
          path = s_.output;
        } else if (s_.output.empty()) {
          Error error;
          std::string name = name_under_dir(it, *url, error);
          if (error) return fail_item(it, std::move(error));
          path = unique_path(name);
        }
        entry->path = path;
        if (s_.timestamping && !it.conditional && !path.empty()) ask_if_newer(*entry, path);
        if (!path.empty()) {
          FileSinkOptions fo;
          fo.keep_partial_on_cancel = true;  // Ctrl-C leaves NAME.part for a later resume
          fo.source = at;                    // and a later run knows it as its own
          fo.resume = s_.resume;
          // A name derived from the URL never replaces a file: the sink takes NAME.1, ... when
          // NAME is there when it creates or renames the file (race-free, off the loop).
          fo.unique_name = s_.output.empty() && !s_.overwrite && !s_.resume && !it.conditional;
          // -o LINK writes where the link points, as asked; a name from a URL never does.
          fo.write_through_symlink = !s_.output.empty();
          fo.remote_time = s_.remote_time;
          // -J: the name a Content-Disposition gives, in the same directory (a name from a
          // URL's response: sanitised, and never the name of an existing file).
          // With -c, an earlier run's .part of this URL is continued under the name its first
          // response chose (the sink finds it by its sidecar).
          if (s_.content_disposition && (fo.unique_name || (s_.resume && !it.conditional)))
            fo.name_for_head = [](const Response& head) -> std::string {
              auto cd = head.header("Content-Disposition");
              return cd ? cli::content_disposition_name(*cd) : std::string();
            };
          req.sink = make_file_sink(path, fo);
        }
      }
    }
    // Credentials given with an entry (header= lines) are for its own URL's origin: a mirror
    // elsewhere is not sent them.
    bool other_origin = at != it.url && !same_origin(at, it.url);
    for (const std::string& h : it.headers) {  // header= lines, and conditions
      std::size_t colon = h.find(':');
      if (other_origin && is_credential(trim(std::string_view(h).substr(0, colon)))) continue;
      std::string value = h.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      req.headers.emplace_back(h.substr(0, colon), value);
    }
    Callbacks cbs;
    if (s_.output == "-")
      cbs.on_data = [](std::span<const std::byte> b) {
        std::fwrite(b.data(), 1, b.size(), stdout);
      };
    cbs.on_done = [this, path, entry](const TransferResult& res) {
      TransferResult r = res;
      if (entry->conditional && r.status == 304) {  // not changed: the file stays as it is
        r.error = {};
        r.path = path;
        ++not_modified_;
        // Its record describes the file kept, for the next --skip-done or --if-changed.
        struct stat st;
        std::uint64_t size =
            ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
        if (auto d = changed_list_ ? changed_list_->find(entry->url) : std::nullopt) {
          if (r.etag.empty()) r.etag = d->etag;
          if (r.last_modified.empty()) r.last_modified = d->last_modified;
        }
        r.bytes = size;
        on_done(r, path);
        bytes_ -= size;  // nothing was downloaded
        return;
      }
      // Another URL of the same file is tried when this one failed for a reason of its own.
      if (!r.ok() && entry->mirror < entry->mirrors.size() && !interrupted_ &&
          r.error.code != Errc::cancelled && r.error.code != Errc::checksum_mismatch &&
          r.error.code != Errc::file_io) {
        say(r.error.message() + " (trying " + entry->mirrors[entry->mirror] + ")");
        --in_flight_;
        if (!path.empty()) used_.erase(path);
        ++entry->mirror;
        return start(entry);
      }
      if (entry->mirror == 0) return on_done(r, path);
      TransferResult as_listed = r;  // recorded under the entry's own URL
      as_listed.final_url = r.final_url.empty() ? r.url : r.final_url;
      as_listed.url = entry->url;
      on_done(as_listed, path);
    };
    if (mode_ == Progress::lines || s_.verbose)
      cbs.on_retry = [this](const Error& why, int attempt, std::uint64_t delay_ms) {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.1f", static_cast<double>(delay_ms) / 1000);
        say(why.message() + " (retrying in " + secs + " s, attempt " + std::to_string(attempt) +
            " of " + std::to_string(s_.retries + 1) + ")");
      };
    auto id = client_->get(std::move(req), std::move(cbs));
    if (!id) return fail_item(it, id.error());
    ++in_flight_;
  }

  // A URL that fails before a request: said, counted, recorded.
  void fail_item(const Item& it, Error e) {
    if (e.url.empty()) e.url = it.url;
    ++failed_;
    ++done_;
    std::string where = it.line ? "line " + std::to_string(it.line) + ": " : "";
    say(where + e.message());
    if (json_) {
      TransferResult r;
      r.url = it.url;
      r.error = std::move(e);
      write_json(r, "");
    }
  }

  // The file name for a URL under -d: its name (--name-from), in its -x directories, which are
  // made here first. "" with `error` set when they cannot be.
  std::string name_under_dir(const Item& it, const UrlParts& url, Error& error) {
    std::string name = !it.out.empty()
                           ? it.out
                           : cli::name_for(url.path, url.query, url.has_query, it.url, name_from_);
    std::string sub = it.dir;  // the list's dir=, under -d
    if (s_.force_dirs) {
      std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
      bool default_port =
          (url.scheme == "http" && url.port == 80) || (url.scheme == "https" && url.port == 443);
      if (!default_port) host += ":" + std::to_string(url.port);
      std::string layout = cli::layout_dirs(host, url.path, s_.no_host_dirs, s_.cut_dirs);
      if (!layout.empty()) sub = sub.empty() ? layout : sub + "/" + layout;
    }
    if (sub.empty()) return name;
    if (std::string why = make_dirs(sub); !why.empty()) {
      error = Error(Errc::file_io, why);
      return "";
    }
    return sub + "/" + name;
  }

  // Makes the directories of `sub` (one per '/') under -d, one at a time from -d's own
  // descriptor: none is followed if it is a symbolic link, so nothing lands outside -d. Made
  // once per run; every loop's files are named here, on this thread, so there is no race.
  std::string make_dirs(const std::string& sub) {
    if (made_dirs_.count(sub)) return "";
    if (dir_fd_ < 0) {
      dir_fd_ = ::open(s_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir_fd_ < 0) return "cannot open directory '" + s_.dir + "': " + std::strerror(errno);
    }
    int at = dir_fd_;
    std::string sofar;
    std::string why;
    for (std::size_t from = 0; from <= sub.size();) {
      std::size_t slash = sub.find('/', from);
      if (slash == std::string::npos) slash = sub.size();
      std::string seg = sub.substr(from, slash - from);
      from = slash + 1;
      sofar += (sofar.empty() ? "" : "/") + seg;
      std::string shown = (std::filesystem::path(s_.dir) / sofar).string();
      if (::mkdirat(at, seg.c_str(), 0777) != 0 && errno != EEXIST) {
        why = "cannot create directory '" + shown + "': " + std::strerror(errno);
        break;
      }
      int next = ::openat(at, seg.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        why = errno == ELOOP || errno == ENOTDIR
                  ? "'" + shown + "' is a symbolic link or not a directory: not followed"
                  : "cannot open directory '" + shown + "': " + std::strerror(errno);
        break;
      }
      if (at != dir_fd_) ::close(at);
      at = next;
    }
    if (at != dir_fd_) ::close(at);
    if (why.empty()) made_dirs_.insert(sub);
    return why;
  }

  // The name asked of the sink. Taken names are the sink's business (FileSinkOptions::
  // unique_name): it moves to NAME.1, NAME.2, ... on the threadpool, atomically (O_EXCL, a
  // rename that cannot replace), so the loop never waits on a stat, two downloads of one name
  // never share a .part, and another program's file is never replaced. With -c a file on disk
  // is the one to continue, so only names in flight are kept apart, here.
  std::string unique_path(const std::string& name) {
    std::string base = (std::filesystem::path(s_.dir) / name).string();
    if (s_.overwrite || !s_.resume) return base;
    std::string candidate = base;
    for (int n = 1; used_.count(candidate); ++n) candidate = base + "." + std::to_string(n);
    used_.insert(candidate);
    return candidate;
  }

  void on_done(const TransferResult& r, const std::string& asked) {
    const std::string& path = r.path.empty() ? asked : r.path;
    --in_flight_;
    // With -c only names of downloads in flight are kept apart (unique_path()), so memory stays
    // bounded by the window, not by the list.
    if (!asked.empty()) used_.erase(asked);
    ++done_;
    bytes_ += r.bytes;
    if (r.ok()) {
      ++ok_;
      if (!asked.empty() && r.path.size() > asked.size() && r.path.rfind(asked + ".", 0) == 0)
        ++suffixed_;
      if (mode_ == Progress::lines)
        say(r.url + " -> " + (path.empty() ? "(discarded)" : path) + " (" +
            std::to_string(r.bytes) + " bytes" +
            (r.resumed_from ? " after " + std::to_string(r.resumed_from) + " already there" : "") +
            ", HTTP " + std::to_string(r.status) + ")");
    } else if (r.error.code == Errc::robots_disallowed && s_.robots_skip_ok) {
      ++robots_refused_;  // a skip the user said is fine: not a failure
      if (mode_ == Progress::lines || s_.verbose) say(r.error.message());
    } else {
      ++failed_;
      if (r.error.code == Errc::robots_disallowed) ++robots_refused_;
      if (!(interrupted_ && r.error.code == Errc::cancelled)) say(r.error.message());
      if (interrupted_ && r.error.code == Errc::cancelled) ++cancelled_;
    }
    if (r.host_limit && s_.verbose) {
      // scheme://host[:port] of where the answer came from
      const std::string& at = r.final_url.empty() ? r.url : r.final_url;
      std::size_t end = at.find('/', at.find("//") == std::string::npos ? 0 : at.find("//") + 2);
      say(at.substr(0, end) + ": connection limit now " + std::to_string(r.host_limit) +
          " (it adapts to 429 and 503 answers)");
    }
    if (json_) write_json(r, r.ok() ? path : "");
    feed();
  }

  void write_json(const TransferResult& r, std::string_view path, bool skipped = false) {
    json_line_.clear();
    cli::append_json_record(json_line_, r, path, skipped);
    json_line_.push_back('\n');
    std::fwrite(json_line_.data(), 1, json_line_.size(), json_);
  }

  // A message on stderr; the live status area is wiped first and redrawn on the next tick.
  void say(const std::string& msg) {
    clear_bar();
    std::fprintf(stderr, "uvget: %s\n", cli::mask_credentials(msg).c_str());
  }

  void clear_bar() {
    if (bar_drawn_) std::fputs("\r\x1b[2K", stderr);
    bar_drawn_ = false;
  }

  static void on_progress(uv_timer_t* t) noexcept { static_cast<App*>(t->data)->draw_progress(); }
  static void on_resize(uv_signal_t* h, int) noexcept {
    auto* self = static_cast<App*>(h->data);
    self->columns_ = terminal_columns();
    if (self->progress_on_) self->draw_progress();
  }

  // The width of the terminal on stderr now; 80 when it does not say.
  static std::size_t terminal_columns() {
    winsize ws{};
    if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
  }

  void draw_progress() {
    double secs = static_cast<double>(uv_hrtime() - start_ns_) / 1e9;
    double rate = secs > 0 ? static_cast<double>(bytes_) / secs : 0;
    double files_rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
    // The total is known once the whole list has been read, long before it has been submitted.
    bool total_known = !reader_ || (reader_->done() && !reader_->busy());
    std::uint64_t total = total_ + pending_.size();
    std::string eta = total_known && files_rate > 0
                          ? cli::human_duration(static_cast<double>(total - done_) / files_rate)
                          : "--:--";
    std::vector<std::string> fields = {
        std::to_string(done_) + "/" + (total_known ? std::to_string(total) : "?") + " files",
        cli::human_bytes(static_cast<double>(bytes_)),
        cli::human_bytes(rate) + "/s",
        "ETA " + eta,
        cli::count_of(client_->stats().open_connections, "connection"),
        cli::count_of(failed_, "error")};
    std::string line;
    if (mode_ == Progress::bar) {
      // One line that fits the terminal as it is now (it may have been resized): a line longer
      // than the window wraps, and every redraw would then leave a line behind.
      line = cli::fit_status(fields, columns_ - 8);  // "uvget: ", and the cursor
    } else {
      for (auto& f : fields) line += (line.empty() ? "" : ", ") + f;
    }
    if (mode_ == Progress::bar) {
      std::fprintf(stderr, "\r\x1b[2Kuvget: %s", line.c_str());
      bar_drawn_ = true;
    } else {
      std::fprintf(stderr, "uvget: %s\n", line.c_str());
    }
    std::fflush(stderr);
  }

  static void on_signal(uv_signal_t* h, int) noexcept {
    auto* self = static_cast<App*>(h->data);
    if (self->interrupted_) return;
    self->interrupted_ = true;
    for (auto& it : self->pending_) self->not_started(it.url, it.line);
    self->pending_.clear();
    if (self->checks_) self->checks_->cancel();  // their items are gone
    if (self->reader_) {
      if (self->input_is_file_ && !self->reader_->done()) {
        self->draining_ = true;
        self->drain_input();
      } else {
        self->reader_->stop();
      }
    }
    self->finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    if (progress_on_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&progress_timer_), nullptr);
      progress_on_ = false;
    }
    if (resize_on_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&sigwinch_), nullptr);
      resize_on_ = false;
    }
    clear_bar();
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    // Transfers cancelled by the close still report (and get their records) before this runs.
    client_->close([this] {
      stats_ = client_->stats();  // final: every loop has stopped
      client_closed_ = true;
      close_records_if_done();
      summary();
    });
  }

  void summary() {
    if (s_.quiet) return;
    clear_bar();
    double secs = static_cast<double>(uv_hrtime() - start_ns_) / 1e9;
    if (secs <= 0) secs = 1e-9;
    std::fprintf(stderr, "uvget: %s ok, %llu failed, %s in %.3f s (%.1f files/s, %.2f MB/s)%s\n",
                 cli::count_of(ok_, "file").c_str(), static_cast<unsigned long long>(failed_),
                 cli::count_of(bytes_, "byte").c_str(), secs, static_cast<double>(ok_) / secs,
                 static_cast<double>(bytes_) / secs / 1e6, interrupted_ ? " (interrupted)" : "");
    if (not_modified_ > 0)
      std::fprintf(stderr, "uvget: %s not changed on the server, kept as they were\n",
                   cli::count_of(not_modified_, "file").c_str());
    if (skipped_done_ > 0)
      std::fprintf(stderr, "uvget: %s already done by '%s', not requested\n",
                   cli::count_of(skipped_done_, "file").c_str(), s_.skip_done.c_str());
    if (robots_refused_ > 0)
      std::fprintf(stderr, "uvget: %s refused by robots.txt, never requested%s\n",
                   cli::count_of(robots_refused_, "URL").c_str(),
                   s_.robots_skip_ok ? " (--robots-skip-ok: not counted as failed)"
                                     : " (counted as failed; --robots-skip-ok skips them)");
    if (suffixed_ > 0)
      std::fprintf(stderr,
                   "uvget: %llu %s already taken, so %s a numbered name (NAME.1, ...); -c "
                   "continues what is there and --overwrite replaces it\n",
                   static_cast<unsigned long long>(suffixed_),
                   suffixed_ == 1 ? "name was" : "names were",
                   suffixed_ == 1 ? "its file got" : "their files got");
    if (interrupted_)
      std::fprintf(stderr, "uvget: interrupted: %llu cancelled, %llu not started%s\n",
                   static_cast<unsigned long long>(cancelled_),
                   static_cast<unsigned long long>(not_started_), json_path_note().c_str());
    if (s_.verbose)
      std::fprintf(stderr,
                   "uvget: %d loop%s, %llu connections, %llu of %llu requests on reused "
                   "connections, TLS handshakes: %llu full, %llu resumed, certificate chains: "
                   "%llu verified, %llu already verified; DNS: %llu lookups, %llu answered "
                   "from the cache; %llu connect attempts\n",
                   loops_, loops_ == 1 ? "" : "s",
                   static_cast<unsigned long long>(stats_.connections_opened),
                   static_cast<unsigned long long>(stats_.requests_reused),
                   static_cast<unsigned long long>(stats_.requests_sent),
                   static_cast<unsigned long long>(stats_.tls_full_handshakes),
                   static_cast<unsigned long long>(stats_.tls_resumed_handshakes),
                   static_cast<unsigned long long>(stats_.tls_chains_verified),
                   static_cast<unsigned long long>(stats_.tls_chain_cache_hits),
                   static_cast<unsigned long long>(stats_.dns_lookups),
                   static_cast<unsigned long long>(stats_.dns_cache_hits),
                   static_cast<unsigned long long>(stats_.connect_attempts));
  }

  std::string json_path_note() const {
    if (s_.json.empty() || s_.json == "-") return "";
    return " (each has a record in '" + s_.json + "')";
  }

  int exit_code() const {
    if (interrupted_) return kExitInterrupted;
    return (failed_ > 0 || input_error_) ? kExitFailed : kExitOk;
  }

  uv_loop_t* loop_;
  Settings s_;
  std::unique_ptr<Downloader> client_;  // a Client on the main loop, or a Runner of loops
  int loops_ = 1;
  ClientStats stats_;  // taken when the run ends
  std::unique_ptr<cli::LineReader> reader_;
  std::deque<Item> pending_;              // read but not yet given to the client
  std::optional<Item> open_item_;         // the list's last URL, until its options are read
  std::unordered_set<std::string> used_;  // output paths of the downloads in flight
  cli::NameFrom name_from_ = cli::NameFrom::path;
  int dir_fd_ = -1;                            // -d, for -x's directories
  std::unordered_set<std::string> made_dirs_;  // -x directories made (or found) this run
  std::size_t window_ = 256;
  std::size_t in_flight_ = 0;
  enum class Progress { none, lines, bar, status };
  std::uint64_t total_ = 0, done_ = 0, ok_ = 0, failed_ = 0, bytes_ = 0;
  cli::Shard shard_;           // the whole list unless --shard
  std::FILE* json_ = nullptr;  // --json output
  Progress mode_ = Progress::none;
  uv_timer_t progress_timer_{};
  bool progress_on_ = false;  // progress_timer_ initialised and not yet closed
  bool bar_drawn_ = false;    // the status area is on screen
  std::uint64_t start_ns_ = 0;
  bool interrupted_ = false;
  bool finished_ = false;
  bool input_error_ = false;
  bool input_is_file_ = false;  // -i names a regular file (not stdin, not a pipe)
  bool draining_ = false;       // interrupted: the rest of the list is read for its records
  bool client_closed_ = false;
  std::uint64_t not_started_ = 0, cancelled_ = 0;
  std::uint64_t suffixed_ = 0;        // files that got NAME.1, NAME.2, ... because NAME was taken
  std::uint64_t robots_refused_ = 0;  // URLs robots.txt refused (--robots)
  std::string json_line_;             // --json's record being written
  TransferResult skipped_result_;     // the record of a URL --skip-done skips
  std::optional<cli::DoneList> done_list_;  // --skip-done
  std::uint64_t skipped_done_ = 0;
  std::optional<cli::DoneList> changed_list_;  // --if-changed
  std::optional<cli::FileChecks> checks_;  // records' files, checked off the loop (after the lists)
  std::uint64_t not_modified_ = 0;         // 304s to --if-changed and -N
  uv_signal_t sigint_{}, sigterm_{};
  uv_signal_t sigwinch_{};  // Progress::bar only
  bool resize_on_ = false;
  std::size_t columns_ = 80;  // of the terminal, as of the last SIGWINCH
};

}  // namespace

namespace {

// The options, grouped as the help shows them. Every option takes one value per occurrence.
void describe_options(cli::ArgParser& p, Settings& s, bool& help, bool& version) {
  using cli::int_in;
  using cli::one_of;
  using cli::seconds;
  using cli::text;
  auto add_text = [&](const char* name, char c, const char* arg, std::string* out,
                      const char* words) { p.option(name, c, arg, words, text(out)); };
  p.group("Input");
  add_text("input-file", 'i', "FILE", &s.input_file,
           "URLs one per line ('-': standard input); blank lines and '#' comments skipped, read "
           "as the downloads go, so a list of any length runs in bounded memory");
  add_text("shard", 0, "K/N", &s.shard,
           "only the URLs whose hash falls in shard K of N (0 <= K < N): N machines split one "
           "list with no coordination");
  p.group("Output");
  add_text("dir", 'd', "DIR", &s.dir,
           "directory for the files, created if missing (default: the current one); a "
           "relative -o lands in it");
  add_text("output", 'o', "FILE", &s.output,
           "the single URL's file ('-': standard output); a device or FIFO is written into, a "
           "symbolic link written through");
  p.flag("create-dirs", 0, "create -o's missing parent directories", [&] { s.create_dirs = true; });
  p.option("name-from", 0, "path|path+query|hash",
           "a file's name: the URL's last path segment (default), with its query (as wget), or "
           "a digest of the whole URL keeping the extension; clashes still get .1, .2, ...",
           one_of(&s.name_from, {"path", "path+query", "hash"}));
  p.flag("content-disposition", 'J',
         "name a file as its Content-Disposition says (filename*, then filename; the last "
         "component only, sanitised; with -c, an interrupted file continues under the name "
         "chosen first)",
         [&] { s.content_disposition = true; });
  p.flag("force-directories", 'x',
         "put each file in directories named after its host and path under -d (as wget -x); "
         "each part sanitised, symbolic links never followed",
         [&] { s.force_dirs = true; });
  p.flag("no-host-directories", 0, "with -x, leave out the host's directory",
         [&] { s.no_host_dirs = true; });
  p.option("cut-dirs", 0, "N", "with -x, leave out the first N directories of the path",
           int_in(&s.cut_dirs, 0, 1000));
  p.flag("remote-time", 'R', "give each file the server's Last-Modified time",
         [&] { s.remote_time = true; });
  p.flag("overwrite", 0, "replace existing files instead of adding .1, .2, ...",
         [&] { s.overwrite = true; });
  p.flag("continue", 'c',
         "continue NAME.part (or a partial NAME) left by an earlier run, where the server allows",
         [&] { s.resume = true; });
  p.flag("discard", 0, "download and count the bytes, write nothing", [&] { s.discard = true; });
  add_text("checksum", 0, "ALGO=HEX", &s.checksum,
           "sha-256, sha-1 or md5 the single URL's body must hash to (with -i: after a tab on the "
           "URL's line); a mismatch leaves no file");
  add_text("max-filesize", 0, "SIZE", &s.max_filesize,
           "refuse a file larger than SIZE (K, M, G): from its Content-Length before a byte is "
           "written, or as soon as a body without one passes it; no file is left");
  add_text("skip-done", 0, "FILE", &s.skip_done,
           "skip each URL that FILE (the --json records of an earlier run) says is done, when its "
           "file is still there with its size: no request, counted as done; FILE may be --json's");
  add_text("if-changed", 0, "FILE", &s.if_changed,
           "ask again only for what changed: each URL FILE (earlier --json records) says is done, "
           "with its file still there, is asked with If-None-Match/If-Modified-Since into the "
           "same file; a 304 keeps it");
  p.flag("timestamping", 'N',
         "a file already there is fetched again only if the server's is newer "
         "(If-Modified-Since its time), and replaced; implies -R",
         [&] { s.timestamping = true; });
  add_text("json", 0, "FILE", &s.json,
           "one JSON record per URL ('-': standard output), also for the ones cancelled or never "
           "started");
  p.group("Connections");
  p.option("connections", 'j', "N", "connections in all (default 64)",
           int_in(&s.connections, 1, 100000));
  p.option("per-host", 0, "N", "connections to one host (default 16)",
           int_in(&s.per_host, 1, 100000));
  p.option("initial-per-host", 0, "N",
           "connections to a host that may wait for its first answer at once; more open as it "
           "answers, up to --per-host (default 4; 0: all at once)",
           int_in(&s.initial_per_host, 0, 100000));
  p.option("pipeline", 0, "N",
           "requests in flight per connection once every connection is busy (HTTP/1.1 "
           "pipelining; default 1: off)",
           int_in(&s.pipeline, 1, 64));
  p.option("loops", 0, "N|auto",
           "event loops, each on its own thread (default 1; auto: one per core); -j and "
           "--per-host hold for all of them together",
           text(&s.loops));
  p.option("resolver", 0, "dns|system",
           "dns (default): DNS from the event loop itself, reading /etc/hosts and "
           "/etc/resolv.conf; system: the system's getaddrinfo on worker threads",
           one_of(&s.resolver, {"dns", "system"}));
  p.option("connect-timeout", 0, "S", "seconds for each connection attempt (default 30)",
           seconds(&s.connect_timeout, false));
  p.option("idle-timeout", 0, "S", "seconds without a byte before giving up (default 60; 0: never)",
           seconds(&s.idle_timeout, true));
  p.option("timeout", 0, "S", "seconds a whole download may take, waiting included (default: none)",
           seconds(&s.timeout, true));
  add_text("limit-rate", 0, "RATE", &s.limit_rate,
           "bytes per second for all downloads together, K, M, G allowed (default: no cap)");
  add_text("min-speed", 0, "RATE", &s.min_speed,
           "bytes per second a download must keep up over --min-speed-time, or it is retried "
           "(default 100; 0: none)");
  p.option("min-speed-time", 0, "S", "seconds below --min-speed before giving up (default 60)",
           seconds(&s.min_speed_time, false));
  p.option("split", 's', "N",
           "connections for one large file, when the server takes ranges (default 1); a list "
           "entry's mirrors share the parts, and a free connection takes half of a slow one",
           int_in(&s.split, 1, 64));
  add_text("min-split-size", 0, "SIZE", &s.min_split_size,
           "smallest file --split divides (default 20M)");
  p.group("Per host");
  p.option("max-rate-per-host", 0, "R",
           "requests per second to one host, retries included (default: no limit)",
           [&s](const std::string& v) -> std::optional<std::string> {
             char* end = nullptr;
             double r = v.empty() ? -1 : std::strtod(v.c_str(), &end);
             if (v.empty() || *end != '\0' || !std::isfinite(r) || r < 0 || r > 1e9)
               return "expected requests per second, e.g. 2 or 0.5";
             s.max_rate_per_host = r;
             return std::nullopt;
           });
  p.option("wait", 0, "S", "seconds between the starts of two requests to one host (default 0)",
           seconds(&s.wait, true));
  p.flag("random-wait", 0, "each --wait drawn anew from 0.5 to 1.5 times its length",
         [&] { s.random_wait = true; });
  p.flag("robots", 0,
         "obey each host's robots.txt (fetched once per host first; the -U product token's "
         "group, else *; Crawl-delay as --wait): a refused URL is never requested and fails",
         [&] { s.robots = true; });
  p.flag("robots-skip-ok", 0, "--robots, and a URL robots.txt refuses is skipped, not failed",
         [&] { s.robots_skip_ok = true; });
  p.group("HTTP");
  p.option("header", 'H', "'NAME: VALUE'", "an extra request header (repeat for more)",
           [&](const std::string& v) -> std::optional<std::string> {
             s.headers.push_back(v);
             return std::nullopt;
           });
  p.flag("compressed", 0,
         "ask for gzip, deflate, br or zstd and save the body decoded; --checksum and sizes "
         "count the decoded bytes",
         [&] { s.compressed = true; });
  add_text("user-agent", 'U', "TEXT", &s.user_agent,
           "the User-Agent header (default uvget/VERSION)");
  p.option("max-redirects", 0, "N", "redirects followed at most (default 10)",
           int_in(&s.max_redirects, 0, 100));
  p.option("retries", 0, "N",
           "retries after a failure that may pass: connect, reset, timeout, a body cut short, "
           "DNS failing for now, HTTP 408, 429, 5xx (default 3)",
           int_in(&s.retries, 0, 1000));
  p.option("retry-wait", 0, "S",
           "seconds before the first retry, doubled each time with jitter up to 30 s; a "
           "server's Retry-After is honoured up to 120 s (default 1)",
           seconds(&s.retry_wait, true));
  p.group("TLS");
  add_text("cacert", 0, "FILE", &s.cacert,
           "trust the CAs in FILE instead of the system's ($SSL_CERT_FILE names another bundle)");
  p.flag("insecure", 'k', "do not verify certificates (a warning says so)",
         [&] { s.insecure = true; });
  p.flag("allow-insecure-redirect", 0, "follow redirects from https to http (refused by default)",
         [&] { s.allow_downgrade = true; });
  p.group("Display");
  p.option("progress", 0, "MODE",
           "bar (a live status line), lines (a line per download), none, or auto (default: bar "
           "on a terminal, a status line every 5 s otherwise)",
           one_of(&s.progress, {"auto", "bar", "lines", "none"}));
  p.flag("quiet", 'q', "no progress and no summary", [&] { s.quiet = true; });
  p.flag("verbose", 'v', "a line per finished download and retry, and counts at the end",
         [&] { s.verbose = true; });
  p.flag("version", 'V', "print the version and exit", [&] { version = true; });
  p.flag("help", 'h', "print this help and exit", [&] { help = true; });
}

std::string help_text(const cli::ArgParser& p) {
  std::string out =
      "Usage: uvget [OPTIONS] URL...\n"
      "       uvget [OPTIONS] -i FILE\n"
      "Downloads many URLs at once over HTTP/1.1 and HTTPS on one event loop. Each file is\n"
      "written as NAME.part and renamed once complete; a name already taken gets .1, .2, ...\n";
  out += p.help(100);
  out +=
      "\nExamples:\n"
      "  uvget -d downloads https://example.org/a.iso https://example.org/b.tar.gz\n"
      "  uvget -i urls.txt -j 256 --per-host 8 --json records.jsonl\n"
      "  uvget -c -s 4 -o big.img https://mirror.example/big.img\n"
      "\nExit status: 0 all downloads succeeded, 1 some failed, 2 usage error, 130 interrupted.\n"
      "The manual page (man uvget) describes every option.\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bool help = false, version = false;
  cli::ArgParser parser;
  describe_options(parser, s, help, version);
  if (std::string error = parser.parse(argc, argv, s.urls); !error.empty()) {
    std::fprintf(stderr, "uvget: %s\n", cli::mask_credentials(error).c_str());
    return kExitUsage;
  }
  if (help) {
    std::fputs(help_text(parser).c_str(), stdout);
    return kExitOk;
  }
  if (version) {
    std::printf("uvget %s\n", uvget::kVersion);
    return kExitOk;
  }
  if (s.urls.empty() && s.input_file.empty()) {
    std::fprintf(stderr, "uvget: no URL given (try --help)\n");
    return kExitUsage;
  }
  if (s.output == "-" && s.json == "-") {
    std::fprintf(stderr, "uvget: -o - and --json - cannot both use stdout\n");
    return kExitUsage;
  }
  if (s.content_disposition && (s.overwrite || !s.output.empty())) {
    std::fprintf(stderr,
                 "uvget: -J names files from the response: not with %s (a name from a header "
                 "must never replace a file, and -o names the file itself)\n",
                 s.overwrite ? "--overwrite" : "-o");
    return kExitUsage;
  }
  if (!s.checksum.empty() && (s.urls.size() != 1 || !s.input_file.empty())) {
    std::fprintf(stderr,
                 "uvget: --checksum takes exactly one URL (with -i, put it after a tab on the "
                 "URL's line)\n");
    return kExitUsage;
  }
  if (!s.output.empty() && (s.urls.size() != 1 || !s.input_file.empty())) {
    std::fprintf(stderr, "uvget: -o/--output takes exactly one URL\n");
    return kExitUsage;
  }
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = App(&loop, std::move(s)).run();
  if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "uvget: internal error: loop not empty\n");
  return rc;
}
