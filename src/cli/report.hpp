// What the command line reports: JSON records, human-readable sizes and rates, and the shard
// hash. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <uvget/request.hpp>

namespace uvget::cli {

/// A JSON string literal (with quotes) for any bytes: invalid UTF-8 becomes U+FFFD.
std::string json_string(std::string_view s);
/// The same, appended to `out`.
void append_json_string(std::string& out, std::string_view s);
/// One line: {"url":..,"final_url":..,"path":..,"status":..,"bytes":..,"seconds":..,
/// "attempts":..,"redirects":..,"error":null|".."}. `path` null when empty.
/// `text` with the password of every URL in it masked: "http://alice:secret@host/" becomes
/// "http://alice:***@host/" (a user name alone stays). Everything uvget prints or records about
/// a URL goes through this.
std::string mask_credentials(std::string_view text);
/// The stable word for an error in records: dns, dns_temporary, connect, connect_timeout,
/// tls, tls_verify, connection, idle_timeout, timeout, too_slow, http_protocol, http_status,
/// redirect, size_mismatch, too_large, checksum, file, bad_url, bad_request, cancelled (see
/// docs/uvget.1). The command line adds not_started.
std::string_view error_kind(const Error& e);
/// A record for a URL that was accepted but never started (the run was interrupted).
std::string json_not_started(std::string_view url, std::uint64_t line);
std::string json_error(std::string_view kind, std::string_view message);
/// `skipped`: --skip-done found it done in an earlier run's records; no request was made.
std::string json_record(const TransferResult& r, std::string_view path, bool skipped = false);
/// The same, appended to `out` (one buffer reused for every record).
void append_json_record(std::string& out, const TransferResult& r, std::string_view path,
                        bool skipped = false);

/// "1.5 MB", "820 kB", "12 B" (powers of 1000).
std::string human_bytes(double n);
/// The status line's fields joined by ", " within `width` columns: fields are dropped from the
/// middle (connections first, then bytes, rate and ETA) before the line is cut, so the counts
/// of files and errors stay.
std::string fit_status(const std::vector<std::string>& fields, std::size_t width);
/// "1 file", "2 files", "0 errors": a count and its noun, singular for exactly one.
std::string count_of(std::uint64_t n, std::string_view noun);
/// "1:05", "2:03:04"; "--:--" when unknown.
std::string human_duration(double seconds);

struct Shard {
  std::uint64_t index = 0;  // 0 <= index < count
  std::uint64_t count = 1;
};
/// "K/N" with 0 <= K < N; nullopt when malformed.
std::optional<Shard> parse_shard(std::string_view spec);
/// Whether `url` (as written in the list) belongs to `shard`: FNV-1a 64 of the text, mod N.
/// The same on every machine, so N runs with K = 0..N-1 cover a list exactly once.
bool in_shard(std::string_view url, const Shard& shard);

}  // namespace uvget::cli
