// TestCerts: a test CA and server certificates (valid, expired, not yet valid, wrong name,
// self-signed, unrelated CA) generated at test time with the openssl CLI into a temp directory.
#pragma once

#include <string>

namespace uvget::test {

// All files are PEM, EC P-256 keys (PKCS#8), SHA-256 signatures. Leaves have
// basicConstraints=CA:FALSE, keyUsage=digitalSignature,keyEncipherment, extendedKeyUsage=serverAuth
// and CN=localhost (the wrong-name leaf: CN=other.example). Note: mbedTLS 2.28 matches a host name
// against DNS SANs (and the CN) only, never IP SANs: its clients verify these leaves as
// "localhost".
struct TestCerts {
  TestCerts();   // generates everything; throws std::runtime_error (with openssl's stderr)
  ~TestCerts();  // removes `dir`
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  std::string dir;  // the temp directory holding every file below (absolute paths)

  // CA:TRUE (critical), keyUsage keyCertSign+cRLSign; valid from 30 days ago for 10 years.
  std::string ca_cert, ca_key;
  // Signed by the CA; SAN DNS:localhost, IP:127.0.0.1, IP:::1; valid from 1 day ago for 1 year.
  std::string good_cert, good_key;
  // Signed by the CA, same SANs; valid from 30 days ago until 2 days ago.
  std::string expired_cert, expired_key;
  // Signed by the CA, same SANs; valid from 1 year from now, for 1 year.
  std::string future_cert, future_key;
  // Signed by the CA; SAN DNS:other.example only; valid now.
  std::string wrong_name_cert, wrong_name_key;
  // Self-signed (not from the CA), CA:FALSE, same SANs as the good leaf; valid now.
  std::string self_signed_cert, self_signed_key;
  // An unrelated CA ("uvget other CA"), e.g. as a wrong trust anchor.
  std::string other_ca_cert;
};

// One TestCerts per process, made on first use (thread-safe); removed at exit.
const TestCerts& shared_test_certs();

}  // namespace uvget::test
