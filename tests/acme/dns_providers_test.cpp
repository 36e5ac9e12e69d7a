// The DNS providers against real servers: exec and httpreq/acme-dns endpoints of the tests' own
// that change a real BIND 9 with nsupdate, a real PowerDNS through its API, and Cloudflare's API
// from recorded answers (pure functions, then a loopback stand-in).
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <deque>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/error.h"
#include "acmetool/pki/files.h"
#include "bind9.h"
#include "dns_cloudflare_internal.h"
#include "dns_providers_internal.h"
#include "pdns.h"
#include "process.h"
#include "tiny_http_server.h"

namespace acme = acmetool::acme;
namespace cloudflare = acmetool::acme::detail::cloudflare;
namespace fs = std::filesystem;
using acmetool::test::Bind9Server;
using acmetool::test::CannedResponse;
using acmetool::test::CommandResult;
using acmetool::test::PdnsServer;
using acmetool::test::RecordedRequest;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using acmetool::test::TinyHttpServer;
using nlohmann::json;

namespace {

// Two dns-01 values (base64url of a SHA-256, 43 characters).
constexpr char kValue1[] = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM";
constexpr char kValue2[] = "KxAy-J3NwUmg9ZQuM-gP_Mq1nStaYSaP9tYQs5_-YsE";

using Env = std::map<std::string, std::string>;

// Settings whose getenv reads `env` only: the tests never touch the process environment.
acme::DnsProviderSettings settings_for(std::string name, std::map<std::string, std::string> options,
                                       Env env = {}) {
  acme::DnsProviderSettings settings{std::move(name), std::move(options), nullptr};
  settings.getenv = [env = std::move(env)](const char* variable) -> const char* {
    const auto it = env.find(variable);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  return settings;
}

acme::TxtRecord record_at(std::string fqdn, std::string zone, std::string value) {
  return {std::move(fqdn), std::move(zone), std::move(value), std::chrono::seconds(60)};
}

// The DnsError `action` throws, or nullopt when it throws none.
template <class Action>
std::optional<acme::DnsError> dns_error_from(Action&& action) {
  try {
    action();
  } catch (const acme::DnsError& e) {
    return e;
  }
  return std::nullopt;
}

// The TXT values at `name` as the server at 127.0.0.1:`port` answers them, unquoted and sorted.
std::vector<std::string> txt_values(int port, const std::string& name) {
  const CommandResult dig =
      run_command({"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(port), "+short",
                   "+time=2", "+tries=1", "TXT", name});
  REQUIRE(dig.exit_code == 0);
  std::vector<std::string> values;
  std::istringstream lines(dig.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() >= 2 && line.front() == '"' && line.back() == '"') {
      values.push_back(line.substr(1, line.size() - 2));
    }
  }
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<std::string> bind_txt(const std::string& name) {
  return txt_values(Bind9Server::shared().port(), name);
}

// Applies nsupdate `commands` ("update add ...") to the shared BIND 9, TSIG-signed.
// Starts the shared BIND 9 on the calling (test) thread. Its processes die with the thread that
// started them, so a fake endpoint's thread, which calls nsupdate(), must not be the first.
void started_on_this_thread() { Bind9Server::shared(); }

void nsupdate(const std::string& commands) {
  Bind9Server& bind = Bind9Server::shared();
  const CommandResult result =
      run_command({"nsupdate", "-k", bind.tsig_key_file().string()},
                  "server 127.0.0.1 " + std::to_string(bind.port()) + "\n" + commands + "send\n");
  if (result.exit_code != 0) throw std::runtime_error("nsupdate: " + result.err);
}

// A shell script in `dir` that runs `body`; returns its path.
fs::path write_script(const TempDir& dir, const std::string& name, const std::string& body) {
  const fs::path path = dir.path() / name;
  acmetool::pki::write_file_atomic(path, "#!/bin/sh\n" + body, 0755);
  return path;
}

}  // namespace

// ---- The registry and options -------------------------------------------------------------

TEST_CASE("dns_provider_names lists every provider, sorted", "[dns]") {
  CHECK(acme::dns_provider_names() ==
        std::vector<std::string>{"acme-dns", "cloudflare", "exec", "httpreq", "pdns", "rfc2136"});
}

TEST_CASE("an unknown provider name gets the closest known name as a suggestion", "[dns]") {
  struct Case {
    std::string name, suggestion;
  };
  const Case c = GENERATE(values<Case>({{"cloudfare", "cloudflare"},
                                        {"acmedns", "acme-dns"},
                                        {"powerdns", "pdns"},
                                        {"nsupdate", "rfc2136"},
                                        {"pdsn", "pdns"},
                                        {"httpreqs", "httpreq"},
                                        {"rfc-2136", "rfc2136"}}));
  CAPTURE(c.name);
  REQUIRE_THROWS_WITH(acme::make_dns_provider(settings_for(c.name, {})),
                      Catch::Contains("unknown DNS provider \"" + c.name + "\"") &&
                          Catch::Contains("did you mean \"" + c.suggestion + "\"?"));
}

TEST_CASE("a far-off provider name gets the list of known names and no guess", "[dns]") {
  REQUIRE_THROWS_WITH(
      acme::make_dns_provider(settings_for("route53", {})),
      Catch::Contains("known providers: acme-dns, cloudflare, exec, httpreq, pdns, rfc2136") &&
          !Catch::Contains("did you mean"));
}

TEST_CASE("a missing required option names its --dns-opt key and environment variable", "[dns]") {
  struct Case {
    std::string provider;
    std::map<std::string, std::string> options;
    std::string key, env;
  };
  const Case c = GENERATE(values<Case>({
      {"exec", {}, "path", "EXEC_PATH"},
      {"httpreq", {}, "endpoint", "HTTPREQ_ENDPOINT"},
      {"acme-dns", {}, "api_base", "ACME_DNS_API_BASE"},
      {"acme-dns", {{"api_base", "http://127.0.0.1:1"}}, "storage_path", "ACME_DNS_STORAGE_PATH"},
      {"pdns", {}, "api_url", "PDNS_API_URL"},
      {"pdns", {{"api_url", "http://127.0.0.1:1"}}, "api_key", "PDNS_API_KEY"},
      {"cloudflare", {}, "api_token", "CF_DNS_API_TOKEN"},
  }));
  CAPTURE(c.provider, c.key);
  REQUIRE_THROWS_AS(acme::make_dns_provider(settings_for(c.provider, c.options)), acme::Error);
  REQUIRE_THROWS_WITH(acme::make_dns_provider(settings_for(c.provider, c.options)),
                      Catch::StartsWith(c.provider + ": ") &&
                          Catch::Contains("--dns-opt " + c.key + "=") && Catch::Contains(c.env));
}

TEST_CASE("option_or_env prefers --dns-opt, then the environment, and ignores empty values",
          "[dns]") {
  using acme::detail::option_or_env;
  const auto settings =
      settings_for("exec", {{"path", "/from/option"}, {"mode", ""}},
                   {{"EXEC_PATH", "/from/env"}, {"EXEC_MODE", "RAW"}, {"EXEC_TIMEOUT", ""}});
  CHECK(option_or_env(settings, "path", "EXEC_PATH") == "/from/option");
  CHECK(option_or_env(settings, "mode", "EXEC_MODE") == "RAW");
  CHECK(option_or_env(settings, "timeout", "EXEC_TIMEOUT") == std::nullopt);
  CHECK(option_or_env(settings, "other", "") == std::nullopt);
}

TEST_CASE("malformed options are refused when the provider is made", "[dns]") {
  struct Case {
    std::string provider;
    std::map<std::string, std::string> options;
    std::string message;
  };
  const Case c = GENERATE(values<Case>({
      {"exec", {{"path", "/bin/true"}, {"mode", "raw"}}, "expected RAW or nothing"},
      {"exec", {{"path", "/bin/true"}, {"timeout", "soon"}}, "expected a positive duration"},
      {"httpreq", {{"endpoint", "ftp://x"}}, "expected an http:// or https:// URL"},
      {"pdns",
       {{"api_url", "http://x"}, {"api_key", "k"}, {"api_version", "v1"}},
       "expected 0 or 1"},
  }));
  CAPTURE(c.provider, c.message);
  REQUIRE_THROWS_WITH(acme::make_dns_provider(settings_for(c.provider, c.options)),
                      Catch::Contains(c.message));
}

// ---- exec -------------------------------------------------------------------------------------

namespace {

// Replaces each @NAME@ in `text` with vars.at(NAME): scripts read like the files they become.
std::string fill(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [name, value] : vars) {
    for (size_t at; (at = text.find("@" + name + "@")) != std::string::npos;) {
      text.replace(at, name.size() + 2, value);
    }
  }
  return text;
}

// An exec program that applies the change to the shared BIND 9 with nsupdate and logs its
// arguments, one per line, to `log`.
fs::path nsupdate_script(const TempDir& dir, const fs::path& log) {
  constexpr char kScript[] = R"(set -e
printf '%s\n' "$@" >> '@LOG@'
case "$1" in present) op=add; ttl=60;; cleanup) op=delete; ttl=;; esac
printf 'server 127.0.0.1 @PORT@\nupdate %s %s %s TXT "%s"\nsend\n' "$op" "$2" "$ttl" "$3" |
  nsupdate -k '@KEY@'
)";
  Bind9Server& bind = Bind9Server::shared();
  return write_script(dir, "dns-hook",
                      fill(kScript, {{"LOG", log.string()},
                                     {"PORT", std::to_string(bind.port())},
                                     {"KEY", bind.tsig_key_file().string()}}));
}

}  // namespace

TEST_CASE("exec runs PROGRAM present|cleanup FQDN VALUE and the records reach BIND 9",
          "[dns][exec][bind9]") {
  TempDir dir;
  const fs::path log = dir.path() / "args.log";
  // EXEC_PATH through settings.getenv: the environment fallback works.
  auto provider = acme::make_dns_provider(
      settings_for("exec", {}, {{"EXEC_PATH", nsupdate_script(dir, log).string()}}));
  REQUIRE(provider->name() == "exec");
  const std::string name = "_acme-challenge.exec-two.example.test.";
  const auto first = record_at(name, "example.test.", kValue1);
  const auto second = record_at(name, "example.test.", kValue2);

  provider->present(first);
  provider->present(second);
  CHECK(bind_txt(name) == std::vector<std::string>{kValue2, kValue1});
  provider->cleanup(first);
  CHECK(bind_txt(name) == std::vector<std::string>{kValue2});
  provider->cleanup(second);
  CHECK(bind_txt(name).empty());
  CHECK(acmetool::test::read_text(log) ==
        std::string("present\n") + name + "\n" + kValue1 + "\npresent\n" + name + "\n" + kValue2 +
            "\ncleanup\n" + name + "\n" + kValue1 + "\ncleanup\n" + name + "\n" + kValue2 + "\n");
}

TEST_CASE("exec RAW mode passes --, the domain, an empty token and the value", "[dns][exec]") {
  TempDir dir;
  const fs::path log = dir.path() / "args.log";
  const fs::path script = write_script(
      dir, "raw-hook",
      fill("echo $# >> '@LOG@'\nprintf '[%s]\\n' \"$@\" >> '@LOG@'\n", {{"LOG", log.string()}}));
  auto provider = acme::make_dns_provider(
      settings_for("exec", {{"path", script.string()}}, {{"EXEC_MODE", "RAW"}}));
  provider->present(record_at("_acme-challenge.raw.example.test.", "example.test.", kValue1));
  CHECK(acmetool::test::read_text(log) ==
        std::string("5\n[present]\n[--]\n[raw.example.test]\n[]\n[") + kValue1 + "]\n");
}

TEST_CASE("exec turns a failing program into a DnsError with its last stderr line", "[dns][exec]") {
  TempDir dir;
  const fs::path script = write_script(dir, "failing-hook",
                                       "echo 'working on it'\necho 'first complaint' >&2\n"
                                       "echo 'update failed: REFUSED' >&2\nexit 3\n");
  auto provider = acme::make_dns_provider(settings_for("exec", {{"path", script.string()}}));
  const auto error = dns_error_from([&] {
    provider->present(record_at("_acme-challenge.fail.example.test.", "example.test.", kValue1));
  });
  REQUIRE(error);
  CHECK(error->provider() == "exec");
  CHECK(error->zone() == "example.test.");
  CHECK(std::string(error->what()) ==
        "exec (zone example.test.): " + script.string() +
            " present _acme-challenge.fail.example.test.: exited with status 3: update failed: "
            "REFUSED");
}

TEST_CASE("exec kills a program that runs past its timeout", "[dns][exec]") {
  TempDir dir;
  // Without the timeout this program would succeed, after 30 s.
  const fs::path script = write_script(dir, "slow-hook", "sleep 30\nexit 0\n");
  auto provider = acme::make_dns_provider(
      settings_for("exec", {{"path", script.string()}, {"timeout", "300ms"}}));
  const auto error = dns_error_from([&] {
    provider->cleanup(record_at("_acme-challenge.slow.example.test.", "example.test.", kValue1));
  });
  REQUIRE(error);
  CHECK_THAT(error->what(), Catch::Contains("killed after 300 ms"));
}

TEST_CASE("exec reports a program that cannot be started", "[dns][exec]") {
  TempDir dir;
  auto provider = acme::make_dns_provider(
      settings_for("exec", {{"path", (dir.path() / "missing-hook").string()}}));
  const auto error = dns_error_from([&] {
    provider->present(record_at("_acme-challenge.x.example.test.", "example.test.", kValue1));
  });
  REQUIRE(error);
  CHECK_THAT(error->what(),
             Catch::Contains("missing-hook") && Catch::Contains("No such file or directory"));
}

// ---- httpreq ----------------------------------------------------------------------------------

namespace {

// An httpreq endpoint of lego's default mode that applies the change to the shared BIND 9.
CannedResponse httpreq_to_bind(const RecordedRequest& request) {
  const json body = json::parse(request.body);
  const std::string op = request.path().ends_with("/present") ? "add" : "delete";
  const std::string ttl = op == "add" ? " 60" : "";
  nsupdate("update " + op + " " + body.at("fqdn").get<std::string>() + ttl + " TXT \"" +
           body.at("value").get<std::string>() + "\"\n");
  return {200, "{}"};
}

}  // namespace

TEST_CASE("httpreq POSTs fqdn and value to ENDPOINT/present and /cleanup with basic auth",
          "[dns][httpreq][bind9]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  TinyHttpServer server(httpreq_to_bind);
  auto provider = acme::make_dns_provider(
      settings_for("httpreq", {{"endpoint", server.url() + "/acme/"}, {"username", "user"}},
                   {{"HTTPREQ_PASSWORD", "pa:ss"}}));
  const std::string name = "_acme-challenge.httpreq.example.test.";
  const auto record = record_at(name, "example.test.", kValue1);

  provider->present(record);
  CHECK(bind_txt(name) == std::vector<std::string>{kValue1});
  provider->cleanup(record);
  CHECK(bind_txt(name).empty());

  const std::vector<RecordedRequest> requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].target == "/acme/present");
  CHECK(requests[1].target == "/acme/cleanup");
  for (const RecordedRequest& request : requests) {
    CHECK(request.method == "POST");
    CHECK(request.header("content-type") == "application/json");
    CHECK(request.header("authorization") == "Basic dXNlcjpwYTpzcw==");  // user:pa:ss
    CHECK(json::parse(request.body) == json{{"fqdn", name}, {"value", kValue1}});
  }
}

TEST_CASE("httpreq RAW mode sends domain, token and keyAuth, without auth unless both are set",
          "[dns][httpreq]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  TinyHttpServer server([](const RecordedRequest&) {
    return CannedResponse{200, "ok", "text/plain"};
  });
  auto provider = acme::make_dns_provider(
      settings_for("httpreq", {{"endpoint", server.url()}, {"mode", "RAW"}, {"username", "user"}}));
  provider->present(record_at("_acme-challenge.raw.example.test.", "example.test.", kValue2));

  const std::vector<RecordedRequest> requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].target == "/present");
  CHECK(!requests[0].header("authorization"));
  CHECK(json::parse(requests[0].body) ==
        json{{"domain", "raw.example.test"}, {"token", ""}, {"keyAuth", kValue2}});
}

TEST_CASE("httpreq turns a refusal into a DnsError with the status and the body",
          "[dns][httpreq]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  TinyHttpServer server([](const RecordedRequest&) {
    return CannedResponse{403, "zone is locked\nsecond line", "text/plain"};
  });
  auto provider = acme::make_dns_provider(settings_for("httpreq", {{"endpoint", server.url()}}));
  const auto error = dns_error_from([&] {
    provider->present(record_at("_acme-challenge.no.example.test.", "example.test.", kValue1));
  });
  REQUIRE(error);
  CHECK(error->provider() == "httpreq");
  CHECK(error->zone() == "example.test.");
  CHECK_THAT(error->what(), Catch::EndsWith("/present for _acme-challenge.no.example.test.: HTTP "
                                            "403: zone is locked"));
}

// ---- acme-dns ---------------------------------------------------------------------------------

namespace {

constexpr char kSubdomain[] = "d420c923-bbd7-4056-ab64-c3ca54c9b3cf";

// acme-dns's API in front of the shared BIND 9: /update keeps the two latest values of the
// subdomain (under acme-delegate.test) as acme-dns does; /register hands out one account.
class FakeAcmeDns {
 public:
  CannedResponse operator()(const RecordedRequest& request) {
    if (request.path() == "/register") {
      return {201, json{{"username", "new-user"},
                        {"password", "new-key"},
                        {"fulldomain", fulldomain()},
                        {"subdomain", kSubdomain},
                        {"allowfrom", json::array()}}
                       .dump()};
    }
    if (request.header("x-api-user") != "user-1" || request.header("x-api-key") != "key-1") {
      return {401, R"({"error": "forbidden"})"};
    }
    const json body = json::parse(request.body);
    if (body.at("subdomain") != kSubdomain) return {400, R"({"error": "bad_subdomain"})"};
    latest_.push_back(body.at("txt").get<std::string>());
    if (latest_.size() > 2) latest_.pop_front();
    std::string commands = "update delete " + fulldomain() + ". TXT\n";
    for (const std::string& value : latest_) {
      commands += "update add " + fulldomain() + ". 60 TXT \"" + value + "\"\n";
    }
    nsupdate(commands);
    return {200, json{{"txt", body.at("txt")}}.dump()};
  }
  static std::string fulldomain() { return std::string(kSubdomain) + ".acme-delegate.test"; }

 private:
  std::deque<std::string> latest_;
};

// lego's storage file with one account, for `domain`.
void write_storage(const fs::path& path, const std::string& domain, const std::string& user) {
  const json accounts = {{domain,
                          {{"username", user},
                           {"password", "key-1"},
                           {"fulldomain", FakeAcmeDns::fulldomain()},
                           {"subdomain", kSubdomain},
                           {"server_url", "https://auth.acme-dns.io"}}}};
  acmetool::pki::write_file_atomic(path, accounts.dump(), 0600);
}

}  // namespace

TEST_CASE("acme-dns updates the stored account's subdomain with its X-Api-User and X-Api-Key",
          "[dns][acme-dns][bind9]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  TempDir dir;
  const fs::path storage = dir.path() / "acme-dns.json";
  write_storage(storage, "acmedns.example.test", "user-1");
  FakeAcmeDns fake;
  TinyHttpServer server(std::ref(fake));
  auto provider = acme::make_dns_provider(settings_for(
      "acme-dns", {},
      {{"ACME_DNS_API_BASE", server.url()}, {"ACME_DNS_STORAGE_PATH", storage.string()}}));

  // Before the CNAME is followed the record is named after the domain; after, it is the
  // account's fulldomain itself. Both find the account.
  provider->present(record_at("_acme-challenge.acmedns.example.test.", "example.test.", kValue1));
  provider->present(record_at(FakeAcmeDns::fulldomain() + ".", "acme-delegate.test.", kValue2));
  provider->cleanup(record_at(FakeAcmeDns::fulldomain() + ".", "acme-delegate.test.", kValue2));

  CHECK(bind_txt(FakeAcmeDns::fulldomain() + ".") == std::vector<std::string>{kValue2, kValue1});
  const std::vector<RecordedRequest> requests = server.requests();
  REQUIRE(requests.size() == 2);  // cleanup sends nothing: acme-dns cannot delete
  for (size_t i = 0; i < 2; ++i) {
    CHECK(requests[i].method == "POST");
    CHECK(requests[i].target == "/update");
    CHECK(requests[i].header("x-api-user") == "user-1");
    CHECK(requests[i].header("x-api-key") == "key-1");
    CHECK(json::parse(requests[i].body) ==
          json{{"subdomain", kSubdomain}, {"txt", i == 0 ? kValue1 : kValue2}});
  }
}

TEST_CASE("acme-dns with one account given outright (Caddy's acmedns fields) needs no storage file",
          "[dns][acme-dns][bind9]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  FakeAcmeDns fake;
  TinyHttpServer server(std::ref(fake));
  auto provider = acme::make_dns_provider(settings_for(
      "acme-dns", {{"api_base", server.url()}, {"username", "user-1"}, {"password", "key-1"}, {"subdomain", kSubdomain}},
      {}));
  provider->present(record_at(FakeAcmeDns::fulldomain() + ".", "acme-delegate.test.", kValue1));
  CHECK(bind_txt(FakeAcmeDns::fulldomain() + ".") == std::vector<std::string>{kValue1});
  const std::vector<RecordedRequest> requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].target == "/update");
  CHECK(json::parse(requests[0].body) == json{{"subdomain", kSubdomain}, {"txt", kValue1}});
  // A username without its password is a configuration error naming the option.
  CHECK_THROWS_WITH(acme::make_dns_provider(settings_for("acme-dns", {{"api_base", server.url()}, {"username", "u"}}, {})),
                    Catch::Contains("missing option \"password\" (--dns-opt password=...)"));
}

TEST_CASE("acme-dns registers an unknown domain, saves the account and asks for the CNAME",
          "[dns][acme-dns]") {
  started_on_this_thread();  // endpoints call nsupdate from their own thread
  TempDir dir;
  const fs::path storage = dir.path() / "acme-dns.json";
  write_storage(storage, "other.example.test", "user-1");
  FakeAcmeDns fake;
  TinyHttpServer server(std::ref(fake));
  auto provider = acme::make_dns_provider(
      settings_for("acme-dns", {{"api_base", server.url()}, {"storage_path", storage.string()}}));

  const auto error = dns_error_from([&] {
    provider->present(record_at("_acme-challenge.new.example.test.", "example.test.", kValue1));
  });
  REQUIRE(error);
  CHECK(error->provider() == "acme-dns");
  CHECK_THAT(error->what(), Catch::Contains("\"_acme-challenge.new.example.test. CNAME " +
                                            FakeAcmeDns::fulldomain() + ".\""));
  const json saved = json::parse(acmetool::test::read_text(storage));
  CHECK(saved.at("other.example.test").at("username") == "user-1");  // kept
  CHECK(saved.at("new.example.test") == json{{"username", "new-user"},
                                             {"password", "new-key"},
                                             {"fulldomain", FakeAcmeDns::fulldomain()},
                                             {"subdomain", kSubdomain},
                                             {"server_url", server.url()}});
  CHECK((fs::status(storage).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].target == "/register");

  // The next run uses the saved account (this fake refuses its key: the refusal names the status).
  const auto refused = dns_error_from([&] {
    provider->present(record_at("_acme-challenge.new.example.test.", "example.test.", kValue1));
  });
  REQUIRE(refused);
  CHECK_THAT(refused->what(), Catch::Contains("HTTP 401"));
  REQUIRE(server.requests().size() == 2);
  CHECK(server.requests()[1].header("x-api-user") == "new-user");
}

// ---- PowerDNS ---------------------------------------------------------------------------------

namespace {

std::unique_ptr<acme::DnsProvider> pdns_provider(const std::string& api_key) {
  PdnsServer& pdns = PdnsServer::shared();
  return acme::make_dns_provider(
      settings_for("pdns", {{"api_url", pdns.api_url()}}, {{"PDNS_API_KEY", api_key}}));
}

std::vector<std::string> pdns_txt(const std::string& name) {
  return txt_values(PdnsServer::shared().dns_port(), name);
}

}  // namespace

TEST_CASE("pdns keeps both values at one name and cleanup removes only its own", "[dns][pdns]") {
  auto provider = pdns_provider(PdnsServer::shared().api_key());
  const std::string name = "_acme-challenge.two.pdns.test.";
  const auto first = record_at(name, "pdns.test.", kValue1);
  const auto second = record_at(name, "pdns.test.", kValue2);

  provider->present(first);
  CHECK(pdns_txt(name) == std::vector<std::string>{kValue1});
  provider->present(second);
  provider->present(second);  // twice is once
  CHECK(pdns_txt(name) == std::vector<std::string>{kValue2, kValue1});
  provider->cleanup(first);
  CHECK(pdns_txt(name) == std::vector<std::string>{kValue2});
  provider->cleanup(second);
  CHECK(pdns_txt(name).empty());
  provider->cleanup(second);  // already gone: not an error
}

TEST_CASE("pdns turns a wrong API key or an unknown zone into a DnsError", "[dns][pdns]") {
  struct Case {
    std::string api_key, zone, message;
  };
  const Case c = GENERATE(values<Case>({
      {"wrong-key", "pdns.test.", "HTTP 401: Unauthorized"},
      {"", "absent.test.", "HTTP 404"},
  }));
  auto provider = pdns_provider(c.api_key.empty() ? PdnsServer::shared().api_key() : c.api_key);
  const std::string name = "_acme-challenge.refused." + c.zone;
  const auto error = dns_error_from([&] { provider->present(record_at(name, c.zone, kValue1)); });
  REQUIRE(error);
  CHECK(error->provider() == "pdns");
  CHECK(error->zone() == c.zone);
  CHECK_THAT(error->what(), Catch::Contains("GET " + PdnsServer::shared().api_url() +
                                            "/api/v1/servers/localhost/zones/" + c.zone) &&
                                Catch::Contains(c.message));
  CHECK(pdns_txt(name).empty());
}

// ---- Cloudflare -------------------------------------------------------------------------------

namespace {

// Answers as Cloudflare's API sends them (developers.cloudflare.com/api), trimmed.
constexpr char kZonesAnswer[] = R"({
  "result": [{"id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "example.com", "status": "active",
              "paused": false, "type": "full", "name_servers": ["bob.ns.cloudflare.com"]}],
  "result_info": {"page": 1, "per_page": 50, "total_pages": 1, "count": 1, "total_count": 1},
  "success": true, "errors": [], "messages": []})";
constexpr char kNoZonesAnswer[] = R"({"result": [], "result_info": {"page": 1, "per_page": 50,
  "total_pages": 0, "count": 0, "total_count": 0}, "success": true, "errors": [], "messages": []})";
constexpr char kCreatedAnswer[] = R"({
  "result": {"id": "372e67954025e0ba6aaa6d586b9e0b59", "zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
             "zone_name": "example.com", "name": "_acme-challenge.www.example.com", "type": "TXT",
             "content": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM", "proxiable": false,
             "proxied": false, "ttl": 120, "locked": false},
  "success": true, "errors": [], "messages": []})";
constexpr char kFoundAnswer[] = R"({"result": [{"id": "9a7806061c88ada191ed06f989cc3dac",
  "type": "TXT", "name": "_acme-challenge.www.example.com", "ttl": 120}],
  "success": true, "errors": [], "messages": []})";
constexpr char kDeletedAnswer[] = R"({"result": {"id": "372e67954025e0ba6aaa6d586b9e0b59"},
  "success": true, "errors": [], "messages": []})";
constexpr char kAuthErrorAnswer[] = R"({"success": false, "errors": [{"code": 6003,
  "message": "Invalid request headers", "error_chain": [{"code": 6111,
  "message": "Invalid format for Authorization header"}]}], "messages": [], "result": null})";
constexpr char kDuplicateAnswer[] = R"({"result": null, "success": false, "errors": [{"code": 81058,
  "message": "An identical record already exists."}], "messages": []})";

acme::HttpResponse answer(long status, const char* body) { return {status, {}, body}; }

cloudflare::Config config_with(cloudflare::Credentials credentials) {
  return {"https://api.test/client/v4", std::move(credentials)};
}

const acme::TxtRecord kWww = {"_acme-challenge.www.example.com.", "example.com.", kValue1,
                              std::chrono::seconds(60)};

}  // namespace

TEST_CASE("cloudflare builds the v4 API's requests", "[dns][cloudflare]") {
  const auto config = config_with({"dns-token", "zone-token", "", ""});
  const acme::HttpRequest lookup = cloudflare::zone_lookup_request(config, "example.com.");
  CHECK(lookup.method == "GET");
  CHECK(lookup.url == "https://api.test/client/v4/zones?name=example.com&per_page=50");
  CHECK(lookup.headers[0].value == "Bearer zone-token");  // the Zone:Read token

  const acme::HttpRequest create = cloudflare::create_record_request(config, "z1", kWww);
  CHECK(create.method == "POST");
  CHECK(create.url == "https://api.test/client/v4/zones/z1/dns_records");
  CHECK(create.headers[0].value == "Bearer dns-token");
  CHECK(json::parse(create.body) == json{{"type", "TXT"},
                                         {"name", "_acme-challenge.www.example.com"},
                                         {"content", kValue1},
                                         {"ttl", 120}});  // raised from 60 to Cloudflare's minimum
  acme::TxtRecord long_lived = kWww;
  long_lived.ttl = std::chrono::seconds(300);
  CHECK(json::parse(cloudflare::create_record_request(config, "z1", long_lived).body)["ttl"] ==
        300);

  CHECK(cloudflare::find_record_request(config, "z1", kWww).url ==
        "https://api.test/client/v4/zones/z1/dns_records?type=TXT&name=_acme-challenge.www.example."
        "com&content=" +
            std::string(kValue1));
  const acme::HttpRequest remove = cloudflare::delete_record_request(config, "z1", "r1");
  CHECK(remove.method == "DELETE");
  CHECK(remove.url == "https://api.test/client/v4/zones/z1/dns_records/r1");

  // The global API key, when no token is set.
  const auto legacy =
      cloudflare::zone_lookup_request(config_with({"", "", "me@example.com", "k"}), "example.com.");
  CHECK(legacy.headers[0].name == "X-Auth-Email");
  CHECK(legacy.headers[0].value == "me@example.com");
  CHECK(legacy.headers[1].name == "X-Auth-Key");
  CHECK(legacy.headers[1].value == "k");
}

TEST_CASE("cloudflare reads zone and record ids from recorded answers", "[dns][cloudflare]") {
  CHECK(cloudflare::zone_id_from(answer(200, kZonesAnswer), "example.com.") ==
        "023e105f4ecef8ad9ca31a8372d0c353");
  CHECK(cloudflare::created_record_id(answer(200, kCreatedAnswer), kWww) ==
        "372e67954025e0ba6aaa6d586b9e0b59");
  CHECK(cloudflare::found_record_id(answer(200, kFoundAnswer), kWww) ==
        "9a7806061c88ada191ed06f989cc3dac");
  CHECK(cloudflare::found_record_id(answer(200, kNoZonesAnswer), kWww) == std::nullopt);
  CHECK(cloudflare::is_duplicate_record(answer(400, kDuplicateAnswer)));
  CHECK(!cloudflare::is_duplicate_record(answer(403, kAuthErrorAnswer)));
  CHECK_NOTHROW(cloudflare::check_deleted(answer(200, kDeletedAnswer), kWww));
  CHECK_NOTHROW(cloudflare::check_deleted(answer(404, kAuthErrorAnswer), kWww));  // already gone
}

TEST_CASE("cloudflare turns error documents and unknown zones into DnsErrors",
          "[dns][cloudflare]") {
  CHECK(cloudflare::api_failure(answer(400, kAuthErrorAnswer)) ==
        "HTTP 400: 6003 Invalid request headers; 6111 Invalid format for Authorization header");
  CHECK(cloudflare::api_failure(answer(200, R"({"success": false, "errors": []})")) ==
        "HTTP 200: {\"success\": false, \"errors\": []}");
  CHECK(cloudflare::api_failure(answer(502, "<html>Bad gateway</html>\n")) ==
        "HTTP 502: <html>Bad gateway</html>");
  CHECK(cloudflare::api_failure(answer(200, kCreatedAnswer)) == std::nullopt);

  const auto failed =
      dns_error_from([] { cloudflare::created_record_id(answer(403, kAuthErrorAnswer), kWww); });
  REQUIRE(failed);
  CHECK(failed->provider() == "cloudflare");
  CHECK(failed->zone() == "example.com.");
  CHECK_THAT(failed->what(), Catch::Contains("creating TXT _acme-challenge.www.example.com.: HTTP "
                                             "403: 6003 Invalid request headers"));
  const auto missing =
      dns_error_from([] { cloudflare::zone_id_from(answer(200, kNoZonesAnswer), "example.com."); });
  REQUIRE(missing);
  CHECK_THAT(missing->what(), Catch::Contains("zone example.com not found"));
}

TEST_CASE("cloudflare creates a record, remembers its id and deletes it, over a loopback API",
          "[dns][cloudflare]") {
  TinyHttpServer server([](const RecordedRequest& request) -> CannedResponse {
    if (request.header("authorization") != "Bearer dns-token") return {403, kAuthErrorAnswer};
    if (request.method == "GET" && request.path() == "/zones") return {200, kZonesAnswer};
    if (request.method == "GET") return {200, kFoundAnswer};
    if (request.method == "POST") return {200, kCreatedAnswer};
    return {200, kDeletedAnswer};
  });
  const auto make = [&] {
    return acme::make_dns_provider(settings_for("cloudflare", {{"base_url", server.url()}},
                                                {{"CLOUDFLARE_DNS_API_TOKEN", "dns-token"}}));
  };
  const std::string zone_path = "/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records";
  auto provider = make();
  provider->present(kWww);
  provider->cleanup(kWww);
  // A provider that did not create the record (an interrupted earlier run) looks it up first.
  make()->cleanup(kWww);

  std::vector<std::string> seen;
  for (const RecordedRequest& request : server.requests())
    seen.push_back(request.method + " " + request.target);
  CHECK(seen == std::vector<std::string>{
                    "GET /zones?name=example.com&per_page=50",
                    "POST " + zone_path,
                    "DELETE " + zone_path + "/372e67954025e0ba6aaa6d586b9e0b59",
                    "GET /zones?name=example.com&per_page=50",
                    "GET " + zone_path +
                        "?type=TXT&name=_acme-challenge.www.example.com&content=" + kValue1,
                    "DELETE " + zone_path + "/9a7806061c88ada191ed06f989cc3dac",
                });
}
