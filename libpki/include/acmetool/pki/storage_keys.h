// The one builder of storage keys (CertMagic's KeyBuilder). Every key acmetool stores comes from
// here, so the layout matches Caddy's and no caller concatenates paths by hand.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace acmetool::pki::keys {

/// Makes `component` safe as one key component, exactly as CertMagic's KeyBuilder.Safe: lower-case,
/// trim spaces, ' '→'_', '+'→"_plus_", '*'→"wildcard_", ':'→'-', remove "..", then drop every byte
/// outside [A-Za-z0-9_@.-]. "*.example.com" → "wildcard_.example.com".
std::string safe(std::string_view component);

/// The issuer key of an ACME CA: the directory URL's host (with port) plus its path with '/' turned
/// into '-': "https://acme-v02.api.letsencrypt.org/directory" → "acme-v02.api.letsencrypt.org-directory".
/// Not yet made safe(); the functions below do that.
std::string acme_issuer_key(std::string_view directory_url);

/// CertMagic's NamesKey: the certificate's SANs sorted and joined with ',' (cut to 1,024 bytes).
/// A one-name certificate is stored under its name; safe() later drops the commas of longer keys.
std::string names_key(std::vector<std::string> sans);

/// "certificates/<safe(issuer)>"
std::string certs_prefix(std::string_view issuer_key);
/// "certificates/<safe(issuer)>/<safe(name)>"
std::string cert_site_prefix(std::string_view issuer_key, std::string_view name);
/// ".../<safe(name)>.crt": the PEM chain, leaf first.
std::string cert_file(std::string_view issuer_key, std::string_view name);
/// ".../<safe(name)>.key": the PEM private key.
std::string cert_key_file(std::string_view issuer_key, std::string_view name);
/// ".../<safe(name)>.json": {"sans": [...], "issuer_data": {...}}.
std::string cert_meta_file(std::string_view issuer_key, std::string_view name);

/// "pki/authorities/<safe(ca)>"
std::string ca_prefix(std::string_view ca_name);

/// The lock name that guards issuance of `name`: "issue_cert_<name>", as CertMagic uses.
std::string issue_lock_name(std::string_view name);

}  // namespace acmetool::pki::keys
