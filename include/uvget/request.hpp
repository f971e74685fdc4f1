// What a caller hands to Client::get() and what it gets back: Request, Response, Sink,
// TransferResult.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <uvget/error.hpp>
#include <uvget/export.hpp>
#include <uvget/options.hpp>

struct uv_loop_s;

namespace uvget {

enum class Method { get, head };

/// The head of a response: status line and headers, in the order received.
struct UVGET_EXPORT Response {
  int status = 0;
  std::string reason;
  int http_minor = 1;
  HeaderList headers;
  /// First header of that name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  /// Content-Length when the server sent a valid one.
  std::optional<std::uint64_t> content_length() const;
};

/// Where a body goes. The client calls open() once for the final response, then write() for each
/// piece of body, then exactly one of finish() or abort(). All calls come on the client's loop
/// thread.
class UVGET_EXPORT Sink {
 public:
  struct Events {
    std::function<void()> drained;      // writes may start again after write() returned false
    std::function<void(Error)> failed;  // the sink cannot go on (disk full, ...)
  };
  virtual ~Sink() = default;
  /// The final response arrived; `loop` is the client's loop. A returned error fails the transfer.
  virtual Error open(uv_loop_s* loop, const Response& head, Events events) = 0;
  /// Takes a copy of `data` or consumes it now. Returns false when the caller should stop reading
  /// until Events::drained is called (backpressure).
  virtual bool write(std::span<const std::byte> data) = 0;
  /// The body is complete and verified: make it final (for a file: close, rename). `done` is called
  /// exactly once, possibly later; an error there fails the transfer.
  virtual void finish(std::function<void(Error)> done) = 0;
  /// The transfer failed (`why`; Errc::cancelled when cancelled or closed): release everything,
  /// call `done` exactly once. Called also when open() was never called.
  virtual void abort(const Error& why, std::function<void()> done) = 0;
  /// A retry will download the body again from its first byte: drop what was written, and call
  /// `done` once ready for open() again. Returns false when the sink cannot start over (the
  /// default): the transfer then fails instead of retrying. After restart(), abort() may still
  /// come instead of `done`; then `done` is never called.
  virtual bool restart(std::function<void()> done) {
    (void)done;
    return false;
  }

  // Resuming (optional). A sink that can keep the bytes it holds lets a retry, or a later run,
  // ask the server for the rest only (Range, with If-Range when a validator is known). The client
  // appends only to a 206 whose Content-Range starts exactly at held().bytes (and whose length
  // matches held().total when known); on a 200 it calls open() and the body starts over.

  /// What the sink holds of the body: its first `bytes`, from a response whose strong ETag (else
  /// Last-Modified) was `validator` (empty: unknown, resume by size alone) and whose full length
  /// was `total` (0: unknown).
  struct Held {
    std::uint64_t bytes = 0;
    std::string validator;
    std::uint64_t total = 0;
  };
  /// Called once, before the first request: find what is held (e.g. look on disk), then call
  /// `done` (possibly later). abort() may come instead, and then `done` is never called.
  virtual void prepare(uv_loop_s* loop, std::function<void()> done) {
    (void)loop;
    done();
  }
  virtual Held held() const { return {}; }
  /// Where the body ended up, once finish() succeeded (a file sink: the final path, which may
  /// differ from the one asked for with FileSinkOptions::unique_name). Empty: nowhere on disk.
  virtual std::string location() const { return {}; }
  /// Instead of open(): the response continues the held bytes; append to them.
  virtual Error open_continued(uv_loop_s* loop, const Response& head, Events events) {
    (void)loop, (void)head, (void)events;
    return Error(Errc::bad_request, "this sink cannot continue a partial body");
  }
  /// Instead of restart(): a retry follows; keep every byte written so far (flushed to where it
  /// belongs, so that held() counts it) and call `done` once settled. Returns false when the
  /// sink cannot (the default): restart() is used.
  virtual bool suspend(std::function<void()> done) {
    (void)done;
    return false;
  }
  /// Hands the held bytes (the first held().bytes of the body, in order) to `update`, which runs
  /// on a threadpool thread, then calls `done` on the loop; an error there means they could not
  /// all be read. A checksum then covers a body continued from an earlier run. Called only after
  /// prepare() and before the first request; abort() may come instead of `done`. Returns false
  /// when the sink cannot (the default): the body is then fetched whole.
  virtual bool replay_held(std::function<void(std::span<const std::byte>)> update,
                           std::function<void(Error)> done) {
    (void)update, (void)done;
    return false;
  }
  /// About how many more bytes write() takes before it asks the reader to pause. The client
  /// reads no more than this for the sink at once (never under 16 KiB), so what a sink holds
  /// stays near its own bound instead of growing by a whole read. Default: no bound.
  virtual std::size_t room() const { return SIZE_MAX; }
};

struct FileSinkOptions {
  /// Keep NAME.part when the transfer fails (for a later resume); by default it is removed.
  bool keep_partial = false;
  /// Keep NAME.part only when the transfer is cancelled (Ctrl-C in the command line).
  bool keep_partial_on_cancel = false;
  /// Reading pauses above high_water pending bytes and resumes below low_water. Whatever is
  /// pending when a write completes goes out in one coalesced write.
  std::size_t high_water = 256 * 1024;
  std::size_t low_water = 64 * 1024;
  /// File mode for a new file.
  int mode = 0644;
  /// Continue what an earlier run left (prepare() looks on disk): NAME.part with its sidecar
  /// NAME.part.meta (validator and length of the response that started it), or NAME.part alone,
  /// or a partial NAME written by another program (then NAME becomes NAME.part while it grows,
  /// and is left alone when the server says it is already complete).
  bool resume = false;
  /// Never replace or truncate a file that is already there: when NAME or NAME.part is taken at
  /// the moment the file is created, or NAME at the moment it is renamed, the next free NAME.1,
  /// NAME.2, ... is used instead (decided on the threadpool with O_EXCL and a rename that cannot
  /// replace, so two programs writing into one directory never overwrite each other).
  /// TransferResult::path says which name the body got. Not together with `resume`.
  bool unique_name = false;
  /// When NAME is a symbolic link (without unique_name): write to where it points, as `-o LINK`
  /// asks. Off: such a NAME is refused (a name that came from a URL must not lead elsewhere).
  bool write_through_symlink = false;
  /// Give the finished file the response's Last-Modified time as its modification time (the
  /// command line's -R).
  bool remote_time = false;
  /// The file's name from the response (the command line's -J reads Content-Disposition):
  /// called with the head of a whole body before anything is on disk; a non-empty result
  /// replaces NAME's last component (it must be one plain name; clashes follow unique_name).
  /// Not once an earlier attempt put a .part on disk (a retry keeps the name chosen first).
  /// With resume (and a `source`), the name chosen first is kept across runs: prepare() looks
  /// in NAME's directory for a .part whose sidecar names `source` and a process that is gone
  /// (or this one), not locked by anyone, and continues it under its name (a file that took
  /// that name meanwhile is kept: the body gets NAME.1, ...); when there is none,
  /// nothing on disk is continued, the body is named from its head as with unique_name (no
  /// file is ever replaced), and its .part is kept if it fails, for the next run.
  std::function<std::string(const Response&)> name_for_head;
  /// The URL the body comes from. Written into the sidecar with this process's id, so that a
  /// NAME.part left by an earlier run (killed, or interrupted with keep_partial_on_cancel) is
  /// known as ours: with unique_name, a NAME.part whose sidecar names this URL and a process
  /// that no longer runs is taken over (started over, and the body still gets NAME) instead of
  /// the body moving to NAME.1. A .part without such a sidecar, or one another process is
  /// writing (it holds a lock on it), is never touched. Empty: no .part is ever taken over.
  std::string source;
};

/// Writes the body to `path + ".part"` and renames it to `path` once the body is complete.
/// While streaming it keeps `path + ".part.meta"` beside it (what a later resume needs), removed
/// with the .part. A retry continues the .part when the server allows (see Sink::held).
/// Only a regular file is ever replaced: when `path` is a device, a FIFO or a socket (without
/// unique_name), the body is written straight into it (no .part, no rename, no reservation, no
/// retry once a byte went in), and a directory or a symbolic link there is an error unless
/// FileSinkOptions::write_through_symlink.
UVGET_EXPORT std::unique_ptr<Sink> make_file_sink(std::string path, FileSinkOptions options = {});
/// Appends the body to `*out`; fails the transfer when it would grow over `max_bytes`.
/// `out` must outlive the transfer.
UVGET_EXPORT std::unique_ptr<Sink> make_memory_sink(std::string* out,
                                                    std::size_t max_bytes = SIZE_MAX);
/// Counts and drops the body.
UVGET_EXPORT std::unique_ptr<Sink> make_discard_sink();

struct Request {
  std::string url;
  Method method = Method::get;
  /// Sent after the client's headers; a name given here replaces the client's value.
  HeaderList headers;
  /// Where the body goes. Null: nowhere (Callbacks::on_data still sees it).
  std::unique_ptr<Sink> sink;
  /// A final status outside 2xx is an error (Errc::http_status) and the body is not kept.
  bool fail_on_http_error = true;
  /// "sha-256=HEX" (also sha-1, md5): the body is hashed as it streams, and one that does not
  /// match fails the transfer with Errc::checksum_mismatch before the sink finishes (a file sink
  /// then leaves no file). Empty: none. A malformed value is an error from get().
  std::string checksum;
  /// Segmented download: when the final response is at least min_split_size bytes long, the
  /// server accepts byte ranges (Accept-Ranges: bytes, or a 206 to a resume) and the sink is a
  /// file sink, the body comes over `split` connections at once: the response already streaming
  /// keeps the first segment, Range requests fetch the others into the preallocated .part at
  /// their offsets, and a segment that fails is retried alone (ClientOptions::retries). With
  /// FileSinkOptions::resume the sidecar lists finished segments, so a later run fetches only
  /// the rest. 0 or 1: one stream. Not with a checksum (the digest needs the bytes in order);
  /// Callbacks::on_data then sees only the first segment's bytes.
  int split = 1;
  std::uint64_t min_split_size = 20 * 1024 * 1024;
  /// When a connection of a segmented download is free and nothing is left to start, it takes
  /// the second half of the part still coming that would take longest at its recent pace, if
  /// that is over this many milliseconds and 512 KiB or more (a slow server or mirror then no
  /// longer holds the file back; parts are looked at again while connections stay free); the
  /// part is cut where the taken half begins. 0: never.
  std::uint64_t split_steal_ms = 500;
  /// Other URLs of the same file, for a segmented download: its Range requests go to the URL
  /// and these in turn. A segment that fails on one (its retries spent) is asked again of
  /// another, from the first byte it lacks, and the one that failed gets no more segments; the
  /// download fails only when every URL has. A mirror's answer must be a 206 of the same total
  /// size (its validator would differ from the first server's, so it is sent no If-Range), and
  /// credentials (Authorization, Cookie, Proxy-Authorization) go only to the URL's own origin.
  /// Unused when the body comes in one stream.
  std::vector<std::string> mirrors;
  /// The largest body accepted, in bytes (decoded ones with decompress, a resumed file's whole
  /// length): a Content-Length over it fails with Errc::body_too_large before a byte is written,
  /// and a body without one fails as it passes it. Not retried; the sink keeps nothing
  /// (a file sink leaves no file). 0: no limit.
  std::uint64_t max_body_bytes = 0;
  /// Ask for a compressed body (Accept-Encoding: gzip, deflate, br, zstd, unless the request or
  /// the client already sends an Accept-Encoding of its own) and undo the Content-Encoding
  /// while it streams: the sink, Callbacks::on_data, the checksum and TransferResult::bytes all
  /// see the decoded bytes, and the sink's head carries no Content-Length (the encoded one says
  /// nothing of the decoded size). A coding that cannot be undone, or a corrupt body, is
  /// Errc::bad_encoding; an encoded body that stops before its end is Errc::size_mismatch
  /// (retried). An encoded body is never split, and a retry fetches it again from the start.
  /// Off: the body is kept as it came, whatever its Content-Encoding.
  bool decompress = false;
  /// Whole-transfer deadline from get(), queueing and redirects included; 0: the client's
  /// ClientOptions::timeout_ms.
  std::uint64_t timeout_ms = 0;
};

struct TransferResult {
  std::string url;        // as requested
  std::string final_url;  // after redirects
  int status = 0;         // of the final response; 0 when none arrived
  /// Body bytes of the final response received in this transfer (decoded ones with
  /// Request::decompress).
  std::uint64_t bytes = 0;
  /// Bytes the sink already held that the final response continued (Range): the body is
  /// resumed_from + bytes long. 0: received whole.
  std::uint64_t resumed_from = 0;
  int attempts = 0;  // requests sent for the final URL, retries included
  int redirects = 0;
  bool reused_connection = false;  // the final response came over a kept-alive connection
  /// The connection limit of the URL's host after an answer to this transfer last changed it
  /// (ClientOptions::max_per_host adapts: lowered by 429/503 answers, raised by the rest);
  /// 0: no answer to it changed the limit.
  int host_limit = 0;
  /// The final response's ETag and Last-Modified as sent ("" when it had none), for a later
  /// conditional request (If-None-Match, If-Modified-Since).
  std::string etag;
  std::string last_modified;
  double seconds = 0;       // from get() to done
  double ttfb_seconds = 0;  // from get() to the first byte of the final response
  std::string path;         // on success, where the sink put the body (Sink::location)
  Error error;              // empty on success
  bool ok() const noexcept { return !error; }
};

struct Callbacks {
  std::function<void(const Response&)> on_head{};             // final response only
  std::function<void(std::span<const std::byte>)> on_data{};  // valid during the call only
  std::function<void(const TransferResult&)> on_done{};       // exactly once, last
  /// The transfer failed with `why` and will try again (`attempt`, 2 or more) after `delay_ms`.
  /// on_head and on_data then start over with the new response.
  std::function<void(const Error& why, int attempt, std::uint64_t delay_ms)> on_retry{};
};

enum class TransferId : std::uint64_t {};

}  // namespace uvget
