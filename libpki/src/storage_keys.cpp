#include "acmetool/pki/storage_keys.h"

#include <algorithm>
#include <cctype>

namespace acmetool::pki::keys {

namespace {

bool is_safe_byte(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '@' || c == '.' || c == '-';
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  out += '/';
  out += b;
  return out;
}

}  // namespace

std::string safe(std::string_view component) {
  // strings.TrimSpace, then strings.ToLower (the order does not matter for ASCII).
  while (!component.empty() && std::isspace(static_cast<unsigned char>(component.front()))) {
    component.remove_prefix(1);
  }
  while (!component.empty() && std::isspace(static_cast<unsigned char>(component.back()))) {
    component.remove_suffix(1);
  }
  // One left-to-right pass, as Go's strings.Replacer does, then the character filter.
  std::string replaced;
  for (size_t i = 0; i < component.size(); ++i) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(component[i])));
    if (c == ' ') {
      replaced += '_';
    } else if (c == '+') {
      replaced += "_plus_";
    } else if (c == '*') {
      replaced += "wildcard_";
    } else if (c == ':') {
      replaced += '-';
    } else if (c == '.' && i + 1 < component.size() && component[i + 1] == '.') {
      ++i;  // ".." is dropped, so no component can climb out of its directory
    } else {
      replaced += c;
    }
  }
  std::string out;
  for (char c : replaced) {
    if (is_safe_byte(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

std::string acme_issuer_key(std::string_view directory_url) {
  std::string_view rest = directory_url;
  if (const size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest.remove_prefix(scheme + 3);
  } else {
    return std::string(directory_url);  // not a URL: CertMagic uses the string as it is
  }
  const size_t path_start = rest.find_first_of("/?#");
  std::string key(rest.substr(0, path_start));
  if (const size_t at = key.rfind('@'); at != std::string::npos) key.erase(0, at + 1);  // userinfo
  if (path_start == std::string_view::npos || rest[path_start] != '/') return key;

  std::string_view path = rest.substr(path_start);
  path = path.substr(0, path.find_first_of("?#"));
  std::string hyphenated;
  for (char c : path) hyphenated += (c == '/' || c == '\\') ? '-' : c;
  const size_t first = hyphenated.find_first_not_of('-');
  if (first != std::string::npos) {
    const size_t last = hyphenated.find_last_not_of('-');
    key += '-';
    key += hyphenated.substr(first, last - first + 1);
  }
  return key;
}

std::string names_key(std::vector<std::string> sans) {
  std::sort(sans.begin(), sans.end());
  std::string key;
  for (const std::string& san : sans) {
    if (!key.empty()) key += ',';
    key += san;
  }
  constexpr std::string_view kTruncated = "_trunc";
  if (key.size() > 1024) key = key.substr(0, 1024 - kTruncated.size()) + std::string(kTruncated);
  return key;
}

std::string certs_prefix(std::string_view issuer_key) { return join("certificates", safe(issuer_key)); }

std::string cert_site_prefix(std::string_view issuer_key, std::string_view name) {
  return join(certs_prefix(issuer_key), safe(name));
}

std::string cert_file(std::string_view issuer_key, std::string_view name) {
  return join(cert_site_prefix(issuer_key, name), safe(name) + ".crt");
}

std::string cert_key_file(std::string_view issuer_key, std::string_view name) {
  return join(cert_site_prefix(issuer_key, name), safe(name) + ".key");
}

std::string cert_meta_file(std::string_view issuer_key, std::string_view name) {
  return join(cert_site_prefix(issuer_key, name), safe(name) + ".json");
}

std::string ca_prefix(std::string_view ca_name) { return join("pki/authorities", safe(ca_name)); }

std::string issue_lock_name(std::string_view name) { return "issue_cert_" + std::string(name); }

}  // namespace acmetool::pki::keys
