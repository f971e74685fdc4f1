// BodyHash: a response body's digest computed while it streams (mbedTLS), checked against the
// caller's "sha-256=HEX" (also sha-1, md5).
#pragma once

#include <mbedtls/md.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <uvget/error.hpp>

namespace uvget {

class BodyHash {
 public:
  /// "sha-256=HEX", "sha-1=HEX" or "md5=HEX" (algorithm names case-insensitive, also without the
  /// dash; HEX of the digest's length). Errc::bad_request otherwise.
  static Result<std::unique_ptr<BodyHash>> parse(std::string_view spec);
  ~BodyHash();
  BodyHash(const BodyHash&) = delete;
  BodyHash& operator=(const BodyHash&) = delete;

  /// A new body (the first, or a retry's).
  void restart();
  void update(std::span<const std::byte> bytes);
  /// Body bytes hashed since the last restart().
  std::uint64_t bytes() const noexcept { return bytes_; }
  /// Finishes the digest; an Errc::checksum_mismatch error naming both values, or none.
  Error verify();

 private:
  BodyHash() = default;
  mbedtls_md_context_t ctx_{};
  std::string name_;      // "sha-256"
  std::string expected_;  // raw digest bytes
  std::uint64_t bytes_ = 0;
  bool ready_ = false;
};

}  // namespace uvget
