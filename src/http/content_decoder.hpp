// ContentDecoder: undoes a response's Content-Encoding (gzip, deflate, br, zstd, or a list of
// them) while the body streams. Pull-shaped and I/O-free: the caller hands in encoded bytes and
// a buffer, and takes out at most a buffer's worth at a time, so a body that expands a
// thousandfold never grows memory past that buffer (the caller stops pulling when its sink is
// full and keeps the rest of the input).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <uvget/error.hpp>

namespace uvget {

class ContentDecoder {
 public:
  virtual ~ContentDecoder() = default;
  /// Decodes from the front of `in` (advancing it past what was consumed) into `out`, and
  /// returns how many bytes of `out` were filled. More output may be waiting inside when `out`
  /// came back full: call again, with or without more input. Corrupt input is
  /// Errc::bad_encoding; bytes after the end of the encoded stream are an error too.
  virtual Result<std::size_t> decode(std::span<const std::byte>& in, std::span<std::byte> out) = 0;
  /// The encoded stream reached its end (every coding of a list). A body that stops before is
  /// truncated.
  virtual bool finished() const = 0;
  /// The coding's name, for messages ("gzip", "br", "gzip, br", ...).
  virtual std::string name() const = 0;
};

/// The decoder for a Content-Encoding value (RFC 9110 8.4: codings in the order applied; they
/// are undone in reverse). nullptr when there is nothing to undo (absent, empty, "identity").
/// Errc::bad_encoding for a coding this build cannot undo, or more than three of them.
Result<std::unique_ptr<ContentDecoder>> make_content_decoder(std::string_view content_encoding);

/// The Content-Encoding value names a coding other than identity (the body is not as stored).
bool is_encoded(std::string_view content_encoding);

/// The Accept-Encoding value that lists every coding make_content_decoder() undoes.
std::string_view accepted_encodings() noexcept;

}  // namespace uvget
