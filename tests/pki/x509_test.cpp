#include "acmetool/pki/x509.h"

#include <catch2/catch.hpp>

#include "acmetool/pki/ca.h"
#include "acmetool/pki/csr.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "process.h"

namespace pki = acmetool::pki;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using namespace std::chrono_literals;

namespace {

// A CA in a temp storage, for certificates to look at.
struct TestCa {
  TempDir dir;
  pki::FileStorage storage{dir.path()};
  pki::LocalCa ca = pki::LocalCa::open(storage, {});
};

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const auto path = dir.path() / name;
  pki::write_file_atomic(path, bytes, 0600);
  return path.string();
}

}  // namespace

TEST_CASE("a CSR carries DNS and IP names and verifies with openssl", "[pki][csr]") {
  const pki::PkeyPtr key = pki::generate_key(pki::KeyType::P256);
  const std::string der = pki::create_csr_der(*key, {{"example.com", "*.example.com", "192.0.2.7", "2001:db8::1"}});
  CHECK(pki::csr_names(der) == std::vector<std::string>{"example.com", "*.example.com", "192.0.2.7", "2001:db8::1"});

  TempDir dir;
  const auto r = run_command({"openssl", "req", "-inform", "DER", "-in", write(dir, "csr.der", der), "-noout",
                              "-verify", "-text"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("verify OK") != std::string::npos);
  CHECK(r.out.find("DNS:example.com, DNS:*.example.com, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1") !=
        std::string::npos);
  CHECK(r.out.find("TLS Feature") == std::string::npos);
}

TEST_CASE("a must-staple CSR asks for the TLS Feature status_request", "[pki][csr]") {
  const pki::PkeyPtr key = pki::generate_key(pki::KeyType::Ed25519);
  const std::string der = pki::create_csr_der(*key, {{"example.org"}, true});
  TempDir dir;
  const auto r = run_command({"openssl", "req", "-inform", "DER", "-in", write(dir, "csr.der", der), "-noout", "-text"});
  CHECK(r.out.find("TLS Feature") != std::string::npos);
  CHECK(r.out.find("status_request") != std::string::npos);
}

TEST_CASE("a CSR needs at least one name", "[pki][csr]") {
  const pki::PkeyPtr key = pki::generate_key(pki::KeyType::P256);
  CHECK_THROWS_AS(pki::create_csr_der(*key, {}), pki::Error);
}

TEST_CASE("describe_certificate reads names, validity, serial and fingerprint", "[pki][x509]") {
  TestCa t;
  const pki::IssuedLeaf leaf = t.ca.issue({{"localhost", "127.0.0.1", "::1"}, 2h});
  const pki::CertificateInfo info = pki::describe_certificate(*leaf.chain.front());
  CHECK(info.subject_cn == "localhost");
  CHECK(info.issuer_cn == "acmetool Local Authority - ECC Intermediate");
  CHECK(info.dns_names == std::vector<std::string>{"localhost"});
  CHECK(info.ip_addresses == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(info.not_after - info.not_before == 2h);
  CHECK_FALSE(info.is_ca);
  CHECK(info.key_type == "p256");
  CHECK(info.serial_hex.size() == 32);
  REQUIRE(info.sha256_fingerprint.size() == 64);

  TempDir dir;
  const auto r = run_command({"openssl", "x509", "-in", write(dir, "leaf.pem", pki::certificate_to_pem(*leaf.chain.front())),
                              "-noout", "-fingerprint", "-sha256", "-serial"});
  std::string expected_fp;
  for (size_t i = 0; i < 64; i += 2) expected_fp += (i ? ":" : "") + info.sha256_fingerprint.substr(i, 2);
  std::string upper = expected_fp;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(r.out.find(upper) != std::string::npos);
}

TEST_CASE("PEM bundles read back in order and damaged ones are refused", "[pki][x509]") {
  TestCa t;
  const pki::IssuedLeaf leaf = t.ca.issue({{"a.internal"}});
  const std::string bundle = pki::chain_to_pem(leaf.chain);
  const pki::CertificateChain back = pki::certificates_from_pem(bundle, "bundle");
  REQUIRE(back.size() == 2);
  CHECK(pki::describe_certificate(*back[0]).subject_cn == "a.internal");
  CHECK(pki::describe_certificate(*back[1]).is_ca);

  CHECK_THROWS_WITH(pki::certificates_from_pem("", "reading x.crt"), Catch::StartsWith("reading x.crt: not a PEM"));
  std::string damaged = bundle;
  damaged[100] = '!';
  CHECK_THROWS_AS(pki::certificates_from_pem(damaged, "damaged"), pki::CryptoError);
}

TEST_CASE("chain verification checks the root, the intermediate and the time", "[pki][x509]") {
  TestCa t;
  const pki::IssuedLeaf leaf = t.ca.issue({{"svc.internal"}, 1h});
  pki::CertificateChain intermediates, roots, wrong_roots;
  intermediates.push_back(pki::share_certificate(t.ca.intermediate()));
  roots.push_back(pki::share_certificate(t.ca.root()));
  TestCa other;
  wrong_roots.push_back(pki::share_certificate(other.ca.root()));
  const auto now = std::chrono::system_clock::now();

  CHECK(pki::verify_chain(*leaf.chain.front(), intermediates, roots, now) == std::nullopt);
  CHECK(pki::verify_chain(*leaf.chain.front(), intermediates, wrong_roots, now).has_value());
  CHECK(pki::verify_chain(*leaf.chain.front(), {}, roots, now).has_value());
  CHECK(pki::verify_chain(*leaf.chain.front(), intermediates, roots, now + 2h) == "certificate has expired");
}

TEST_CASE("a PKCS#12 export holds the root as a trusted certificate Java can read", "[pki][x509]") {
  TestCa t;
  pki::CertificateChain roots;
  roots.push_back(pki::share_certificate(t.ca.root()));
  TempDir dir;
  const std::string file = write(dir, "root.p12", pki::certificates_to_pkcs12(roots, "acmetool local root", "changeit"));
  auto r = run_command({"openssl", "pkcs12", "-in", file, "-passin", "pass:changeit", "-nokeys", "-info"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("subject=CN = acmetool Local Authority - ") != std::string::npos);
  CHECK(r.out.find("friendlyName: acmetool local root") != std::string::npos);
  r = run_command({"openssl", "pkcs12", "-in", file, "-passin", "pass:wrong", "-nokeys"});
  CHECK(r.exit_code != 0);
  if (run_command({"sh", "-c", "command -v keytool"}).exit_code == 0) {
    r = run_command({"keytool", "-list", "-keystore", file, "-storepass", "changeit", "-storetype", "PKCS12"});
    CHECK(r.out.find("Your keystore contains 1 entry") != std::string::npos);
    CHECK(r.out.find("trustedCertEntry") != std::string::npos);
  }
}
