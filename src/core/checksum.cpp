// BodyHash: parse the expected digest, hash the body as it streams, compare at the end.
#include "core/checksum.hpp"

#include <cctype>

namespace uvget {
namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

Result<std::unique_ptr<BodyHash>> BodyHash::parse(std::string_view spec) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::bad_request, "bad checksum '" + std::string(spec) + "': " + why);
  };
  auto eq = spec.find('=');
  if (eq == std::string_view::npos) return bad("expected ALGORITHM=HEX, e.g. sha-256=...");
  std::string algo;
  for (char c : spec.substr(0, eq))
    if (c != '-') algo.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  mbedtls_md_type_t type;
  std::string name;
  if (algo == "sha256") {
    type = MBEDTLS_MD_SHA256;
    name = "sha-256";
  } else if (algo == "sha1") {
    type = MBEDTLS_MD_SHA1;
    name = "sha-1";
  } else if (algo == "md5") {
    type = MBEDTLS_MD_MD5;
    name = "md5";
  } else {
    return bad("unknown algorithm (sha-256, sha-1 or md5)");
  }
  const mbedtls_md_info_t* info = mbedtls_md_info_from_type(type);
  if (!info) return bad(name + " is not available in this mbedTLS");
  std::string_view digits = spec.substr(eq + 1);
  std::size_t size = mbedtls_md_get_size(info);
  if (digits.size() != size * 2)
    return bad(name + " needs " + std::to_string(size * 2) + " hex digits");
  std::unique_ptr<BodyHash> h(new BodyHash);
  for (std::size_t i = 0; i < size; ++i) {
    int hi = nibble(digits[2 * i]), lo = nibble(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad("not hexadecimal");
    h->expected_.push_back(static_cast<char>(hi * 16 + lo));
  }
  h->name_ = name;
  mbedtls_md_init(&h->ctx_);
  if (mbedtls_md_setup(&h->ctx_, info, 0) != 0) return bad("cannot set up " + name);
  h->ready_ = true;
  h->restart();
  return h;
}

BodyHash::~BodyHash() {
  mbedtls_md_free(&ctx_);
}

void BodyHash::restart() {
  mbedtls_md_starts(&ctx_);
  bytes_ = 0;
}

void BodyHash::update(std::span<const std::byte> bytes) {
  bytes_ += bytes.size();
  mbedtls_md_update(&ctx_, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

Error BodyHash::verify() {
  unsigned char got[MBEDTLS_MD_MAX_SIZE];
  mbedtls_md_finish(&ctx_, got);
  if (expected_.compare(0, expected_.size(), reinterpret_cast<const char*>(got),
                        expected_.size()) == 0)
    return {};
  return Error(Errc::checksum_mismatch,
               name_ + " mismatch: expected " +
                   hex(reinterpret_cast<const unsigned char*>(expected_.data()), expected_.size()) +
                   ", got " + hex(got, expected_.size()));
}

}  // namespace uvget
