#include "support/compress.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <stdexcept>

namespace uvget::test {
namespace {

std::string zlib_encode(std::string_view data, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(z.total_out);
  return out;
}

}  // namespace

std::string gzip(std::string_view data) {
  return zlib_encode(data, 16 + MAX_WBITS);
}

std::string deflate(std::string_view data, bool raw) {
  return zlib_encode(data, raw ? -MAX_WBITS : MAX_WBITS);
}

std::string brotli(std::string_view data) {
  std::size_t size = BrotliEncoderMaxCompressedSize(data.size());
  std::string out(size ? size : 16, '\0');
  size = out.size();
  if (!BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                             reinterpret_cast<const std::uint8_t*>(data.data()), &size,
                             reinterpret_cast<std::uint8_t*>(out.data())))
    throw std::runtime_error("BrotliEncoderCompress");
  out.resize(size);
  return out;
}

std::string zstd(std::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  if (ZSTD_isError(n)) throw std::runtime_error("ZSTD_compress");
  out.resize(n);
  return out;
}

std::string encode(std::string_view coding, std::string_view data) {
  if (coding == "gzip") return gzip(data);
  if (coding == "deflate") return deflate(data);
  if (coding == "br") return brotli(data);
  if (coding == "zstd") return zstd(data);
  throw std::invalid_argument("unknown coding");
}

}  // namespace uvget::test
