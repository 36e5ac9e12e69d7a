// A CA that answers OCSP, for tests: a CA, leaves and a responder certificate made with the
// openssl CLI in a temp dir (`openssl ca`, whose database is the responder's index), and
// `openssl ocsp` serving their status on a free port, stopped by PID.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "acmetool/pki/x509.h"
#include "process.h"

namespace acmetool::test {

/// A leaf the test CA issues: CN and only SAN `name`, valid for 30 days.
struct OcspTestLeaf {
  std::string name;           ///< also its file name; not "ca" nor a signer's file name
  bool revoked = false;       ///< revoked (keyCompromise) before the responder starts
  bool with_ocsp_url = true;  ///< false: no Authority Information Access extension at all
  std::string ocsp_url;       ///< the OCSP URL to put in it; empty: the responder's url()
};

/// Who signs the responder's answers.
enum class OcspSigner {
  Ca,           ///< the CA itself
  Delegated,    ///< a certificate the CA issued with the OCSPSigning extended key usage
  Undelegated,  ///< a certificate the CA issued for serverAuth only: clients must refuse it
  OtherCa,      ///< an unrelated self-signed CA: clients must refuse it
};

struct OcspResponderOptions {
  std::vector<OcspTestLeaf> leaves = {{"good.test"}, {"revoked.test", true}};
  OcspSigner signer = OcspSigner::Ca;
  /// nextUpdate - thisUpdate in the answers (`openssl ocsp -nmin`); zero: no nextUpdate at all.
  std::chrono::minutes next_update{60};
  /// How long a Delegated or Undelegated signer's certificate stays valid from now.
  std::chrono::days signer_lifetime{1};
};

/// The CA and its running responder. Not copyable or movable.
///
/// Every certificate the CA issues (and the CA itself) is valid from a day ago, so tests may move
/// `now` back. `openssl ocsp` 3.0 can only listen on all addresses (`-port`), but tests reach it
/// at 127.0.0.1 only. It also spins forever after a connection that closes without a request, so
/// readiness is probed with a real request (GET /), never a bare connect.
class OcspResponder {
 public:
  /// Makes the CA, the leaves and the signer, starts the responder on a free port and waits (at
  /// most 5 s) until it answers; retries with a new port (and new certificates) when the port was
  /// taken. Throws std::runtime_error carrying openssl's output or the responder's log.
  explicit OcspResponder(OcspResponderOptions options = {});
  OcspResponder(const OcspResponder&) = delete;
  OcspResponder& operator=(const OcspResponder&) = delete;

  /// "http://127.0.0.1:PORT": the OCSP URL in the leaves.
  std::string url() const;
  /// Leaf `name`, then the CA: the chain a server would staple for.
  pki::CertificateChain chain(const std::string& name) const;
  /// PEM files of leaf `name`, of the CA and of the certificate signing the answers.
  std::filesystem::path leaf_file(const std::string& name) const;
  std::filesystem::path ca_file() const;
  std::filesystem::path signer_file() const;

  /// Stops the responder by PID (SIGTERM); its port then refuses connections.
  void stop();
  /// The tail of the responder's log, for failure messages.
  std::string log_tail() const;

 private:
  std::string file(const std::string& name) const;  // a file in work_
  void make_pki();
  // Makes a key and a certificate for CN `name` ("ca": the self-signed CA) in work_.
  void issue(const std::string& name, const std::string& extensions, std::chrono::days lifetime);
  void start_responder();
  void wait_until_ready();

  TempDir dir_;  // declared first, so that it is removed after the responder has stopped
  OcspResponderOptions options_;
  int port_ = 0;
  std::filesystem::path work_;  // this attempt's directory: certificates name the port
  std::optional<ChildProcess> responder_;
};

}  // namespace acmetool::test
