#include "ocsp_responder.h"

#include <ctime>
#include <stdexcept>

#include "fixture_util.h"
#include "http.h"

namespace fs = std::filesystem;
using std::chrono::system_clock;

namespace acmetool::test {
namespace {

constexpr std::chrono::seconds kStartTimeout{5};
constexpr std::chrono::seconds kOpensslTimeout{10};
constexpr std::chrono::days kLifetime{30};

// Runs the openssl CLI; throws with its output when it fails.
void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult result = run_command(argv, "", {}, kOpensslTimeout);
  if (result.exit_code != 0) {
    throw std::runtime_error("openssl " + args.front() + " failed (exit " +
                             std::to_string(result.exit_code) + "): " + result.out + result.err);
  }
}

// A day ago as `openssl ca -startdate` takes it (UTCTime, YYMMDDHHMMSSZ).
std::string yesterday() {
  const std::time_t t = system_clock::to_time_t(system_clock::now() - std::chrono::days(1));
  std::tm parts{};
  gmtime_r(&t, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%y%m%d%H%M%SZ", &parts);
  return text;
}

// `openssl ca` keeps its database (index.txt) in the format `openssl ocsp -index` reads.
std::string ca_config(const fs::path& dir) {
  std::string cnf = "[ca]\ndefault_ca = test_ca\n\n[test_ca]\n";
  cnf += "database = " + (dir / "index.txt").string() + "\n";
  cnf += "new_certs_dir = " + (dir / "issued").string() + "\n";
  cnf += "serial = " + (dir / "serial").string() + "\n";
  cnf += "default_md = sha256\npolicy = any_name\nunique_subject = no\n\n";
  cnf += "[any_name]\ncommonName = supplied\n\n";
  cnf += "[req]\ndistinguished_name = req_dn\nprompt = no\n\n[req_dn]\n";
  return cnf;
}

// The extensions every end-entity certificate here has, in an -extfile section "ext".
std::string end_entity_extensions(const std::string& extended_key_usage) {
  std::string ext = "[ext]\nbasicConstraints = critical,CA:FALSE\n";
  ext += "keyUsage = critical,digitalSignature\n";
  ext += "extendedKeyUsage = " + extended_key_usage + "\n";
  ext += "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";
  return ext;
}

std::string leaf_extensions(const std::string& name, const std::string& ocsp_url) {
  std::string ext = end_entity_extensions("serverAuth") + "subjectAltName = DNS:" + name + "\n";
  if (!ocsp_url.empty()) ext += "authorityInfoAccess = OCSP;URI:" + ocsp_url + "\n";
  return ext;
}

const char* signer_name(OcspSigner signer) {
  switch (signer) {
    case OcspSigner::Ca:
      return "ca";
    case OcspSigner::Delegated:
      return "delegated-responder";
    case OcspSigner::Undelegated:
      return "undelegated-responder";
    case OcspSigner::OtherCa:
      return "other-ca";
  }
  return "ca";
}

}  // namespace

OcspResponder::OcspResponder(OcspResponderOptions options)
    : dir_("acmetool-ocsp"), options_(std::move(options)) {
  start_with_retries(
      [&] {
        port_ = free_port();
        work_ = dir_.path() / ("port-" + std::to_string(port_));
        make_pki();
        start_responder();
        wait_until_ready();
      },
      [&] { responder_.reset(); });
}

std::string OcspResponder::url() const { return "http://" + loopback(port_); }

pki::CertificateChain OcspResponder::chain(const std::string& name) const {
  return pki::certificates_from_pem(read_text(leaf_file(name)) + read_text(ca_file()), name);
}

fs::path OcspResponder::leaf_file(const std::string& name) const { return work_ / (name + ".crt"); }
fs::path OcspResponder::ca_file() const { return work_ / "ca.crt"; }
fs::path OcspResponder::signer_file() const {
  return work_ / (std::string(signer_name(options_.signer)) + ".crt");
}

void OcspResponder::stop() {
  if (responder_) responder_->stop();
}

std::string OcspResponder::log_tail() const {
  return test::log_tail("openssl ocsp", work_ / "ocsp.log");
}

std::string OcspResponder::file(const std::string& name) const { return (work_ / name).string(); }

void OcspResponder::make_pki() {
  fs::create_directories(work_ / "issued");
  write_file(file("ca.cnf"), ca_config(work_));
  write_file(file("index.txt"), "");
  write_file(file("serial"), "1000\n");

  const std::string ca_extensions =
      "[ext]\nbasicConstraints = critical,CA:TRUE\n"
      "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n";
  issue("ca", ca_extensions, kLifetime);
  for (const OcspTestLeaf& leaf : options_.leaves) {
    std::string ocsp_url = leaf.ocsp_url.empty() ? url() : leaf.ocsp_url;
    if (!leaf.with_ocsp_url) ocsp_url.clear();
    issue(leaf.name, leaf_extensions(leaf.name, ocsp_url), kLifetime);
    if (leaf.revoked) {
      openssl({"ca", "-batch", "-config", file("ca.cnf"), "-cert", file("ca.crt"), "-keyfile",
               file("ca.key"), "-revoke", file(leaf.name + ".crt"), "-crl_reason",
               "keyCompromise"});
    }
  }

  const std::string signer = signer_name(options_.signer);
  if (options_.signer == OcspSigner::Delegated) {
    issue(signer, end_entity_extensions("OCSPSigning"), options_.signer_lifetime);
  } else if (options_.signer == OcspSigner::Undelegated) {
    issue(signer, end_entity_extensions("serverAuth"), options_.signer_lifetime);
  } else if (options_.signer == OcspSigner::OtherCa) {
    // Self-signed and outside this CA's database.
    openssl({"req", "-config", file("ca.cnf"), "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", file(signer + ".key"), "-out",
             file(signer + ".crt"), "-subj", "/CN=Unrelated Test CA", "-days", "30", "-addext",
             "basicConstraints=critical,CA:TRUE"});
  }
}

void OcspResponder::issue(const std::string& name, const std::string& extensions,
                          std::chrono::days lifetime) {
  write_file(file(name + ".ext"), extensions);
  openssl({"req", "-config", file("ca.cnf"), "-new", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:P-256", "-nodes", "-keyout", file(name + ".key"), "-out",
           file(name + ".csr"), "-subj", "/CN=" + name});
  // Valid from a day ago; `-days` counts from now.
  std::vector<std::string> args = {"ca", "-batch", "-notext", "-config", file("ca.cnf")};
  args.insert(args.end(), {"-in", file(name + ".csr"), "-out", file(name + ".crt")});
  args.insert(args.end(), {"-extfile", file(name + ".ext"), "-extensions", "ext"});
  args.insert(args.end(), {"-startdate", yesterday(), "-days", std::to_string(lifetime.count())});
  args.insert(args.end(), {"-keyfile", file("ca.key")});
  if (name == "ca") {
    args.push_back("-selfsign");
  } else {
    args.insert(args.end(), {"-cert", file("ca.crt")});
  }
  openssl(args);
}

void OcspResponder::start_responder() {
  const std::string signer = signer_name(options_.signer);
  // -ignore_err keeps the responder serving after a request it cannot parse; without -nrequest
  // it serves until stopped.
  std::vector<std::string> argv = {"openssl", "ocsp", "-ignore_err", "-port",
                                   std::to_string(port_)};
  argv.insert(argv.end(), {"-index", file("index.txt"), "-CA", file("ca.crt")});
  argv.insert(argv.end(), {"-rsigner", file(signer + ".crt"), "-rkey", file(signer + ".key")});
  if (options_.next_update.count() > 0) {
    argv.insert(argv.end(), {"-nmin", std::to_string(options_.next_update.count())});
  }
  responder_ = ChildProcess::start(argv, file("ocsp.log"));
}

void OcspResponder::wait_until_ready() {
  std::string not_ready = "no answer yet";
  const auto ready = [&] {
    if (!responder_->running()) {
      if (read_text(file("ocsp.log")).find("Address already in use") != std::string::npos) {
        throw PortConflict("starting openssl ocsp: port " + std::to_string(port_) + " was taken");
      }
      throw std::runtime_error("starting openssl ocsp: it exited early\n" + log_tail());
    }
    try {
      // An empty path is a malformed request, which the responder answers with 200 and an
      // OCSPResponse saying so.
      const HttpResponse response = http_get(url() + "/", std::chrono::seconds(1));
      not_ready = "GET / answered HTTP " + std::to_string(response.status);
      return response.status == 200;
    } catch (const HttpError& e) {
      not_ready = e.what();
      return false;
    }
  };
  if (!wait_until(ready, kStartTimeout)) {
    throw std::runtime_error("starting openssl ocsp: not ready after 5 s: " + not_ready + "\n" +
                             log_tail());
  }
}

}  // namespace acmetool::test
