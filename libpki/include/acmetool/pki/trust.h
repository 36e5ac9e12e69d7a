// Installing a local CA's root into the trust stores of this machine and removing it again, as
// mkcert -install and `caddy trust` do: system store, NSS databases (Chromium, Firefox), Java.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace acmetool::pki {

class Storage;

/// A trust store family. Each may hold several locations (one NSS database per Firefox profile).
enum class TrustStore { System, Nss, Java };

/// "system", "nss", "java".
std::string_view to_string(TrustStore store);

enum class TrustAction { Install, Remove };

/// What happened at one location.
enum class TrustOutcome {
  Changed,  ///< installed (Install) or removed (Remove); with dry_run: would be
  Already,  ///< nothing to do: already trusted (Install) or not there (Remove)
  Skipped,  ///< the store does not exist on this machine (no Java); `reason` says why
  Failed,   ///< could not be changed; `reason` says why, `command` what the user can run instead
};

/// The outcome at one location of one store.
struct TrustEntry {
  TrustStore store = TrustStore::System;
  TrustOutcome outcome = TrustOutcome::Failed;
  /// The anchor file, the NSS database directory or the Java keystore; may be empty when Skipped.
  std::string location;
  std::string name;    ///< the file name, NSS nickname or Java alias: RootCertificate::entry_name()
  std::string reason;  ///< one line, for Skipped and Failed
  /// Shell commands equivalent to the change (Changed, also with dry_run), or for Failed the ones
  /// the user can run instead (with sudo where root is needed). Empty for Already and Skipped.
  std::string command;
};

/// A root certificate to trust, as parse_root_certificate() reads it.
struct RootCertificate {
  std::string ca_name;      ///< the local CA's name: "local"
  std::string pem;          ///< one certificate, re-encoded: identical roots give identical bytes
  std::string common_name;  ///< subject CN, empty when there is none
  std::string sha256;       ///< SHA-256 of the DER, 64 lower-case hex digits
  std::filesystem::path file;  ///< where the PEM lives, named in suggested commands; may be empty

  /// "acmetool-<safe(ca_name)>-<first 16 hex digits of sha256>": the anchor file's base name, the
  /// NSS nickname and the Java alias. A rotated root gets a new name, so removing one root never
  /// touches another's entries.
  std::string entry_name() const;
};

/// Reads the first certificate of `pem`. Throws CryptoError when there is none, and Error when it
/// is not a CA certificate (basicConstraints CA:TRUE), so a leaf is never made a trust anchor.
RootCertificate parse_root_certificate(std::string_view ca_name, std::string_view pem,
                                       std::filesystem::path file = {});

/// Where and how to change trust. The defaults act on the real machine and the current user.
struct TrustOptions {
  std::vector<TrustStore> stores = {TrustStore::System, TrustStore::Nss, TrustStore::Java};

  /// Compute the same entries without changing anything or running any program that writes.
  bool dry_run = false;

  /// Prefix of every system path (/etc/os-release, the anchor directories). The system store's
  /// update command (update-ca-certificates...) runs only when this is "/"; with another prefix the
  /// anchor file is still written and removed, so layouts can be tested in a temp directory.
  std::filesystem::path root_prefix = "/";

  /// Home directory for the NSS databases; empty means $HOME, else the password database.
  std::filesystem::path home;

  /// Java installation (with bin/keytool and lib/security/cacerts); empty means $JAVA_HOME, else
  /// the installation of the `keytool` found on PATH. No Java at all gives a Skipped entry.
  std::filesystem::path java_home;

  /// The NSS tool: a name looked up in PATH, or a path.
  std::string certutil = "certutil";

  /// Longest wait for one external program; it is killed after that and the location Failed.
  std::chrono::milliseconds command_timeout{std::chrono::seconds(60)};
};

/// Installs (TrustAction::Install) or removes `root` in every store of `options.stores`, in that
/// order, and returns one entry per location, each store contributing at least one. Idempotent:
/// installing twice gives Already the second time; Remove deletes only entries named
/// root.entry_name(). The system store is detected at run time: Debian, Ubuntu and Alpine
/// (/usr/local/share/ca-certificates, update-ca-certificates), RHEL and Fedora
/// (/etc/pki/ca-trust/source/anchors, update-ca-trust extract), Arch
/// (/etc/ca-certificates/trust-source/anchors, trust extract-compat), openSUSE
/// (/etc/pki/trust/anchors, update-ca-certificates). NSS: ~/.pki/nssdb (created on Install when
/// missing), and every existing Firefox profile (also Snap and Flatpak) and Chromium database, with
/// certutil. Java: keytool on lib/security/cacerts. After a change the store is read back, so
/// "Changed" means it is really there (or gone). A location that cannot be changed is a Failed
/// entry, never an exception: a store whose own checks fail (a program that cannot be started, no
/// home directory) gives one Failed entry with an empty location. Not safe to run concurrently
/// with itself.
std::vector<TrustEntry> apply_trust(TrustAction action, const RootCertificate& root,
                                    const TrustOptions& options);

/// A location recorded in trust.json as holding a root.
struct TrustedLocation {
  TrustStore store = TrustStore::System;
  std::string location;
  std::string name;
  std::string sha256;  ///< the root's fingerprint
};

/// "pki/authorities/<safe(ca)>/trust.json".
std::string trust_record_key(std::string_view ca_name);

/// Updates the CA's trust.json in `storage` after a real (not dry-run) apply_trust(): Install adds
/// the Changed and Already entries, Remove drops them. Throws pki::Error when the stored record is
/// not valid JSON, and the storage's errors.
void record_trust(Storage& storage, TrustAction action, const RootCertificate& root,
                  const std::vector<TrustEntry>& entries);

/// Where the CA's roots are recorded as trusted (for `ca status`); empty when there is no record.
/// Throws pki::Error when the record is not valid JSON.
std::vector<TrustedLocation> load_trust_record(const Storage& storage, std::string_view ca_name);

}  // namespace acmetool::pki
