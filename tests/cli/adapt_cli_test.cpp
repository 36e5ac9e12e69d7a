// `acmetool validate` and `acmetool adapt` as a user runs them: exit codes, the one-line error,
// warnings on stderr, --envfile, --json and --pretty.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::run_acmetool;
using acmetool::test::TempDir;

namespace {

fs::path write(const TempDir& dir, const std::string& name, const std::string& text) {
  const fs::path path = dir.path() / name;
  std::ofstream(path) << text;
  return path;
}

const char* kValid =
    "{\n\temail ops@example.com\n}\n"
    "{$DOMAIN:example.com} {\n\t@api path /api/*\n\treverse_proxy @api localhost:9000\n\tfile_server\n}\n"
    "localhost:8443 {\n\trespond \"hi\" 200\n}\n";

}  // namespace

TEST_CASE("validate prints 'Valid configuration' and exits 0 for a good Caddyfile", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path caddyfile = write(dir, "Caddyfile", kValid);
  const CommandResult r = run_acmetool({"validate", "--config", caddyfile.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "Valid configuration\n");
  CHECK(r.err.empty());
}

TEST_CASE("validate exits 2 with one line naming file, line and the likely directive", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path caddyfile = write(dir, "Caddyfile", "example.com {\n\troot * /srv\n\trevers_proxy localhost:9000\n}\n");
  CommandResult r = run_acmetool({"validate", "-c", caddyfile.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "acmetool: " + caddyfile.string() +
                     ":3: unrecognized directive: revers_proxy (did you mean 'reverse_proxy'?)\n");

  const fs::path global = write(dir, "Global", "{\n\thttp_port eighty\n}\n:80 {\n}\n");
  r = run_acmetool({"validate", "-c", global.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: " + global.string() + ":2: http_port: invalid number 'eighty'\n");

  r = run_acmetool({"adapt", "-c", global.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "acmetool: " + global.string() + ":2: http_port: invalid number 'eighty'\n");
}

TEST_CASE("validate and adapt exit 1 when the Caddyfile or the environment file cannot be read", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path missing = dir.path() / "Nope";
  CommandResult r = run_acmetool({"validate", "-c", missing.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "acmetool: reading " + missing.string() + ": No such file or directory\n");

  const fs::path caddyfile = write(dir, "Caddyfile", kValid);
  r = run_acmetool({"adapt", "-c", caddyfile.string(), "--envfile", missing.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "acmetool: reading environment file " + missing.string() + ": No such file or directory\n");
  CHECK(r.out.empty());
}

TEST_CASE("validate with --envfile takes {$VAR} values from the file and exits 2 for a malformed one", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path caddyfile = write(dir, "Caddyfile", kValid);
  const fs::path env = write(dir, "site.env", "# site\nexport DOMAIN=\"shop.example.org\"\n");
  CommandResult r = run_acmetool({"adapt", "-c", caddyfile.string(), "--envfile", env.string()});
  REQUIRE(r.exit_code == 0);
  nlohmann::json config = nlohmann::json::parse(r.out);
  CHECK(config["sites"][0]["addresses"][0]["host"] == "shop.example.org");

  // The file wins over the process environment.
  r = run_acmetool({"adapt", "-c", caddyfile.string(), "--envfile", env.string()}, {{"DOMAIN", "env.example.net"}});
  CHECK(nlohmann::json::parse(r.out)["sites"][0]["addresses"][0]["host"] == "shop.example.org");
  r = run_acmetool({"adapt", "-c", caddyfile.string()}, {{"DOMAIN", "env.example.net"}});
  CHECK(nlohmann::json::parse(r.out)["sites"][0]["addresses"][0]["host"] == "env.example.net");

  const fs::path bad = write(dir, "bad.env", "DOMAIN=a\nnot a pair\n");
  r = run_acmetool({"validate", "-c", caddyfile.string(), "--envfile", bad.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: " + bad.string() + ":2: line should be in KEY=VALUE format\n");
}

TEST_CASE("warnings go to stderr with their location, and -q silences them", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path caddyfile =
      write(dir, "Caddyfile", "example.com {\n\tbasicauth {\n\t\tbob $2a$14$x\n\t}\n\trespond ok\n}\n");
  CommandResult r = run_acmetool({"validate", "-c", caddyfile.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "Valid configuration\n");
  CHECK(r.err == "acmetool: warning: " + caddyfile.string() +
                     ":2: the 'basicauth' directive is deprecated, please use 'basic_auth' instead\n");
  r = run_acmetool({"validate", "-q", "-c", caddyfile.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());

  r = run_acmetool({"validate", "--json", "-q", "-c", caddyfile.string()});
  CHECK(r.exit_code == 0);
  const nlohmann::json out = nlohmann::json::parse(r.out);
  CHECK(out["valid"] == true);
  CHECK(out["sites"] == 1);
  CHECK(out["warnings"][0]["where"] == caddyfile.string() + ":2");
}

TEST_CASE("adapt prints one JSON line, or indented JSON with --pretty", "[cli][caddyfile]") {
  TempDir dir;
  const fs::path caddyfile = write(dir, "Caddyfile", kValid);
  CommandResult r = run_acmetool({"adapt", "-c", caddyfile.string()});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  REQUIRE_FALSE(r.out.empty());
  CHECK(r.out.find('\n') == r.out.size() - 1);
  const nlohmann::json config = nlohmann::json::parse(r.out);
  CHECK(config["global"]["email"] == "ops@example.com");
  REQUIRE(config["sites"].size() == 2);
  CHECK(config["sites"][0]["addresses"][0]["cert_source"] == "acme");
  CHECK(config["sites"][0]["routes"][0]["handler"]["handler"] == "reverse_proxy");
  CHECK(config["sites"][0]["routes"][0]["matcher"] == "@api");
  CHECK(config["sites"][1]["addresses"][0]["cert_source"] == "internal");
  CHECK(config["sites"][1]["addresses"][0]["listeners"][0] == ":8443");

  const CommandResult pretty = run_acmetool({"adapt", "-c", caddyfile.string(), "--pretty", "--validate"});
  REQUIRE(pretty.exit_code == 0);
  CHECK(pretty.out.starts_with("{\n  \"global\": {\n    \"email\": \"ops@example.com\"\n  },\n"));
  CHECK(nlohmann::json::parse(pretty.out) == config);
}
