// The trust-store installer against the real stores of this machine: the Debian system store
// (checked with openssl verify), NSS databases in a temp HOME (checked with certutil -L), a Java
// keystore (checked with keytool -list); and the other distributions' layouts in a temp root
// prefix. Runs as root. Every test that touches the system store removes its root again in a
// destructor.
#include "acmetool/pki/trust.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "acmetool/pki/error.h"
#include "acmetool/pki/storage.h"
#include "process.h"

namespace fs = std::filesystem;
using acmetool::pki::RootCertificate;
using acmetool::pki::TrustAction;
using acmetool::pki::TrustEntry;
using acmetool::pki::TrustOptions;
using acmetool::pki::TrustOutcome;
using acmetool::pki::TrustStore;
using acmetool::test::CommandResult;
using acmetool::test::read_text;
using acmetool::test::run_command;
using acmetool::test::TempDir;

namespace {

const fs::path kAnchors = "/usr/local/share/ca-certificates";
const fs::path kBundle = "/etc/ssl/certs/ca-certificates.crt";

// "test-<pid>-<n>": unique per test, and a crashed run's leftovers can be told by the dead pid.
std::string unique_ca_name() {
  static int counter = 0;
  return "test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

CommandResult run_ok(const std::vector<std::string>& argv) {
  const CommandResult r = run_command(argv);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

// A P-256 key and a two-day certificate for `subject`, made with `openssl req -x509 ... extra`.
void make_certificate(const fs::path& key, const fs::path& cert, const std::string& subject,
                      const std::vector<std::string>& extra) {
  std::vector<std::string> argv{
      "openssl", "req",     "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
      "-nodes",  "-keyout", key,     "-out",    cert, "-days",    "2",
      "-subj",   subject};
  argv.insert(argv.end(), extra.begin(), extra.end());
  run_ok(argv);
}

// A throwaway root CA and a leaf for localhost signed by it.
struct TestCa {
  TempDir dir{"acmetool-trust"};
  std::string ca_name = unique_ca_name();
  fs::path root_crt = dir.path() / "root.crt";
  fs::path leaf_crt = dir.path() / "leaf.crt";
  RootCertificate root;

  TestCa() {
    const fs::path root_key = dir.path() / "root.key";
    make_certificate(root_key, root_crt, "/CN=acmetool trust test " + ca_name,
                     {"-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                      "keyUsage=critical,keyCertSign,cRLSign"});
    make_certificate(
        dir.path() / "leaf.key", leaf_crt, "/CN=localhost",
        {"-CA", root_crt, "-CAkey", root_key, "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=CA:FALSE"});
    root = acmetool::pki::parse_root_certificate(ca_name, read_text(root_crt), root_crt);
  }
};

// Removes the root from every store `options` names when the test ends, passed or failed.
class TrustGuard {
 public:
  TrustGuard(const RootCertificate& root, TrustOptions options)
      : root_(root), options_(std::move(options)) {
    options_.dry_run = false;
  }
  ~TrustGuard() {
    try {
      acmetool::pki::apply_trust(TrustAction::Remove, root_, options_);
    } catch (...) {
      // Nothing more to do in a destructor; the stale-root sweep of the next run catches leftovers.
    }
  }
  TrustGuard(const TrustGuard&) = delete;
  TrustGuard& operator=(const TrustGuard&) = delete;

 private:
  RootCertificate root_;
  TrustOptions options_;
};

// Anchor files that an earlier run of these tests left behind when it was killed (its pid is gone).
void remove_stale_test_roots() {
  bool removed = false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kAnchors, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("acmetool-test-")) continue;
    const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str() + 14));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
      removed = fs::remove(entry.path(), ec) || removed;
    }
  }
  if (removed) run_ok({"update-ca-certificates", "--fresh"});
}

bool verifies_with_system_store(const fs::path& leaf) {
  return run_command({"openssl", "verify", "-CAfile", kBundle, leaf}).exit_code == 0 &&
         run_command({"openssl", "verify", "-CApath", "/etc/ssl/certs", leaf}).exit_code == 0;
}

// The links update-ca-certificates made in /etc/ssl/certs for the root: NAME.pem and its hash link.
int links_to(const RootCertificate& root) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/etc/ssl/certs")) {
    if (!entry.is_symlink()) continue;
    const std::string target = fs::read_symlink(entry.path()).filename().string();
    const std::string name = entry.path().filename().string();
    if (target.starts_with(root.entry_name()) || name.starts_with(root.entry_name())) ++count;
  }
  return count;
}

bool bundle_contains(const RootCertificate& root) {
  const std::string body = root.pem.substr(root.pem.find('\n') + 1, 64);
  return read_text(kBundle).find(body) != std::string::npos;
}

TrustOptions only(TrustStore store) {
  TrustOptions options;
  options.stores = {store};
  return options;
}

TrustEntry single(const std::vector<TrustEntry>& entries) {
  REQUIRE(entries.size() == 1);
  INFO(entries[0].reason);
  return entries[0];
}

bool nss_lists(const fs::path& db, const std::string& nickname) {
  return run_command({"certutil", "-L", "-d", "sql:" + db.string(), "-n", nickname}).exit_code == 0;
}

void make_nss_db(const fs::path& dir) {
  fs::create_directories(dir);
  run_ok({"certutil", "-N", "--empty-password", "-d", "sql:" + dir.string()});
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("a root certificate is read into its fingerprint, common name and entry name",
          "[trust]") {
  const TestCa ca;
  const CommandResult fp =
      run_ok({"openssl", "x509", "-in", ca.root_crt, "-noout", "-fingerprint", "-sha256"});
  std::string expected;
  for (char c : fp.out.substr(fp.out.find('=') + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      expected += static_cast<char>(std::tolower(c));
    }
  }
  CHECK(ca.root.sha256 == expected);
  CHECK(ca.root.common_name == "acmetool trust test " + ca.ca_name);
  CHECK(ca.root.entry_name() == "acmetool-" + ca.ca_name + "-" + expected.substr(0, 16));
  CHECK(ca.root.pem == read_text(ca.root_crt));
}

TEST_CASE("a leaf certificate or garbage is refused as a trust anchor", "[trust]") {
  const TestCa ca;
  CHECK_THROWS_WITH(
      acmetool::pki::parse_root_certificate("x", read_text(ca.leaf_crt), ca.leaf_crt),
      Catch::Contains("not a CA certificate") && Catch::Contains(ca.leaf_crt.string()));
  CHECK_THROWS_AS(acmetool::pki::parse_root_certificate("x", "not a certificate"),
                  acmetool::pki::CryptoError);
}

TEST_CASE("trust makes the Debian system store accept the root, and untrust takes it out again",
          "[trust][system]") {
  remove_stale_test_roots();
  const TestCa ca;
  const TrustOptions options = only(TrustStore::System);
  const TrustGuard guard(ca.root, options);
  const fs::path anchor = kAnchors / (ca.root.entry_name() + ".crt");
  REQUIRE_FALSE(verifies_with_system_store(ca.leaf_crt));

  TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  CHECK(e.location == anchor.string());
  CHECK(e.command == "install -m 644 " + ca.root_crt.string() + " " + anchor.string() +
                         " && update-ca-certificates");
  CHECK(read_text(anchor) == ca.root.pem);
  CHECK((fs::status(anchor).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
         fs::perms::others_read));
  CHECK(bundle_contains(ca.root));
  CHECK(links_to(ca.root) == 2);
  CHECK(verifies_with_system_store(ca.leaf_crt));

  e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Already);

  e = single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  CHECK_FALSE(fs::exists(anchor));
  CHECK_FALSE(bundle_contains(ca.root));
  CHECK(links_to(ca.root) == 0);
  CHECK_FALSE(verifies_with_system_store(ca.leaf_crt));

  e = single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Already);
}

TEST_CASE("a dry run plans the same changes and changes nothing", "[trust][system][nss]") {
  const TestCa ca;
  const TempDir home;
  TrustOptions options;
  options.stores = {TrustStore::System, TrustStore::Nss};
  options.home = home.path();
  const TrustGuard guard(ca.root, options);
  const fs::path anchor = kAnchors / (ca.root.entry_name() + ".crt");
  const fs::path nssdb = home.path() / ".pki/nssdb";
  const std::string bundle_before = read_text(kBundle);

  options.dry_run = true;
  std::vector<TrustEntry> plan = acmetool::pki::apply_trust(TrustAction::Install, ca.root, options);
  REQUIRE(plan.size() == 2);
  CHECK(plan[0].outcome == TrustOutcome::Changed);
  CHECK(plan[0].location == anchor.string());
  CHECK(plan[1].outcome == TrustOutcome::Changed);
  CHECK(plan[1].location == nssdb.string());
  CHECK(plan[1].command.starts_with("mkdir -p " + nssdb.string() +
                                    " && certutil -N --empty-password"));
  CHECK_FALSE(fs::exists(anchor));
  CHECK_FALSE(fs::exists(home.path() / ".pki"));
  CHECK(read_text(kBundle) == bundle_before);

  options.dry_run = false;
  acmetool::pki::apply_trust(TrustAction::Install, ca.root, options);
  REQUIRE(fs::exists(anchor));
  REQUIRE(nss_lists(nssdb, ca.root.entry_name()));
  options.dry_run = true;
  plan = acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options);
  REQUIRE(plan.size() == 2);
  CHECK(plan[0].outcome == TrustOutcome::Changed);
  CHECK(plan[0].command == "rm -f " + anchor.string() + " && update-ca-certificates");
  CHECK(plan[1].outcome == TrustOutcome::Changed);
  CHECK(fs::exists(anchor));
  CHECK(nss_lists(nssdb, ca.root.entry_name()));
}

TEST_CASE("trust adds the root to the user's NSS database and every Firefox profile",
          "[trust][nss]") {
  const TestCa ca;
  const TempDir home;
  const fs::path nssdb = home.path() / ".pki/nssdb";
  const fs::path firefox = home.path() / ".mozilla/firefox/abcd1234.default-release";
  const fs::path snap = home.path() / "snap/firefox/common/.mozilla/firefox/efgh5678.default";
  make_nss_db(firefox);
  make_nss_db(snap);
  fs::create_directories(home.path() /
                         ".mozilla/firefox/Crash Reports");  // no cert9.db: not a profile
  TrustOptions options = only(TrustStore::Nss);
  options.home = home.path();
  const std::string nick = ca.root.entry_name();

  std::vector<TrustEntry> entries =
      acmetool::pki::apply_trust(TrustAction::Install, ca.root, options);
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].location == nssdb.string());
  CHECK(entries[1].location == firefox.string());
  CHECK(entries[2].location == snap.string());
  for (const fs::path& db : {nssdb, firefox, snap}) {
    INFO(db);
    CHECK(nss_lists(db, nick));
    const CommandResult list = run_ok({"certutil", "-L", "-d", "sql:" + db.string()});
    CHECK(list.out.find(nick) != std::string::npos);
    CHECK(list.out.find("C,,") != std::string::npos);
  }
  for (const TrustEntry& e : entries) CHECK(e.outcome == TrustOutcome::Changed);

  for (const TrustEntry& e : acmetool::pki::apply_trust(TrustAction::Install, ca.root, options)) {
    CHECK(e.outcome == TrustOutcome::Already);
  }
  for (const TrustEntry& e : acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options)) {
    CHECK(e.outcome == TrustOutcome::Changed);
  }
  for (const fs::path& db : {nssdb, firefox, snap}) CHECK_FALSE(nss_lists(db, nick));
  for (const TrustEntry& e : acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options)) {
    CHECK(e.outcome == TrustOutcome::Already);
  }
}

TEST_CASE("untrust with no NSS database has nothing to do and creates none", "[trust][nss]") {
  const TestCa ca;
  const TempDir home;
  TrustOptions options = only(TrustStore::Nss);
  options.home = home.path();
  const TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Already);
  CHECK_FALSE(fs::exists(home.path() / ".pki"));
}

TEST_CASE("a missing certutil fails with the commands to run instead", "[trust][nss]") {
  const TestCa ca;
  const TempDir home;
  TrustOptions options = only(TrustStore::Nss);
  options.home = home.path();
  options.certutil = (home.path() / "no-certutil").string();
  const TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Failed);
  CHECK(e.reason == options.certutil + " not found (install libnss3-tools, or nss-tools)");
  CHECK(e.command.find("certutil -A -d sql:" + (home.path() / ".pki/nssdb").string() +
                       " -t C,, -n " + ca.root.entry_name() + " -i " + ca.root_crt.string()) !=
        std::string::npos);
  CHECK_FALSE(fs::exists(home.path() / ".pki"));
}

TEST_CASE(
    "trust imports the root into a Java keystore with keytool and untrust deletes only that alias",
    "[trust][java]") {
  const TestCa ca;
  const TempDir java_home;
  // A copy of the real JDK's cacerts, changed by the real keytool: the system keystore stays as it
  // is.
  const CommandResult which = run_ok({"sh", "-c", "readlink -f \"$(command -v keytool)\""});
  const fs::path keytool = which.out.substr(0, which.out.size() - 1);
  fs::create_directories(java_home.path() / "bin");
  fs::create_symlink(keytool, java_home.path() / "bin/keytool");
  const fs::path keystore = java_home.path() / "lib/security/cacerts";
  fs::create_directories(keystore.parent_path());
  fs::copy_file(keytool.parent_path().parent_path() / "lib/security/cacerts", keystore);
  TrustOptions options = only(TrustStore::Java);
  options.java_home = java_home.path();
  const auto list = [&] {
    return run_command({keytool.string(), "-list", "-keystore", keystore.string(), "-storepass",
                        "changeit"})
        .out;
  };
  const std::string before = list();

  TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  CHECK(e.location == keystore.string());
  CHECK(list().find(ca.root.entry_name() + ",") != std::string::npos);
  CHECK(single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options)).outcome ==
        TrustOutcome::Already);

  e = single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  const std::string after = list();
  CHECK(after.find(ca.root.entry_name()) == std::string::npos);
  // Same entries as before (the listing's header line names the count).
  CHECK(after.substr(0, after.find("\n\n")) == before.substr(0, before.find("\n\n")));
  CHECK(single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options)).outcome ==
        TrustOutcome::Already);
}

TEST_CASE("without Java the java store is skipped with a note", "[trust][java]") {
  const TestCa ca;
  const TempDir empty;
  const std::string path = std::getenv("PATH");
  const char* java_home = std::getenv("JAVA_HOME");
  const std::optional<std::string> saved_java_home =
      java_home ? std::optional<std::string>(java_home) : std::nullopt;
  ::setenv("PATH", empty.path().c_str(), 1);
  ::unsetenv("JAVA_HOME");
  const TrustEntry e =
      single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, only(TrustStore::Java)));
  ::setenv("PATH", path.c_str(), 1);
  if (saved_java_home) ::setenv("JAVA_HOME", saved_java_home->c_str(), 1);
  CHECK(e.outcome == TrustOutcome::Skipped);
  CHECK(e.reason == "no Java found (JAVA_HOME is not set and keytool is not on PATH)");
}

TEST_CASE("the system store's layout is detected from os-release or the anchor directories",
          "[trust][system]") {
  struct Case {
    std::string os_release;  // written to etc/os-release ("" for none)
    std::string directory;   // created under the prefix ("" for none)
    std::string anchor;      // expected anchor file, relative to the prefix, without the entry name
  };
  const Case c = GENERATE(values<Case>({
      {"ID=debian\n", "", "usr/local/share/ca-certificates/.crt"},
      {"NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n", "", "usr/local/share/ca-certificates/.crt"},
      {"ID=alpine\n", "", "usr/local/share/ca-certificates/.crt"},
      {"ID=\"fedora\"\n", "", "etc/pki/ca-trust/source/anchors/.pem"},
      {"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", "",
       "etc/pki/ca-trust/source/anchors/.pem"},
      {"ID=arch\n", "", "etc/ca-certificates/trust-source/anchors/.crt"},
      {"ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n", "", "etc/pki/trust/anchors/.pem"},
      {"ID=\"sles\"\n", "", "etc/pki/trust/anchors/.pem"},
      {"", "etc/pki/ca-trust/source/anchors", "etc/pki/ca-trust/source/anchors/.pem"},
      {"", "etc/pki/trust/anchors", "etc/pki/trust/anchors/.pem"},
      {"ID=gentoo\n", "usr/local/share/ca-certificates", "usr/local/share/ca-certificates/.crt"},
  }));
  INFO(c.os_release << c.directory);
  const TestCa ca;
  const TempDir prefix;
  if (!c.os_release.empty()) write(prefix.path() / "etc/os-release", c.os_release);
  if (!c.directory.empty()) fs::create_directories(prefix.path() / c.directory);
  TrustOptions options = only(TrustStore::System);
  options.root_prefix = prefix.path();
  const fs::path relative = c.anchor;
  const fs::path anchor = prefix.path() / relative.parent_path() /
                          (ca.root.entry_name() + relative.filename().string());

  TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  CHECK(e.location == anchor.string());
  CHECK(read_text(anchor) == ca.root.pem);
  CHECK(single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options)).outcome ==
        TrustOutcome::Already);
  e = single(acmetool::pki::apply_trust(TrustAction::Remove, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Changed);
  CHECK_FALSE(fs::exists(anchor));
}

TEST_CASE("an unknown system without anchor directories is skipped with a reason",
          "[trust][system]") {
  const TestCa ca;
  const TempDir prefix;
  write(prefix.path() / "usr/lib/os-release", "ID=gentoo\n");
  TrustOptions options = only(TrustStore::System);
  options.root_prefix = prefix.path();
  const TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Skipped);
  CHECK(e.reason.starts_with("no supported system trust store found"));
}

TEST_CASE("an anchor directory that cannot be written fails with the commands to run instead",
          "[trust][system]") {
  const TestCa ca;
  const TempDir prefix;
  write(prefix.path() / "etc/os-release", "ID=debian\n");
  write(prefix.path() / "usr/local/share/ca-certificates", "a file where the directory should be");
  TrustOptions options = only(TrustStore::System);
  options.root_prefix = prefix.path();
  const fs::path anchor =
      prefix.path() / "usr/local/share/ca-certificates" / (ca.root.entry_name() + ".crt");
  const TrustEntry e = single(acmetool::pki::apply_trust(TrustAction::Install, ca.root, options));
  CHECK(e.outcome == TrustOutcome::Failed);
  CHECK(e.reason.find("usr/local/share/ca-certificates") != std::string::npos);
  CHECK(e.reason.find("Not a directory") != std::string::npos);
  CHECK(e.command == "install -m 644 " + ca.root_crt.string() + " " + anchor.string() +
                         " && update-ca-certificates");
}

TEST_CASE("a rotated root gets its own names, and removing it leaves the old root trusted",
          "[trust][nss]") {
  const TestCa old_ca;
  TestCa new_ca;
  new_ca.root =
      acmetool::pki::parse_root_certificate(old_ca.ca_name, new_ca.root.pem, new_ca.root_crt);
  REQUIRE(old_ca.root.entry_name() != new_ca.root.entry_name());
  const TempDir home, prefix;
  write(prefix.path() / "etc/os-release", "ID=debian\n");
  TrustOptions options;
  options.stores = {TrustStore::System, TrustStore::Nss};
  options.home = home.path();
  options.root_prefix = prefix.path();
  acmetool::pki::apply_trust(TrustAction::Install, old_ca.root, options);
  acmetool::pki::apply_trust(TrustAction::Install, new_ca.root, options);
  acmetool::pki::apply_trust(TrustAction::Remove, new_ca.root, options);

  const fs::path anchors = prefix.path() / "usr/local/share/ca-certificates";
  CHECK(fs::exists(anchors / (old_ca.root.entry_name() + ".crt")));
  CHECK_FALSE(fs::exists(anchors / (new_ca.root.entry_name() + ".crt")));
  CHECK(nss_lists(home.path() / ".pki/nssdb", old_ca.root.entry_name()));
  CHECK_FALSE(nss_lists(home.path() / ".pki/nssdb", new_ca.root.entry_name()));
}

TEST_CASE("trust.json records where the root was installed, and removal clears it",
          "[trust][storage]") {
  const TestCa ca;
  const TempDir dir;
  acmetool::pki::FileStorage storage(dir.path());
  const auto entry = [&](TrustStore store, TrustOutcome outcome, const std::string& location) {
    TrustEntry e;
    e.store = store;
    e.outcome = outcome;
    e.location = location;
    e.name = ca.root.entry_name();
    return e;
  };
  const TrustEntry system = entry(TrustStore::System, TrustOutcome::Changed, "/anchors/a.crt");
  const TrustEntry nss = entry(TrustStore::Nss, TrustOutcome::Already, "/home/u/.pki/nssdb");
  const TrustEntry java =
      entry(TrustStore::Java, TrustOutcome::Failed, "/jdk/lib/security/cacerts");

  acmetool::pki::record_trust(storage, TrustAction::Install, ca.root, {system, nss, java});
  acmetool::pki::record_trust(storage, TrustAction::Install, ca.root, {system});
  CHECK(storage.exists("pki/authorities/" + ca.ca_name + "/trust.json"));
  auto record = acmetool::pki::load_trust_record(storage, ca.ca_name);
  REQUIRE(record.size() == 2);
  CHECK(record[0].store == TrustStore::Nss);
  CHECK(record[0].location == "/home/u/.pki/nssdb");
  CHECK(record[1].store == TrustStore::System);
  CHECK(record[1].location == "/anchors/a.crt");
  CHECK(record[1].name == ca.root.entry_name());
  CHECK(record[1].sha256 == ca.root.sha256);

  acmetool::pki::record_trust(storage, TrustAction::Remove, ca.root, {system});
  record = acmetool::pki::load_trust_record(storage, ca.ca_name);
  REQUIRE(record.size() == 1);
  CHECK(record[0].store == TrustStore::Nss);
  acmetool::pki::record_trust(storage, TrustAction::Remove, ca.root, {nss});
  CHECK(acmetool::pki::load_trust_record(storage, ca.ca_name).empty());
  CHECK_FALSE(storage.exists(acmetool::pki::trust_record_key(ca.ca_name)));

  storage.store(acmetool::pki::trust_record_key(ca.ca_name), "{not json");
  CHECK_THROWS_AS(acmetool::pki::load_trust_record(storage, ca.ca_name), acmetool::pki::Error);
}
