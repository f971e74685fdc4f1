// The floor of a new HTTPS host: what a client's full TLS 1.2 handshake costs in mbedTLS's
// public-key arithmetic. One ECDHE as a client does it (a fresh key pair, then the shared
// secret with the server's point), per group, and one ECDSA P-256 verification (the
// ServerKeyExchange signature; a leaf not found in the verified-chain cache costs another).
// Compare with the crawl's CPU per file in bench/RESULTS.md.
#include <benchmark/benchmark.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>

namespace {

struct Rng {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  Rng() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, nullptr, 0);
  }
  ~Rng() {
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
};

void client_ecdhe(benchmark::State& state, mbedtls_ecp_group_id id) {
  Rng rng;
  mbedtls_ecp_group server_group;
  mbedtls_ecp_group_init(&server_group);
  mbedtls_ecp_group_load(&server_group, id);
  mbedtls_mpi server_d;
  mbedtls_ecp_point server_q;
  mbedtls_mpi_init(&server_d);
  mbedtls_ecp_point_init(&server_q);
  mbedtls_ecdh_gen_public(&server_group, &server_d, &server_q, mbedtls_ctr_drbg_random, &rng.drbg);
  for (auto _ : state) {
    // As in a handshake: the group is loaded for it, and gone with it.
    mbedtls_ecp_group g;
    mbedtls_ecp_group_init(&g);
    mbedtls_ecp_group_load(&g, id);
    mbedtls_mpi d, z;
    mbedtls_ecp_point q;
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point_init(&q);
    int rc = mbedtls_ecdh_gen_public(&g, &d, &q, mbedtls_ctr_drbg_random, &rng.drbg);
    rc |= mbedtls_ecdh_compute_shared(&g, &z, &server_q, &d, mbedtls_ctr_drbg_random, &rng.drbg);
    benchmark::DoNotOptimize(rc);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&g);
  }
  mbedtls_mpi_free(&server_d);
  mbedtls_ecp_point_free(&server_q);
  mbedtls_ecp_group_free(&server_group);
}

void BM_ClientEcdheX25519(benchmark::State& state) {
  client_ecdhe(state, MBEDTLS_ECP_DP_CURVE25519);
}
void BM_ClientEcdheP256(benchmark::State& state) {
  client_ecdhe(state, MBEDTLS_ECP_DP_SECP256R1);
}
void BM_ClientEcdheP384(benchmark::State& state) {
  client_ecdhe(state, MBEDTLS_ECP_DP_SECP384R1);
}

void BM_EcdsaP256Verify(benchmark::State& state) {
  Rng rng;
  mbedtls_ecdsa_context key;
  mbedtls_ecdsa_init(&key);
  mbedtls_ecdsa_genkey(&key, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &rng.drbg);
  unsigned char hash[32] = {9}, sig[MBEDTLS_ECDSA_MAX_LEN];
  std::size_t sig_len = 0;
  mbedtls_ecdsa_write_signature(&key, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &sig_len,
                                mbedtls_ctr_drbg_random, &rng.drbg);
  for (auto _ : state) {
    int rc = mbedtls_ecdsa_read_signature(&key, hash, sizeof hash, sig, sig_len);
    benchmark::DoNotOptimize(rc);
  }
  mbedtls_ecdsa_free(&key);
}

}  // namespace

BENCHMARK(BM_ClientEcdheX25519)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClientEcdheP256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClientEcdheP384)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EcdsaP256Verify)->Unit(benchmark::kMillisecond);
