#include "acmetool/pki/ca.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "process.h"

namespace fs = std::filesystem;
namespace pki = acmetool::pki;
using acmetool::test::read_text;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

// A CA whose clock the test moves.
struct ClockedCa {
  TempDir dir;
  pki::FileStorage storage{dir.path()};
  system_clock::time_point now = std::chrono::floor<std::chrono::seconds>(system_clock::now());

  pki::CaOptions options() {
    pki::CaOptions o;
    o.clock = [this] { return now; };
    return o;
  }
  fs::path file(const char* name) const { return dir.path() / "pki/authorities/local" / name; }
};

pki::CertificateChain one(const X509& cert) {
  pki::CertificateChain chain;
  chain.push_back(pki::share_certificate(cert));
  return chain;
}

std::string fingerprint(const X509& cert) { return pki::describe_certificate(cert).sha256_fingerprint; }

}  // namespace

TEST_CASE("opening a CA creates a 10-year root and a 7-day intermediate with private files", "[pki][ca]") {
  ClockedCa t;
  bool created = false;
  const pki::LocalCa ca = pki::LocalCa::open(t.storage, t.options(), &created);
  CHECK(created);

  const pki::CertificateInfo root = pki::describe_certificate(ca.root());
  CHECK(root.subject_cn.starts_with("acmetool Local Authority - "));
  CHECK(root.subject_cn.ends_with(" ECC Root"));
  CHECK(root.is_ca);
  CHECK(root.key_type == "p256");
  CHECK(root.not_before == t.now);
  CHECK(root.not_after - root.not_before == std::chrono::hours(24 * 3600));

  const pki::CertificateInfo intermediate = pki::describe_certificate(ca.intermediate());
  CHECK(intermediate.subject_cn == "acmetool Local Authority - ECC Intermediate");
  CHECK(intermediate.issuer_cn == root.subject_cn);
  CHECK(intermediate.not_after - intermediate.not_before == std::chrono::hours(24 * 7));

  for (const char* name : {"root.crt", "root.key", "intermediate.crt", "intermediate.key"}) {
    struct stat st {};
    REQUIRE(::stat(t.file(name).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  // Path lengths: the root may sign one level of CA, the intermediate none.
  const auto text = run_command({"openssl", "x509", "-in", t.file("root.crt").string(), "-noout", "-text"}).out;
  CHECK(text.find("CA:TRUE, pathlen:1") != std::string::npos);
  const auto itext = run_command({"openssl", "x509", "-in", t.file("intermediate.crt").string(), "-noout", "-text"}).out;
  CHECK(itext.find("CA:TRUE, pathlen:0") != std::string::npos);
}

TEST_CASE("opening an existing CA never replaces its root", "[pki][ca]") {
  ClockedCa t;
  CHECK_FALSE(fs::exists(t.file("root.crt")));
  const pki::LocalCa first = pki::LocalCa::open(t.storage, t.options());
  const std::string root_pem = read_text(t.file("root.crt"));
  const std::string root_key = read_text(t.file("root.key"));
  bool created = true;
  const pki::LocalCa second = pki::LocalCa::open(t.storage, t.options(), &created);
  CHECK_FALSE(created);
  CHECK(read_text(t.file("root.crt")) == root_pem);
  CHECK(read_text(t.file("root.key")) == root_key);
  CHECK(fingerprint(second.root()) == fingerprint(first.root()));
}

TEST_CASE("a leaf verifies with openssl verify against the root through the intermediate", "[pki][ca]") {
  ClockedCa t;
  pki::CaOptions options;  // the real clock: openssl checks against it
  const pki::LocalCa ca = pki::LocalCa::open(t.storage, options);
  const pki::IssuedLeaf leaf = ca.issue({{"localhost", "127.0.0.1"}});
  pki::write_file_atomic(t.dir.path() / "leaf.pem", pki::certificate_to_pem(*leaf.chain.front()));
  const auto r = run_command({"openssl", "verify", "-CAfile", t.file("root.crt").string(), "-untrusted",
                              t.file("intermediate.crt").string(), "-purpose", "sslserver",
                              (t.dir.path() / "leaf.pem").string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find(": OK") != std::string::npos);

  const pki::CertificateInfo info = pki::describe_certificate(*leaf.chain.front());
  CHECK(info.not_after - info.not_before == 12h);
  CHECK(fingerprint(*leaf.chain[1]) == fingerprint(ca.intermediate()));
}

TEST_CASE("a leaf never outlives the intermediate that signed it", "[pki][ca]") {
  ClockedCa t;
  const pki::LocalCa ca = pki::LocalCa::open(t.storage, t.options());
  const pki::IssuedLeaf leaf = ca.issue({{"long.internal"}, std::chrono::hours(24 * 30)});
  CHECK(pki::describe_certificate(*leaf.chain.front()).not_after ==
        pki::describe_certificate(ca.intermediate()).not_after);
}

TEST_CASE("the intermediate rotates once less than 20 % of its life is left, and old leaves still verify",
          "[pki][ca]") {
  ClockedCa t;
  const pki::LocalCa first = pki::LocalCa::open(t.storage, t.options());
  const pki::IssuedLeaf old_leaf = first.issue({{"app.internal"}});
  const std::string old_intermediate = fingerprint(first.intermediate());
  const pki::CertificateChain old_chain_intermediate = one(*old_leaf.chain[1]);

  t.now += std::chrono::hours(24 * 5);  // 2 of 7 days left: 28 %, not due yet
  CHECK(fingerprint(pki::LocalCa::load(t.storage, t.options())->intermediate()) == old_intermediate);

  t.now += std::chrono::hours(12);  // 1.5 of 7 days left: 21 %
  CHECK(fingerprint(pki::LocalCa::load(t.storage, t.options())->intermediate()) == old_intermediate);

  t.now += std::chrono::hours(12);  // 1 of 7 days left: 14 %, due
  const auto rotated = pki::LocalCa::load(t.storage, t.options());
  REQUIRE(rotated.has_value());
  CHECK(fingerprint(rotated->intermediate()) != old_intermediate);
  CHECK(fingerprint(rotated->root()) == fingerprint(first.root()));
  CHECK(pki::describe_certificate(rotated->intermediate()).not_before == t.now);

  // The old leaf carries its own intermediate and verifies until it expires.
  const auto old_leaf_expiry = pki::describe_certificate(*old_leaf.chain.front()).not_after;
  CHECK(pki::verify_chain(*old_leaf.chain.front(), old_chain_intermediate, one(rotated->root()),
                          old_leaf_expiry - 1min) == std::nullopt);
  // New leaves come from the new intermediate and verify too.
  const pki::IssuedLeaf new_leaf = rotated->issue({{"app.internal"}});
  CHECK(fingerprint(*new_leaf.chain[1]) == fingerprint(rotated->intermediate()));
  CHECK(pki::verify_chain(*new_leaf.chain.front(), one(rotated->intermediate()), one(rotated->root()), t.now + 1h) ==
        std::nullopt);
}

TEST_CASE("rotating the root keeps the old one, whose leaves keep verifying against it", "[pki][ca]") {
  ClockedCa t;
  pki::LocalCa ca = pki::LocalCa::open(t.storage, t.options());
  const pki::IssuedLeaf old_leaf = ca.issue({{"db.internal"}});
  const pki::CertificateChain old_root = one(ca.root());
  const pki::CertificateChain old_intermediate = one(ca.intermediate());

  t.now += 1h;
  ca.rotate_root();
  CHECK(fingerprint(ca.root()) != fingerprint(*old_root.front()));
  const pki::CertificateChain previous = ca.previous_roots();
  REQUIRE(previous.size() == 1);
  CHECK(fingerprint(*previous.front()) == fingerprint(*old_root.front()));

  const pki::IssuedLeaf new_leaf = ca.issue({{"db.internal"}});
  CHECK(pki::verify_chain(*old_leaf.chain.front(), old_intermediate, old_root, t.now) == std::nullopt);
  CHECK(pki::verify_chain(*new_leaf.chain.front(), one(ca.intermediate()), one(ca.root()), t.now) == std::nullopt);
  CHECK(pki::verify_chain(*new_leaf.chain.front(), one(ca.intermediate()), old_root, t.now).has_value());
  // A reload sees the new root.
  CHECK(fingerprint(pki::LocalCa::load(t.storage, t.options())->root()) == fingerprint(ca.root()));
}

TEST_CASE("a damaged CA file is reported by path and never regenerated", "[pki][ca]") {
  ClockedCa t;
  pki::LocalCa::open(t.storage, t.options());
  const char* damaged = GENERATE("root.crt", "intermediate.crt", "intermediate.key");
  INFO(damaged);
  pki::write_file_atomic(t.file(damaged), "garbage\n");
  try {
    pki::LocalCa::open(t.storage, t.options());
    FAIL("no exception");
  } catch (const pki::Error& e) {
    CHECK(std::string(e.what()).find(t.file(damaged).string()) != std::string::npos);
  }
  CHECK(read_text(t.file(damaged)) == "garbage\n");
}

TEST_CASE("an intermediate key that does not match its certificate is refused", "[pki][ca]") {
  ClockedCa t;
  pki::LocalCa::open(t.storage, t.options());
  pki::write_file_atomic(t.file("intermediate.key"),
                         pki::private_key_to_pem(*pki::generate_key(pki::KeyType::P256)).str());
  CHECK_THROWS_WITH(pki::LocalCa::load(t.storage, t.options()),
                    Catch::Contains("intermediate.key: does not match intermediate.crt"));
}

TEST_CASE("load finds no CA in empty storage, and CAs are separate by name", "[pki][ca]") {
  ClockedCa t;
  CHECK_FALSE(pki::LocalCa::load(t.storage, t.options()).has_value());
  pki::CaOptions staging = t.options();
  staging.name = "staging";
  const pki::LocalCa a = pki::LocalCa::open(t.storage, t.options());
  const pki::LocalCa b = pki::LocalCa::open(t.storage, staging);
  CHECK(fingerprint(a.root()) != fingerprint(b.root()));
  CHECK(fs::exists(t.dir.path() / "pki/authorities/staging/root.crt"));
}
