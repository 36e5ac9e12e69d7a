#include "pebble.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "fixture_util.h"
#include "http.h"

namespace fs = std::filesystem;

namespace acmetool::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kProbeTimeout = std::chrono::seconds(1);
constexpr const char* kPebble = "/usr/bin/pebble";
constexpr const char* kChalltestsrv = "/usr/bin/pebble-challtestsrv";

void run_checked(const std::vector<std::string>& argv, const std::string& what) {
  const CommandResult result = run_command(argv, "", {}, std::chrono::seconds(30));
  if (result.exit_code != 0) {
    throw std::runtime_error(what + ": " + argv[0] + " exited " + std::to_string(result.exit_code) +
                             ": " + result.err.substr(0, result.err.find('\n')));
  }
}

}  // namespace

PebbleServer::PebbleServer(PebbleOptions options) : dir_("acmetool-pebble") {
  listener_ca_file_ = dir_.path() / "listener-ca.pem";
  root_file_ = dir_.path() / "root.pem";
  intermediate_file_ = dir_.path() / "intermediate.pem";
  pebble_log_ = dir_.path() / "pebble.log";
  challtestsrv_log_ = dir_.path() / "challtestsrv.log";
  write_listener_certificates();
  start_with_retries(
      [&] {
        start(options);
        wait_until_ready();
      },
      [&] {
        pebble_.reset();
        challtestsrv_.reset();
      });
  fetch_issuing_chain();
}

PebbleServer::~PebbleServer() = default;

PebbleServer& PebbleServer::shared() { return shared_server<PebbleServer>(); }

const std::map<std::string, std::string>& PebbleServer::eab_keys() {
  // The example keys of Debian's pebble-config.json, as notes/scripts/pebble-up.sh uses them.
  static const std::map<std::string, std::string> keys = {
      {"kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
      {"kid-2", "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH"},
  };
  return keys;
}

void PebbleServer::write_listener_certificates() {
  // pebble's own HTTPS listeners (ACME and management) serve a leaf for localhost and 127.0.0.1
  // signed by a throwaway CA: Debian ships no test/certs. This CA is not the issuing root.
  const fs::path& dir = dir_.path();
  const std::string ca_key = dir / "listener-ca.key", leaf_key = dir / "listener.key";
  const std::string csr = dir / "listener.csr", ext = dir / "listener.ext";
  const std::vector<std::string> new_p256_key = {"-newkey", "ec", "-pkeyopt",
                                                 "ec_paramgen_curve:P-256", "-nodes"};
  const auto openssl = [](std::vector<std::string> head, const std::vector<std::string>& key,
                          const std::vector<std::string>& tail) {
    head.insert(head.end(), key.begin(), key.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  run_checked(
      openssl({"openssl", "req", "-x509"}, new_p256_key,
              {"-keyout", ca_key, "-out", listener_ca_file_, "-days", "7", "-subj",
               "/CN=pebble listener test CA", "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign"}),
      "generating pebble listener CA");
  run_checked(openssl({"openssl", "req", "-new"}, new_p256_key,
                      {"-keyout", leaf_key, "-out", csr, "-subj", "/CN=localhost"}),
              "generating pebble listener key");
  write_file(ext,
             "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
             "basicConstraints=critical,CA:FALSE\n"
             "keyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=serverAuth\n");
  run_checked({"openssl", "x509", "-req", "-in", csr, "-CA", listener_ca_file_, "-CAkey", ca_key,
               "-CAcreateserial", "-days", "7", "-extfile", ext, "-out", dir / "listener.pem"},
              "signing pebble listener certificate");
}

void PebbleServer::write_config(const PebbleOptions& options) {
  // Only fields pebble 2.4.0 reads (see notes/pebble.md); it silently ignores unknown ones.
  const nlohmann::json config = {
      {"pebble",
       {
           {"listenAddress", loopback(acme_port_)},
           {"managementListenAddress", loopback(management_port_)},
           {"certificate", (dir_.path() / "listener.pem").string()},
           {"privateKey", (dir_.path() / "listener.key").string()},
           {"httpPort", http01_port_},
           {"tlsPort", tlsalpn01_port_},
           {"ocspResponderURL", ""},
           {"externalAccountBindingRequired", options.require_eab},
           {"externalAccountMACKeys", eab_keys()},
           {"domainBlocklist", options.domain_blocklist},
           {"certificateValidityPeriod", options.certificate_validity.count()},
       }},
  };
  write_file(dir_.path() / "pebble-config.json", config.dump(2));
}

void PebbleServer::start(const PebbleOptions& options) {
  const std::vector<int> ports = distinct_free_ports(6);
  acme_port_ = ports[0];
  management_port_ = ports[1];
  http01_port_ = ports[2];
  tlsalpn01_port_ = ports[3];
  cts_dns_port_ = ports[4];
  cts_management_port_ = ports[5];
  dns_server_ = options.dns_server.empty() ? challtestsrv_dns() : options.dns_server;
  write_config(options);
  fs::remove(pebble_log_);
  fs::remove(challtestsrv_log_);

  // No AAAA (-defaultIPv6 ""): pebble 2.4's VA asks AAAA first and dials only the first address,
  // so challtestsrv's default ::1 would miss a client listening on 127.0.0.1 only.
  challtestsrv_ =
      ChildProcess::start({kChalltestsrv, "-management", loopback(cts_management_port_), "-dns01",
                           challtestsrv_dns(), "-http01", "", "-https01", "", "-tlsalpn01", "",
                           "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""},
                          challtestsrv_log_);
  std::map<std::string, std::string> env = {{"PEBBLE_VA_NOSLEEP", "1"},
                                            {"PEBBLE_WFE_NONCEREJECT", "0"}};
  for (const auto& [name, value] : options.env) env[name] = value;
  pebble_ = ChildProcess::start(
      {kPebble, "-config", (dir_.path() / "pebble-config.json").string(), "-dnsserver", dns_server_,
       std::string("-strict=") + (options.strict ? "true" : "false")},
      pebble_log_, env);
}

void PebbleServer::wait_until_ready() {
  std::string not_ready = "no answer yet";
  const auto check_alive = [](std::optional<ChildProcess>& child, const std::string& name,
                              const fs::path& log) {
    // challtestsrv only logs a taken port and keeps running, so the log is checked as well.
    if (read_text(log).find("address already in use") != std::string::npos) {
      throw PortConflict("starting " + name + ": a port was taken\n" + log_tail(name, log));
    }
    if (!child->running()) {
      throw std::runtime_error("starting " + name + ": it exited early\n" + log_tail(name, log));
    }
  };
  // pebble must answer 200; challtestsrv's management root answers 404, which shows it is up.
  const auto probe = [&](const std::string& url, const fs::path& ca_file, bool need_ok) {
    const HttpResponse response =
        ca_file.empty() ? http_get(url, kProbeTimeout) : https_get(url, ca_file, kProbeTimeout);
    not_ready = url + " answered HTTP " + std::to_string(response.status);
    return !need_ok || response.status == 200;
  };
  const auto ready = [&] {
    check_alive(pebble_, "pebble", pebble_log_);
    check_alive(challtestsrv_, "pebble-challtestsrv", challtestsrv_log_);
    try {
      // Trusting only our listener CA proves these answers come from the pebble we started.
      return probe(directory_url(), listener_ca_file_, true) &&
             probe(management_url() + "/roots/0", listener_ca_file_, true) &&
             probe(challtestsrv_url(), {}, false) && challtestsrv_answers_dns(not_ready);
    } catch (const HttpError& e) {
      not_ready = e.what();
      return false;
    }
  };
  if (!wait_until(ready, kStartTimeout)) {
    throw std::runtime_error("starting pebble: not ready after 10 s: " + not_ready + "\n" +
                             log_tail("pebble", pebble_log_) +
                             log_tail("pebble-challtestsrv", challtestsrv_log_));
  }
}

bool PebbleServer::challtestsrv_answers_dns(std::string& not_ready) {
  // A TXT record only this challtestsrv knows proves its DNS port is ours, not a stray server's.
  const std::string marker = "_fixture-ready.pebble.test.";
  http_post(challtestsrv_url() + "/set-txt",
            nlohmann::json{{"host", marker}, {"value", work_dir().string()}}.dump(), kProbeTimeout);
  const CommandResult dig =
      run_command({"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(cts_dns_port_),
                   "+short", "+time=1", "+tries=1", "TXT", marker},
                  "", {}, std::chrono::seconds(5));
  if (dig.out != "\"" + work_dir().string() + "\"\n") {
    not_ready =
        "challtestsrv DNS at " + challtestsrv_dns() + " answered '" + dig.out + dig.err + "'";
    return false;
  }
  http_post(challtestsrv_url() + "/clear-txt", nlohmann::json{{"host", marker}}.dump(),
            kProbeTimeout);
  return true;
}

void PebbleServer::fetch_issuing_chain() {
  const std::pair<const char*, const fs::path*> parts[] = {
      {"/roots/0", &root_file_}, {"/intermediates/0", &intermediate_file_}};
  for (const auto& [path, file] : parts) {
    const HttpResponse response = https_get(management_url() + path, listener_ca_file_);
    if (response.status != 200 ||
        response.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw std::runtime_error("fetching " + management_url() + path + ": HTTP " +
                               std::to_string(response.status) + ", no PEM certificate");
    }
    write_file(*file, response.body);
  }
}

std::string PebbleServer::directory_url() const {
  return "https://" + loopback(acme_port_) + "/dir";
}

std::string PebbleServer::management_url() const { return "https://" + loopback(management_port_); }

std::string PebbleServer::challtestsrv_url() const {
  return "http://" + loopback(cts_management_port_);
}

std::string PebbleServer::challtestsrv_dns() const { return loopback(cts_dns_port_); }

std::string PebbleServer::logs() const {
  return "--- pebble log " + pebble_log_.string() + " ---\n" + read_text(pebble_log_) +
         "--- pebble-challtestsrv log " + challtestsrv_log_.string() + " ---\n" +
         read_text(challtestsrv_log_);
}

std::vector<pid_t> PebbleServer::pids() const {
  std::vector<pid_t> result;
  for (const auto* child : {&pebble_, &challtestsrv_}) {
    if (*child && (*child)->pid() > 0) result.push_back((*child)->pid());
  }
  return result;
}

}  // namespace acmetool::test
