// Content-Encoding decoders on zlib, brotli and zstd (Debian's zlib1g-dev, libbrotli-dev,
// libzstd-dev), and a chain of them for a list of codings.
#include "http/content_decoder.hpp"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <vector>

#include "http/request_writer.hpp"
#include "text.hpp"

namespace uvget {
namespace {

Error corrupt(std::string_view coding, std::string_view why) {
  return Error(Errc::bad_encoding,
               "the " + std::string(coding) + " body cannot be decoded: " + std::string(why));
}

Error trailing(std::string_view coding) {
  return corrupt(coding, "bytes follow the end of the compressed data");
}

// gzip (RFC 1952; members one after another are one body, as gunzip reads them) and
// deflate, which RFC 9110 defines as the zlib format (RFC 1950) but which some servers send
// as raw deflate (RFC 1951): the first two bytes tell which.
class ZlibDecoder final : public ContentDecoder {
 public:
  explicit ZlibDecoder(bool gzip) : gzip_(gzip) {}
  ~ZlibDecoder() override {
    if (ready_) inflateEnd(&z_);
  }

  Result<std::size_t> decode(std::span<const std::byte>& in, std::span<std::byte> out) override {
    if (!ready_) {
      if (Error e = start(in)) return e;
      if (!ready_) return std::size_t{0};  // deflate: the first two bytes are not all here
    }
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    Error error;
    // Whatever was held back while the zlib header was looked at goes in first.
    if (!prefix_.empty()) {
      z_.next_in = prefix_.data();
      z_.avail_in = static_cast<uInt>(prefix_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        return corrupt(name(), z_.msg ? z_.msg : "invalid data");
      if (rc == Z_STREAM_END) done_ = true;
      prefix_.erase(prefix_.begin(), prefix_.end() - z_.avail_in);
      if (!prefix_.empty()) return out.size() - z_.avail_out;  // `out` is full
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
      z_.avail_in = static_cast<uInt>(in.size());
    }
    while (z_.avail_out > 0) {
      if (done_) {
        if (z_.avail_in == 0) break;
        // Another gzip member follows; anything else after the end is an error.
        if (!gzip_ || *z_.next_in != 0x1f) {
          error = trailing(name());
          break;
        }
        inflateReset(&z_);
        done_ = false;
      }
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        done_ = true;
        continue;
      }
      if (rc == Z_BUF_ERROR) break;  // needs more input
      if (rc != Z_OK) {
        error = corrupt(name(), z_.msg ? z_.msg : "invalid data");
        break;
      }
      if (z_.avail_in == 0 && z_.avail_out > 0) break;
    }
    in = in.subspan(in.size() - z_.avail_in);
    if (error) return error;
    return out.size() - z_.avail_out;
  }

  bool finished() const override { return done_; }
  std::string name() const override { return gzip_ ? "gzip" : "deflate"; }

 private:
  Error start(std::span<const std::byte>& in) {
    int bits = 16 + MAX_WBITS;  // gzip only
    if (!gzip_) {
      while (prefix_.size() < 2 && !in.empty()) {
        prefix_.push_back(static_cast<Bytef>(in.front()));
        in = in.subspan(1);
      }
      if (prefix_.size() < 2) return {};
      // A zlib header: compression method 8, and the two bytes a multiple of 31.
      bool zlib = (prefix_[0] & 0x0f) == 8 && ((prefix_[0] << 8) | prefix_[1]) % 31 == 0;
      bits = zlib ? MAX_WBITS : -MAX_WBITS;
    }
    if (inflateInit2(&z_, bits) != Z_OK) return corrupt(name(), "out of memory");
    ready_ = true;
    return {};
  }

  const bool gzip_;
  z_stream z_{};
  bool ready_ = false;
  bool done_ = false;
  std::vector<Bytef> prefix_;  // deflate: the first bytes, until the format is known
};

class BrotliDecoder final : public ContentDecoder {
 public:
  BrotliDecoder() : s_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override { BrotliDecoderDestroyInstance(s_); }

  Result<std::size_t> decode(std::span<const std::byte>& in, std::span<std::byte> out) override {
    if (!s_) return corrupt("br", "out of memory");
    if (done_) {
      if (!in.empty()) return trailing("br");
      return std::size_t{0};
    }
    std::size_t avail_in = in.size(), avail_out = out.size();
    auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
    auto* next_out = reinterpret_cast<std::uint8_t*>(out.data());
    BrotliDecoderResult r =
        BrotliDecoderDecompressStream(s_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    in = in.subspan(in.size() - avail_in);
    if (r == BROTLI_DECODER_RESULT_ERROR)
      return corrupt("br", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(s_)));
    if (r == BROTLI_DECODER_RESULT_SUCCESS) {
      done_ = true;
      if (!in.empty()) return trailing("br");
    }
    return out.size() - avail_out;
  }

  bool finished() const override { return done_; }
  std::string name() const override { return "br"; }

 private:
  BrotliDecoderState* s_;
  bool done_ = false;
};

// zstd (RFC 8878); frames one after another are one body. The window is capped at 8 MiB, as
// RFC 9659 asks of HTTP clients, so a frame cannot make us hold more.
class ZstdDecoder final : public ContentDecoder {
 public:
  ZstdDecoder() : d_(ZSTD_createDStream()) {
    if (d_) ZSTD_DCtx_setParameter(d_, ZSTD_d_windowLogMax, 23);
  }
  ~ZstdDecoder() override { ZSTD_freeDStream(d_); }

  Result<std::size_t> decode(std::span<const std::byte>& in, std::span<std::byte> out) override {
    if (!d_) return corrupt("zstd", "out of memory");
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    Error error;
    // A frame that ended is not asked again without input: that would start the next frame.
    if (frame_done_ && in.empty()) return std::size_t{0};
    while (ob.pos < ob.size) {
      std::size_t before_in = ib.pos, before_out = ob.pos;
      std::size_t r = ZSTD_decompressStream(d_, &ob, &ib);
      if (ZSTD_isError(r)) {
        error = corrupt("zstd", ZSTD_getErrorName(r));
        break;
      }
      frame_done_ = r == 0;
      if (ib.pos == ib.size) break;  // all in; a full `out` may have more waiting
      if (ib.pos == before_in && ob.pos == before_out) break;
    }
    in = in.subspan(ib.pos);
    if (error) return error;
    return ob.pos;
  }

  bool finished() const override { return frame_done_; }
  std::string name() const override { return "zstd"; }

 private:
  ZSTD_DStream* d_;
  bool frame_done_ = false;
};

// Codings applied in turn (Content-Encoding: a, b) are undone in reverse: stage 0 reads the
// body (b's decoder), each next stage reads the one before through a small buffer.
class ChainDecoder final : public ContentDecoder {
 public:
  ChainDecoder(std::vector<std::unique_ptr<ContentDecoder>> stages, std::string name)
      : stages_(std::move(stages)), bufs_(stages_.size() - 1), name_(std::move(name)) {
    for (Buffer& b : bufs_) b.bytes.resize(16 * 1024);
  }

  Result<std::size_t> decode(std::span<const std::byte>& in, std::span<std::byte> out) override {
    return pull(stages_.size() - 1, in, out);
  }

  bool finished() const override {
    for (const Buffer& b : bufs_)
      if (b.pos != b.len) return false;
    for (const auto& s : stages_)
      if (!s->finished()) return false;
    return true;
  }
  std::string name() const override { return name_; }

 private:
  struct Buffer {
    std::vector<std::byte> bytes;
    std::size_t pos = 0, len = 0;  // unread: [pos, len)
  };

  Result<std::size_t> pull(std::size_t k, std::span<const std::byte>& in,
                           std::span<std::byte> out) {
    if (k == 0) return stages_[0]->decode(in, out);
    Buffer& b = bufs_[k - 1];
    std::size_t produced = 0;
    while (produced < out.size()) {
      if (b.pos == b.len) {
        auto got = pull(k - 1, in, b.bytes);
        if (!got) return got;
        b.pos = 0;
        b.len = *got;
      }
      std::span<const std::byte> src(b.bytes.data() + b.pos, b.len - b.pos);
      auto made = stages_[k]->decode(src, out.subspan(produced));
      if (!made) return made;
      std::size_t used = (b.len - b.pos) - src.size();
      b.pos += used;
      produced += *made;
      if (used == 0 && *made == 0) break;  // needs more than the stages before have now
    }
    return produced;
  }

  std::vector<std::unique_ptr<ContentDecoder>> stages_;
  std::vector<Buffer> bufs_;
  std::string name_;
};

}  // namespace

bool is_encoded(std::string_view content_encoding) {
  for (std::string_view rest = content_encoding; !rest.empty();) {
    auto comma = rest.find(',');
    std::string_view coding = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (!coding.empty() && !iequals(coding, "identity")) return true;
  }
  return false;
}

Result<std::unique_ptr<ContentDecoder>> make_content_decoder(std::string_view content_encoding) {
  std::vector<std::unique_ptr<ContentDecoder>> stages;  // in the order they are undone
  std::string_view rest = content_encoding;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view coding = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (coding.empty() || iequals(coding, "identity")) continue;
    std::unique_ptr<ContentDecoder> d;
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip"))
      d = std::make_unique<ZlibDecoder>(true);
    else if (iequals(coding, "deflate"))
      d = std::make_unique<ZlibDecoder>(false);
    else if (iequals(coding, "br"))
      d = std::make_unique<BrotliDecoder>();
    else if (iequals(coding, "zstd"))
      d = std::make_unique<ZstdDecoder>();
    else
      return Error(Errc::bad_encoding,
                   "the server sent Content-Encoding '" + std::string(coding) +
                       "', which cannot be decoded (gzip, deflate, br and zstd can)");
    stages.insert(stages.begin(), std::move(d));
    if (stages.size() > 3)
      return Error(Errc::bad_encoding, "more than three content codings in '" +
                                           std::string(trim(content_encoding)) + "'");
  }
  if (stages.empty()) return std::unique_ptr<ContentDecoder>();
  if (stages.size() == 1) return std::move(stages.front());
  return std::unique_ptr<ContentDecoder>(
      std::make_unique<ChainDecoder>(std::move(stages), std::string(trim(content_encoding))));
}

std::string_view accepted_encodings() noexcept {
  return "gzip, deflate, br, zstd";
}

}  // namespace uvget
