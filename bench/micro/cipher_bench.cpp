// The ceiling of HTTPS bulk downloads: mbedTLS's AEAD ciphers on 16 KiB records (one TLS record),
// decrypting as a client does. Compare with the HTTPS large-file figure in bench/RESULTS.md.
#include <benchmark/benchmark.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

#include <vector>

namespace {

constexpr std::size_t kRecord = 16 * 1024;

void aes_gcm_decrypt(benchmark::State& state, unsigned key_bits) {
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  unsigned char key[32] = {1}, iv[12] = {2}, tag[16];
  mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, key_bits);
  std::vector<unsigned char> in(kRecord, 7), out(kRecord);
  mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, kRecord, iv, sizeof iv, nullptr, 0,
                            in.data(), out.data(), sizeof tag, tag);
  for (auto _ : state) {
    int rc = mbedtls_gcm_auth_decrypt(&gcm, kRecord, iv, sizeof iv, nullptr, 0, tag, sizeof tag,
                                      out.data(), in.data());
    benchmark::DoNotOptimize(rc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord));
  mbedtls_gcm_free(&gcm);
}

void BM_Aes128GcmDecrypt16K(benchmark::State& state) {
  aes_gcm_decrypt(state, 128);
}
void BM_Aes256GcmDecrypt16K(benchmark::State& state) {
  aes_gcm_decrypt(state, 256);
}

void BM_ChaCha20Poly1305Decrypt16K(benchmark::State& state) {
  mbedtls_chachapoly_context cp;
  mbedtls_chachapoly_init(&cp);
  unsigned char key[32] = {1}, nonce[12] = {2}, tag[16];
  mbedtls_chachapoly_setkey(&cp, key);
  std::vector<unsigned char> in(kRecord, 7), out(kRecord);
  mbedtls_chachapoly_encrypt_and_tag(&cp, kRecord, nonce, nullptr, 0, in.data(), out.data(), tag);
  for (auto _ : state) {
    int rc = mbedtls_chachapoly_auth_decrypt(&cp, kRecord, nonce, nullptr, 0, tag, out.data(),
                                             in.data());
    benchmark::DoNotOptimize(rc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord));
  mbedtls_chachapoly_free(&cp);
}

BENCHMARK(BM_Aes128GcmDecrypt16K);
BENCHMARK(BM_Aes256GcmDecrypt16K);
BENCHMARK(BM_ChaCha20Poly1305Decrypt16K);

}  // namespace
