// `acmetool qualify` as a script sees it: one tab-separated row (or JSON object) per name, and an
// exit code that says whether every name can get a certificate.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "process.h"
#include "run_acmetool.h"

using acmetool::test::CommandResult;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;

namespace {

}  // namespace

TEST_CASE("qualify prints one tab-separated row per name and exits 0 when all qualify", "[cli][qualify]") {
  const CommandResult r = run_acmetool({"qualify", "Example.com", "*.example.com", "app.internal", "myhost", "10.0.0.5",
                                        "[::1]", "8.8.8.8", "bücher.example"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "example.com\tpublic\tacme\tpublic DNS name\n"
        "*.example.com\tpublic\tacme\tpublic wildcard name: needs the DNS-01 challenge\n"
        "app.internal\tinternal\tlocal\tunder .internal, reserved for private networks (ICANN, 2024)\n"
        "myhost\tinternal\tlocal\tsingle-label name: no public CA validates a name without a dot\n"
        "10.0.0.5\tip\tlocal\tIP address in 10.0.0.0/8: private\n"
        "::1\tip\tlocal\tIP address in ::1/128: loopback\n"
        "8.8.8.8\tip\tlocal\tpublic IP address: public CAs issue IP certificates only on request, so the local CA "
        "signs it\n"
        "xn--bcher-kva.example\tpublic\tacme\tpublic DNS name\n");
}

TEST_CASE("qualify exits 3 when a name is invalid and still lists every name", "[cli][qualify]") {
  const CommandResult r = run_acmetool({"qualify", "localhost", "localhost:8080", "a..b", "a\tb"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "localhost\tinternal\tlocal\tlocalhost: the loopback name (RFC 6761 §6.3)\n"
        "localhost:8080\tinvalid\t\thas a port: remove ':8080'\n"
        "a..b\tinvalid\t\thas an empty label ('..'): remove the extra dot\n"
        "a\\x09b\tinvalid\t\tcontains whitespace: remove it\n");
}

TEST_CASE("qualify --json prints an array of objects with input and normalised name", "[cli][qualify]") {
  const CommandResult r = run_acmetool({"--json", "qualify", " Straße.de", "label-.example"});
  CHECK(r.exit_code == 3);
  const nlohmann::json json = nlohmann::json::parse(r.out);
  REQUIRE(json.is_array());
  REQUIRE(json.size() == 2);
  CHECK(json[0] == nlohmann::json{{"input", " Straße.de"},
                                  {"name", "xn--strae-oqa.de"},
                                  {"class", "public"},
                                  {"issuer", "acme"},
                                  {"reason", "public DNS name"}});
  CHECK(json[1] == nlohmann::json{{"input", "label-.example"},
                                  {"name", "label-.example"},
                                  {"class", "invalid"},
                                  {"issuer", ""},
                                  {"reason", "label 'label-' ends with a hyphen"}});

  // The global flag works after the subcommand too, and all-good names exit 0.
  const CommandResult after = run_acmetool({"qualify", "--json", "127.0.0.1"});
  CHECK(after.exit_code == 0);
  CHECK(nlohmann::json::parse(after.out)[0]["class"] == "ip");
}

TEST_CASE("qualify treats everything after -- as a name, even one starting with a dash", "[cli][qualify]") {
  CommandResult r = run_acmetool({"qualify", "--", "-foo", "--json"});
  CHECK(r.exit_code == 3);
  CHECK(r.out ==
        "-foo\tinvalid\t\tlabel '-foo' starts with a hyphen\n"
        "--json\tinvalid\t\tlabel '--json' starts with a hyphen\n");

  r = run_acmetool({"qualify", "-foo"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
}

TEST_CASE("qualify without a name is a usage error", "[cli][qualify]") {
  const CommandResult r = run_acmetool({"qualify"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.starts_with("acmetool: "));
  CHECK(r.err.find("names") != std::string::npos);
  CHECK(r.err.find("acmetool qualify --help") != std::string::npos);
}
