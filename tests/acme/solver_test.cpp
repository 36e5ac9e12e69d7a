#include "acmetool/acme/solver.h"

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "acmetool/acme/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/x509.h"
#include "process.h"
#include "raw_socket.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::free_port;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using namespace std::chrono_literals;

namespace {

// The token and key authorization of RFC 8555 §8.3's example.
constexpr char kToken[] = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
constexpr char kKeyAuthorization[] =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

const char* const kBadTokens[] = {"../x", "a/b",  "",   "a b", "../../etc/passwd",
                                  "a.b",  "tok=", "..", "a\nb"};

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

// curl -i against our listener on 127.0.0.1; status 0 when curl failed.
HttpReply curl_get(int port, const std::string& path, std::vector<std::string> options = {},
                   std::chrono::seconds max_time = 10s) {
  std::vector<std::string> argv = {"curl", "-s", "-i", "--max-time",
                                   std::to_string(max_time.count())};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + path);
  const CommandResult r = run_command(argv, "", {}, max_time + 10s);
  HttpReply reply;
  const auto end_of_head = r.out.find("\r\n\r\n");
  if (r.exit_code != 0 || end_of_head == std::string::npos || !r.out.starts_with("HTTP/1.1 ")) {
    return reply;
  }
  reply.status = std::stoi(r.out.substr(9, 3));
  reply.head = r.out.substr(0, end_of_head);
  reply.body = r.out.substr(end_of_head + 4);
  return reply;
}

std::string challenge_path(const std::string& token) {
  return "/.well-known/acme-challenge/" + token;
}

// Sends `request` on a fresh connection and returns everything received until the listener closes.
std::string send_raw(int port, const std::string& request) {
  const pki::UniqueFd fd = acmetool::test::connect_tcp(port);
  acmetool::test::send_all(fd.get(), request);
  return acmetool::test::read_until_closed(fd.get(), 15s);
}

mode_t permissions(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

struct TlsResult {
  CommandResult run;
  pki::X509Ptr cert;  // the served certificate, when the handshake completed
};

// openssl s_client to 127.0.0.1:port with `sni` (none when empty), offering acme-tls/1 unless
// `alpn` is false.
TlsResult s_client(int port, const std::string& sni, bool alpn = true,
                   std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                   "127.0.0.1:" + std::to_string(port), "-showcerts"};
  if (sni.empty()) {
    argv.push_back("-noservername");
  } else {
    argv.insert(argv.end(), {"-servername", sni});
  }
  if (alpn) argv.insert(argv.end(), {"-alpn", "acme-tls/1"});
  argv.insert(argv.end(), options.begin(), options.end());
  TlsResult result{run_command(argv, "", {}, 30s), nullptr};
  const auto begin = result.run.out.find("-----BEGIN CERTIFICATE-----");
  if (result.run.exit_code == 0 && begin != std::string::npos) {
    result.cert = std::move(
        pki::certificates_from_pem(result.run.out.substr(begin), "s_client output").front());
  }
  return result;
}

// 04 20 || SHA-256(text) as bytes, the digest computed by the openssl command.
std::string expected_acme_identifier(const std::string& key_authorization) {
  const CommandResult r = run_command({"openssl", "dgst", "-sha256", "-hex"}, key_authorization);
  REQUIRE(r.exit_code == 0);
  const std::string hex = r.out.substr(r.out.rfind(' ') + 1, 64);
  REQUIRE(hex.size() == 64);
  std::string bytes = {'\x04', '\x20'};
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}

// The id-pe-acmeIdentifier extension's critical flag and extnValue bytes; critical is -1 when
// absent.
std::pair<int, std::string> acme_identifier_of(X509& cert) {
  pki::OsslPtr<ASN1_OBJECT> oid(OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1));
  const int index = X509_get_ext_by_OBJ(&cert, oid.get(), -1);
  if (index < 0) return {-1, ""};
  X509_EXTENSION* extension = X509_get_ext(&cert, index);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(extension);
  return {X509_EXTENSION_get_critical(extension),
          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                      ASN1_STRING_length(value))};
}

}  // namespace

TEST_CASE("the http-01 listener serves exactly the key authorization for a presented token",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  CHECK(solver->type() == "http-01");
  solver->present("example.com", kToken, kKeyAuthorization);

  const HttpReply reply = curl_get(port, challenge_path(kToken));
  CHECK(reply.status == 200);
  CHECK(reply.body == kKeyAuthorization);
  CHECK_THAT(reply.head, Catch::Contains("Content-Type: text/plain"));

  // The Host header is whatever name the CA validates, presented or not.
  const HttpReply other_host =
      curl_get(port, challenge_path(kToken), {"-H", "Host: other.example:8080"});
  CHECK(other_host.status == 200);
  CHECK(other_host.body == kKeyAuthorization);
}

TEST_CASE("the http-01 listener answers 404 for unknown tokens, other paths and cleaned-up tokens",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  solver->present("example.com", kToken, kKeyAuthorization);
  solver->present("example.com", "other-token", "other-token.thumbprint");

  CHECK(curl_get(port, challenge_path("unknown_token")).status == 404);
  CHECK(curl_get(port, "/").status == 404);
  CHECK(curl_get(port, "/.well-known/acme-challenge/").status == 404);
  CHECK(curl_get(port, challenge_path(kToken) + "/x").status == 404);
  CHECK(curl_get(port, challenge_path(kToken), {"-X", "POST"}).status == 404);

  solver->cleanup("example.com", kToken);
  CHECK(curl_get(port, challenge_path(kToken)).status == 404);
  // Only that token went away.
  const HttpReply other = curl_get(port, challenge_path("other-token"));
  CHECK(other.status == 200);
  CHECK(other.body == "other-token.thumbprint");
  // Cleaning up twice, or what was never presented, does nothing.
  solver->cleanup("example.com", kToken);
  solver->cleanup("example.com", "../x");
}

TEST_CASE("every solver refuses a token that is not base64url", "[acme][solver]") {
  TempDir dir;
  const int http_port = free_port();
  const int tls_port = free_port();
  auto http = acme::make_http01_standalone("127.0.0.1", http_port);
  auto webroot = acme::make_http01_webroot(dir.path() / "www");
  auto tls = acme::make_tlsalpn01_standalone("127.0.0.1", tls_port);
  for (const char* token : kBadTokens) {
    INFO("token '" << token << "'");
    CHECK_THROWS_AS(http->present("example.com", token, kKeyAuthorization), acme::Error);
    CHECK_THROWS_AS(webroot->present("example.com", token, kKeyAuthorization), acme::Error);
    CHECK_THROWS_AS(tls->present("example.com", token, kKeyAuthorization), acme::Error);
  }
  CHECK_THROWS_WITH(http->present("example.com", "../x", kKeyAuthorization),
                    Catch::Contains("http-01") && Catch::Contains("not base64url"));
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("a standalone solver on a port already in use throws naming the address and port",
          "[acme][solver]") {
  const int port = free_port();
  const std::string endpoint = "127.0.0.1:" + std::to_string(port);
  auto first = acme::make_http01_standalone("127.0.0.1", port);
  CHECK_THROWS_WITH(acme::make_http01_standalone("127.0.0.1", port),
                    Catch::Contains("listening on " + endpoint + " for http-01") &&
                        Catch::Contains("Address already in use"));
  CHECK_THROWS_WITH(acme::make_tlsalpn01_standalone("127.0.0.1", port),
                    Catch::Contains("listening on " + endpoint + " for tls-alpn-01"));
  CHECK_THROWS_WITH(acme::make_http01_standalone("localhost", port),
                    Catch::Contains("not an IP address"));
  CHECK_THROWS_AS(acme::make_http01_standalone("127.0.0.1", 70000), acme::Error);
}

TEST_CASE("destroying a standalone solver closes its port", "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  solver->present("example.com", kToken, kKeyAuthorization);
  REQUIRE(curl_get(port, challenge_path(kToken)).status == 200);
  solver.reset();
  const CommandResult r = run_command(
      {"curl", "-s", "--max-time", "5", "http://127.0.0.1:" + std::to_string(port) + "/"});
  CHECK(r.exit_code == 7);  // CURLE_COULDNT_CONNECT
  // And the port can be bound again at once.
  CHECK_NOTHROW(acme::make_http01_standalone("127.0.0.1", port));
}

TEST_CASE("the http-01 listener serves 20 concurrent clients", "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  std::vector<std::string> tokens;
  for (int i = 0; i < 20; ++i) {
    tokens.push_back("token-" + std::to_string(i));
    solver->present("example.com", tokens.back(), tokens.back() + ".thumbprint");
  }
  std::vector<HttpReply> replies(tokens.size());
  {
    std::vector<std::jthread> clients;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      clients.emplace_back([&, i] { replies[i] = curl_get(port, challenge_path(tokens[i])); });
    }
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    INFO("client " << i);
    CHECK(replies[i].status == 200);
    CHECK(replies[i].body == tokens[i] + ".thumbprint");
  }
}

TEST_CASE("a standalone solver may be presented to and cleaned up from several threads at once",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  int status_meanwhile = 0;
  {
    std::vector<std::jthread> orders;
    for (int t = 0; t < 8; ++t) {
      orders.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) {
          const std::string token = "order-" + std::to_string(t) + "-" + std::to_string(i);
          solver->present("example.com", token, token + ".thumbprint");
          solver->cleanup("example.com", token);
        }
        solver->present("example.com", "final-" + std::to_string(t), "final.thumbprint");
      });
    }
    orders.emplace_back(
        [&] { status_meanwhile = curl_get(port, challenge_path("order-0-0")).status; });
  }
  CHECK((status_meanwhile == 200 || status_meanwhile == 404));
  for (int t = 0; t < 8; ++t) {
    CHECK(curl_get(port, challenge_path("final-" + std::to_string(t))).body == "final.thumbprint");
  }
  CHECK(curl_get(port, challenge_path("order-3-299")).status == 404);
}

TEST_CASE("a standalone solver listens on an IPv6 address", "[acme][solver]") {
  const int port = free_port();
  std::unique_ptr<acme::Solver> solver;
  try {
    solver = acme::make_http01_standalone("::1", port);
  } catch (const acme::Error& e) {
    WARN("no IPv6 loopback here: " << e.what());
    return;
  }
  solver->present("example.com", kToken, kKeyAuthorization);
  const CommandResult r =
      run_command({"curl", "-s", "-g", "--max-time", "10",
                   "http://[::1]:" + std::to_string(port) + challenge_path(kToken)});
  CHECK(r.exit_code == 0);
  CHECK(r.out == kKeyAuthorization);
  CHECK_THROWS_WITH(acme::make_http01_standalone("[::1]", port),
                    Catch::Contains("listening on [::1]:" + std::to_string(port) + " for http-01"));
}

TEST_CASE("a silent client does not hold up others and is closed after the timeout",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  solver->present("example.com", kToken, kKeyAuthorization);
  const pki::UniqueFd silent = acmetool::test::connect_tcp(port);

  // Well inside the 10 s the silent connection may last.
  const HttpReply reply = curl_get(port, challenge_path(kToken), {}, 5s);
  CHECK(reply.status == 200);
  CHECK(reply.body == kKeyAuthorization);

  // The listener gives up on it: EOF before our own, much longer, limit.
  bool closed = false;
  CHECK(acmetool::test::read_until_closed(silent.get(), 30s, &closed).empty());
  CHECK(closed);
}

TEST_CASE("the http-01 listener refuses a request head over 8 KiB", "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  solver->present("example.com", kToken, kKeyAuthorization);
  const std::string response =
      send_raw(port, "GET " + challenge_path(kToken) +
                         " HTTP/1.1\r\nX-Padding: " + std::string(9000, 'a') + "\r\n\r\n");
  CHECK(response.starts_with("HTTP/1.1 431 "));
  CHECK(response.find(kKeyAuthorization) == std::string::npos);
  // Just under the limit is fine.
  CHECK(send_raw(port, "GET " + challenge_path(kToken) +
                           " HTTP/1.1\r\nX-Padding: " + std::string(8000, 'a') + "\r\n\r\n")
            .starts_with("HTTP/1.1 200 "));
}

TEST_CASE("the http-01 listener answers 400 to a request line that does not parse",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_http01_standalone("127.0.0.1", port);
  solver->present("example.com", kToken, kKeyAuthorization);
  CHECK(send_raw(port, "garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
  CHECK(send_raw(port, "GET " + challenge_path(kToken) + "\r\n\r\n").starts_with("HTTP/1.1 400 "));
  // A bare-LF request from a sloppy client is still understood.
  CHECK(send_raw(port, "GET " + challenge_path(kToken) + " HTTP/1.0\n\n")
            .ends_with(kKeyAuthorization));
}

TEST_CASE("the webroot solver writes the key authorization where the web server serves it",
          "[acme][solver]") {
  TempDir dir;
  const fs::path webroot = dir.path() / "www";
  const fs::path challenge_dir = webroot / ".well-known" / "acme-challenge";
  auto solver = acme::make_http01_webroot(webroot);
  CHECK(solver->type() == "http-01");
  solver->present("example.com", kToken, kKeyAuthorization);

  const fs::path file = challenge_dir / kToken;
  CHECK(pki::read_file(file) == kKeyAuthorization);
  CHECK(permissions(file) == 0644);
  CHECK(permissions(webroot / ".well-known") == 0755);
  CHECK(permissions(challenge_dir) == 0755);

  // Cleanup removes the token's file only: not the directories, not what else is served there.
  pki::write_file_atomic(challenge_dir / "someone-else", "theirs", 0644);
  solver->cleanup("example.com", kToken);
  CHECK_FALSE(fs::exists(file));
  CHECK(fs::is_directory(challenge_dir));
  CHECK(pki::read_file(challenge_dir / "someone-else") == "theirs");
  solver->cleanup("example.com", kToken);  // twice is fine
}

TEST_CASE("the webroot solver writes nothing for a traversal token", "[acme][solver]") {
  TempDir dir;
  const fs::path webroot = dir.path() / "a" / "b" / "www";
  auto solver = acme::make_http01_webroot(webroot);
  CHECK_THROWS_AS(solver->present("example.com", "../../../../escape", kKeyAuthorization),
                  acme::Error);
  CHECK_THROWS_AS(solver->present("example.com", "..", kKeyAuthorization), acme::Error);
  CHECK(fs::is_empty(dir.path()));
  solver->cleanup("example.com", "../../../../escape");
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("the webroot solver reports a directory it cannot create", "[acme][solver]") {
  TempDir dir;
  pki::write_file_atomic(dir.path() / "file", "not a directory", 0644);
  auto solver = acme::make_http01_webroot(dir.path() / "file" / "www");
  CHECK_THROWS_WITH(solver->present("example.com", kToken, kKeyAuthorization),
                    Catch::Contains("presenting http-01 for example.com") &&
                        Catch::Contains((dir.path() / "file").string() + ": Not a directory"));
}

TEST_CASE("the tls-alpn-01 listener serves the challenge certificate for acme-tls/1",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_tlsalpn01_standalone("127.0.0.1", port);
  CHECK(solver->type() == "tls-alpn-01");
  solver->present("Example.TEST", kToken, kKeyAuthorization);

  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    INFO(version);
    const TlsResult result = s_client(port, "example.test", true, {version});
    INFO(result.run.err);
    REQUIRE(result.run.exit_code == 0);
    CHECK_THAT(result.run.out, Catch::Contains("ALPN protocol: acme-tls/1"));
    REQUIRE(result.cert);
    const pki::CertificateInfo info = pki::describe_certificate(*result.cert);
    CHECK(info.dns_names == std::vector<std::string>{"example.test"});
    CHECK(info.ip_addresses.empty());
    CHECK(info.key_type == "p256");
    CHECK(X509_verify(result.cert.get(), X509_get0_pubkey(result.cert.get())) == 1);  // self-signed
    const auto [critical, value] = acme_identifier_of(*result.cert);
    CHECK(critical == 1);
    CHECK(value == expected_acme_identifier(kKeyAuthorization));
  }
}

TEST_CASE("the tls-alpn-01 listener names an IP identifier asked for by its reverse-DNS name",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_tlsalpn01_standalone("127.0.0.1", port);
  solver->present("127.0.0.1", kToken, kKeyAuthorization);
  solver->present("::1", "v6-token", "v6-token.thumbprint");

  const TlsResult v4 = s_client(port, "1.0.0.127.in-addr.arpa");
  REQUIRE(v4.cert);
  const pki::CertificateInfo v4_info = pki::describe_certificate(*v4.cert);
  CHECK(v4_info.ip_addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(v4_info.dns_names.empty());
  CHECK(acme_identifier_of(*v4.cert).second == expected_acme_identifier(kKeyAuthorization));

  std::string v6_sni = "1.";
  for (int i = 0; i < 31; ++i) v6_sni += "0.";
  const TlsResult v6 = s_client(port, v6_sni + "ip6.arpa");
  REQUIRE(v6.cert);
  CHECK(pki::describe_certificate(*v6.cert).ip_addresses == std::vector<std::string>{"::1"});
  CHECK(acme_identifier_of(*v6.cert).second == expected_acme_identifier("v6-token.thumbprint"));
  // Each identifier has its own key.
  CHECK_FALSE(
      pki::same_public_key(*X509_get0_pubkey(v4.cert.get()), *X509_get0_pubkey(v6.cert.get())));

  // The address itself is not a valid SNI (RFC 6066 §3), so it is not what we answer to.
  CHECK(s_client(port, "127.0.0.1").run.exit_code != 0);
}

TEST_CASE("the tls-alpn-01 listener refuses handshakes that are not a validation",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_tlsalpn01_standalone("127.0.0.1", port);
  solver->present("example.test", kToken, kKeyAuthorization);
  REQUIRE(s_client(port, "example.test").run.exit_code == 0);

  const TlsResult no_alpn = s_client(port, "example.test", false);
  CHECK(no_alpn.run.exit_code != 0);
  CHECK_FALSE(no_alpn.cert);
  CHECK_THAT(no_alpn.run.err, Catch::Contains("no application protocol"));

  const TlsResult other_alpn = s_client(port, "example.test", false, {"-alpn", "h2,http/1.1"});
  CHECK(other_alpn.run.exit_code != 0);
  CHECK_THAT(other_alpn.run.err, Catch::Contains("no application protocol"));

  const TlsResult unknown_name = s_client(port, "other.test");
  CHECK(unknown_name.run.exit_code != 0);
  CHECK_FALSE(unknown_name.cert);
  CHECK_THAT(unknown_name.run.err, Catch::Contains("unrecognized name"));

  const TlsResult no_sni = s_client(port, "");
  CHECK(no_sni.run.exit_code != 0);
  CHECK_THAT(no_sni.run.err, Catch::Contains("unrecognized name"));

  solver->cleanup("example.test", kToken);
  const TlsResult after_cleanup = s_client(port, "example.test");
  CHECK(after_cleanup.run.exit_code != 0);
  CHECK_THAT(after_cleanup.run.err, Catch::Contains("unrecognized name"));
}

TEST_CASE("the tls-alpn-01 listener serves the latest presentation of an identifier",
          "[acme][solver]") {
  const int port = free_port();
  auto solver = acme::make_tlsalpn01_standalone("127.0.0.1", port);
  solver->present("example.test", "first", "first.thumbprint");
  solver->present("example.test", "second", "second.thumbprint");

  auto served = [&] {
    const TlsResult result = s_client(port, "example.test");
    return result.cert ? acme_identifier_of(*result.cert).second : std::string("refused");
  };
  CHECK(served() == expected_acme_identifier("second.thumbprint"));
  solver->cleanup("example.test", "second");
  CHECK(served() == expected_acme_identifier("first.thumbprint"));
  solver->cleanup("example.test", "second");  // already gone: the first stays
  CHECK(served() == expected_acme_identifier("first.thumbprint"));
  solver->cleanup("example.test", "first");
  CHECK(served() == "refused");
}

TEST_CASE("the tls-alpn-01 solver refuses identifiers a certificate cannot name",
          "[acme][solver]") {
  auto solver = acme::make_tlsalpn01_standalone("127.0.0.1", free_port());
  for (const char* identifier :
       {"", "*.example.test", "a..b", "example.test.", "a,DNS:evil.test", "ex ample.test"}) {
    INFO("identifier '" << identifier << "'");
    CHECK_THROWS_AS(solver->present(identifier, kToken, kKeyAuthorization), acme::Error);
  }
}
