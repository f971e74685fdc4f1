// Encoders for tests: bodies in each Content-Encoding the client decodes, made with the same
// Debian libraries (zlib, brotli, zstd) from their encoding side.
#pragma once

#include <string>
#include <string_view>

namespace uvget::test {

std::string gzip(std::string_view data);
/// deflate as RFC 9110 means it (the zlib format), or raw deflate as some servers send it.
std::string deflate(std::string_view data, bool raw = false);
std::string brotli(std::string_view data);
std::string zstd(std::string_view data);
/// `coding` is one of gzip, deflate, br, zstd.
std::string encode(std::string_view coding, std::string_view data);

}  // namespace uvget::test
