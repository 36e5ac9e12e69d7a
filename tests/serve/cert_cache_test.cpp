#include "acmetool/serve/cert_cache.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "acmetool/pki/ca.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage.h"
#include "process.h"

namespace pki = acmetool::pki;
namespace serve = acmetool::serve;
using acmetool::test::TempDir;
using Origin = serve::CachedCertificate::Origin;
using CertPtr = std::shared_ptr<const serve::CachedCertificate>;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

// Real certificates from a local CA in a temp dir.
struct Issuer {
  TempDir dir;
  pki::FileStorage storage{dir.path()};
  pki::LocalCa ca = pki::LocalCa::open(storage, pki::CaOptions{});

  pki::IssuedLeaf leaf(std::vector<std::string> names, std::chrono::seconds lifetime = 12h) {
    pki::LeafRequest request;
    request.names = std::move(names);
    request.lifetime = lifetime;
    return ca.issue(request);
  }
  CertPtr cert(std::vector<std::string> names, Origin origin = Origin::Configured,
               std::chrono::seconds lifetime = 12h) {
    const pki::IssuedLeaf issued = leaf(std::move(names), lifetime);
    return serve::make_cached_certificate(pki::chain_to_pem(issued.chain), pki::private_key_to_pem(*issued.key).str(),
                                          "local", origin);
  }
};

system_clock::time_point now() { return system_clock::now(); }

}  // namespace

TEST_CASE("a cached certificate carries the leaf's names, validity, key and origin", "[serve][cache]") {
  Issuer issuer;
  const CertPtr cert = issuer.cert({"Example.COM", "*.example.com", "10.0.0.1"}, Origin::OnDemand, 2h);
  CHECK(cert->names == std::vector<std::string>{"example.com", "*.example.com", "10.0.0.1"});
  REQUIRE(cert->chain.size() == 2);
  CHECK(pki::describe_certificate(*cert->chain[1]).is_ca);
  CHECK(cert->not_after - cert->not_before == 2h);
  CHECK(cert->issuer_key == "local");
  CHECK(cert->ocsp_response.empty());
  CHECK(cert->origin == Origin::OnDemand);
  REQUIRE(cert->key);
  CHECK(pki::key_type_of(*cert->key) == pki::KeyType::P256);
}

TEST_CASE("lookup prefers the exact name, then the wildcard one label up", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr apex = issuer.cert({"example.com"});
  const CertPtr wildcard = issuer.cert({"*.example.com"});
  const CertPtr www = issuer.cert({"www.example.com"});
  cache.put(apex);
  cache.put(wildcard);
  cache.put(www);

  CHECK(cache.find("example.com", now()) == apex);
  CHECK(cache.find("www.example.com", now()) == www);
  CHECK(cache.find("api.example.com", now()) == wildcard);
  CHECK(cache.find("*.example.com", now()) == wildcard);
  CHECK(cache.find("example.org", now()) == nullptr);
  CHECK(cache.find("", now()) == nullptr);
  CHECK(cache.size() == 3);
}

TEST_CASE("a wildcard covers exactly one label", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr wildcard = issuer.cert({"*.example.com"});
  cache.put(wildcard);
  CHECK(cache.find("b.example.com", now()) == wildcard);
  CHECK(cache.find("a.b.example.com", now()) == nullptr);
  CHECK(cache.find_any("a.b.example.com") == nullptr);
  CHECK(cache.find("example.com", now()) == nullptr);

  const CertPtr deeper = issuer.cert({"*.b.example.com"});
  cache.put(deeper);
  CHECK(cache.find("a.b.example.com", now()) == deeper);
  CHECK(cache.find("x.a.b.example.com", now()) == nullptr);

  // A single label has no wildcard: "localhost" must not match "*.localhost"
  // nor anything else.
  cache.put(issuer.cert({"*.localhost"}));
  CHECK(cache.find("localhost", now()) == nullptr);
  CHECK(cache.find("app.localhost", now()) != nullptr);
}

TEST_CASE("lookup ignores ASCII case and one trailing dot", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr www = issuer.cert({"www.example.com"});
  const CertPtr wildcard = issuer.cert({"*.example.net"});
  cache.put(www);
  cache.put(wildcard);
  CHECK(cache.find("WWW.Example.COM", now()) == www);
  CHECK(cache.find("www.example.com.", now()) == www);
  CHECK(cache.find("Api.EXAMPLE.net.", now()) == wildcard);
  CHECK(cache.find("www.example.com..", now()) == nullptr);
}

TEST_CASE("IP literals match exactly, never through a wildcard", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr ips = issuer.cert({"10.0.0.1", "::1"});
  cache.put(ips);
  CHECK(ips->names == std::vector<std::string>{"10.0.0.1", "::1"});
  CHECK(cache.find("10.0.0.1", now()) == ips);
  CHECK(cache.find("0:0:0:0:0:0:0:1", now()) == ips);
  CHECK(cache.find("10.0.0.2", now()) == nullptr);
  CHECK(cache.find("10.0.0", now()) == nullptr);

  cache.put(issuer.cert({"*.0.0.1"}));
  CHECK(cache.find("9.0.0.1", now()) == nullptr);
}

TEST_CASE("an expired certificate is never returned by find but stays for find_any", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr cert = issuer.cert({"old.example.com"}, Origin::Configured, 1h);
  cache.put(cert);
  CHECK(cache.find("old.example.com", cert->not_after - 1s) == cert);
  CHECK(cache.find("old.example.com", cert->not_after) == nullptr);
  CHECK(cache.find("old.example.com", cert->not_after + 24h) == nullptr);
  CHECK(cache.find_any("old.example.com") == cert);
  CHECK(cache.size() == 1);

  // An expired exact certificate falls back to a valid wildcard rather than to
  // nothing.
  const CertPtr wildcard = issuer.cert({"*.example.com"}, Origin::Configured, 48h);
  cache.put(wildcard);
  CHECK(cache.find("old.example.com", cert->not_after) == wildcard);
  CHECK(cache.find_any("old.example.com") == cert);
}

TEST_CASE("a renewal replaces the certificate without readers ever seeing none", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr old_cert = issuer.cert({"example.com", "www.example.com"});
  const CertPtr new_cert = issuer.cert({"example.com", "www.example.com"});
  cache.put(old_cert);

  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 10'000; ++i) cache.put(i % 2 == 0 ? new_cert : old_cert);
    cache.put(new_cert);
    done = true;
  });
  int misses = 0;
  int strangers = 0;
  long reads = 0;
  while (!done.load()) {
    const CertPtr seen = cache.find("www.example.com", now());
    if (!seen)
      ++misses;
    else if (seen != old_cert && seen != new_cert)
      ++strangers;
    ++reads;
  }
  writer.join();
  CHECK(misses == 0);
  CHECK(strangers == 0);
  CHECK(reads > 0);
  CHECK(cache.find("example.com", now()) == new_cert);
  CHECK(cache.find("www.example.com", now()) == new_cert);
  CHECK(cache.size() == 1);
}

TEST_CASE("a replacement with fewer names leaves the old certificate under the rest", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr both = issuer.cert({"a.example.com", "b.example.com"});
  const CertPtr only_a = issuer.cert({"a.example.com"});
  cache.put(both);
  cache.put(only_a);
  CHECK(cache.find("a.example.com", now()) == only_a);
  CHECK(cache.find("b.example.com", now()) == both);
  CHECK(cache.size() == 2);

  cache.put(issuer.cert({"b.example.com"}));
  CHECK(cache.size() == 2);
  const auto all = cache.all();
  CHECK(std::find(all.begin(), all.end(), both) == all.end());
}

TEST_CASE("on-demand certificates are evicted least recently used first", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache(3);
  const CertPtr configured = issuer.cert({"configured.example.com"}, Origin::Configured);
  const CertPtr manual = issuer.cert({"manual.example.com"}, Origin::Manual);
  const CertPtr one = issuer.cert({"one.example.com"}, Origin::OnDemand);
  const CertPtr two = issuer.cert({"two.example.com"}, Origin::OnDemand);
  const CertPtr three = issuer.cert({"three.example.com"}, Origin::OnDemand);
  cache.put(configured);
  cache.put(one);
  cache.put(two);
  cache.put(manual);
  cache.put(three);
  CHECK(cache.size() == 5);

  // Touch order: two is now the least recently used, though one was cached
  // first.
  CHECK(cache.find("one.example.com", now()) == one);
  CHECK(cache.find("three.example.com", now()) == three);
  const CertPtr four = issuer.cert({"four.example.com"}, Origin::OnDemand);
  cache.put(four);
  CHECK(cache.size() == 5);
  CHECK(cache.find_any("two.example.com") == nullptr);
  CHECK(cache.find("four.example.com", now()) == four);
  CHECK(cache.find("one.example.com", now()) == one);
  CHECK(cache.find("three.example.com", now()) == three);

  // Now four is the oldest touch (find_any does not count as a use); configured
  // and manual are older still but never evicted.
  cache.put(issuer.cert({"five.example.com"}, Origin::OnDemand));
  CHECK(cache.find_any("four.example.com") == nullptr);
  CHECK(cache.find("configured.example.com", now()) == configured);
  CHECK(cache.find("manual.example.com", now()) == manual);
  CHECK(cache.size() == 5);
}

TEST_CASE("configured certificates never count against the on-demand capacity", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache(1);
  std::vector<CertPtr> configured;
  for (int i = 0; i < 4; ++i) {
    configured.push_back(issuer.cert({"c" + std::to_string(i) + ".example.com"}, Origin::Configured));
    cache.put(configured.back());
  }
  cache.put(issuer.cert({"od1.example.com"}, Origin::OnDemand));
  cache.put(issuer.cert({"od2.example.com"}, Origin::OnDemand));
  CHECK(cache.size() == 5);
  CHECK(cache.find_any("od1.example.com") == nullptr);
  CHECK(cache.find_any("od2.example.com") != nullptr);
  for (int i = 0; i < 4; ++i) CHECK(cache.find("c" + std::to_string(i) + ".example.com", now()) == configured[i]);
}

TEST_CASE("remove unindexes names and drops a certificate left with none", "[serve][cache]") {
  Issuer issuer;
  serve::CertificateCache cache;
  const CertPtr cert = issuer.cert({"a.example.com", "b.example.com"});
  cache.put(cert);
  cache.put(issuer.cert({"c.example.com"}));
  cache.remove({"A.example.com."});
  CHECK(cache.find_any("a.example.com") == nullptr);
  CHECK(cache.find("b.example.com", now()) == cert);
  CHECK(cache.size() == 2);
  cache.remove({"b.example.com", "not-cached.example.com"});
  CHECK(cache.find_any("b.example.com") == nullptr);
  CHECK(cache.size() == 1);
  const auto all = cache.all();
  REQUIRE(all.size() == 1);
  CHECK(all.front()->names == std::vector<std::string>{"c.example.com"});
}

TEST_CASE("a private key that is not the leaf's is refused", "[serve][cache]") {
  Issuer issuer;
  const pki::IssuedLeaf first = issuer.leaf({"example.com"});
  const pki::IssuedLeaf second = issuer.leaf({"example.com"});
  CHECK_THROWS_MATCHES(
      serve::make_cached_certificate(pki::chain_to_pem(first.chain), pki::private_key_to_pem(*second.key).str(),
                                     "local", Origin::Configured),
      pki::Error,
      Catch::Matchers::Message("caching certificate for example.com: private "
                               "key does not match the certificate"));
  CHECK_NOTHROW(serve::make_cached_certificate(pki::chain_to_pem(first.chain),
                                               pki::private_key_to_pem(*first.key).str(), "local", Origin::Configured));
}

TEST_CASE("damaged PEM input is refused", "[serve][cache]") {
  Issuer issuer;
  const pki::IssuedLeaf leaf = issuer.leaf({"example.com"});
  const std::string chain = pki::chain_to_pem(leaf.chain);
  const std::string key = pki::private_key_to_pem(*leaf.key).str();
  CHECK_THROWS_AS(serve::make_cached_certificate("not a certificate", key, "local", Origin::Manual), pki::Error);
  CHECK_THROWS_AS(serve::make_cached_certificate(chain, "not a key", "local", Origin::Manual), pki::Error);
  CHECK_THROWS_AS(serve::make_cached_certificate(key, key, "local", Origin::Manual), pki::Error);
  CHECK_THROWS_AS(serve::make_cached_certificate(chain.substr(0, chain.size() / 3), key, "local", Origin::Manual),
                  pki::Error);
}
