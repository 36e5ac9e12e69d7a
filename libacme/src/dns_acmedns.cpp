// acme-dns (github.com/joohoi/acme-dns): a tiny DNS server whose /update API sets the TXT record
// of one registered subdomain. The user points `_acme-challenge.DOMAIN` at that subdomain with a
// CNAME once; the accounts live in a JSON file in lego's format, so lego's file works as it is,
// or one account is given outright (username, password, subdomain), as Caddy's acmedns module does.
#include <mutex>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

namespace acmetool::acme {
namespace {

using nlohmann::json;

constexpr std::string_view kName = "acme-dns";

// One registration, as goacmedns stores it under the domain it is for:
// {"example.com": {"username", "password", "fulldomain", "subdomain", "server_url"}}.
struct Account {
  std::string username, password, fulldomain, subdomain;
};

Account account_from(const json& entry) {
  return {detail::string_field(entry, "username"), detail::string_field(entry, "password"),
          detail::string_field(entry, "fulldomain"), detail::string_field(entry, "subdomain")};
}

class AcmeDnsProvider final : public DnsProvider {
 public:
  AcmeDnsProvider(std::string api_base, std::filesystem::path storage_path)
      : api_base_(std::move(api_base)), storage_path_(std::move(storage_path)) {}
  AcmeDnsProvider(std::string api_base, Account account)
      : api_base_(std::move(api_base)), fixed_(std::move(account)) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override;
  // acme-dns cannot delete: it keeps the two latest values of a subdomain, which is what a name
  // and its wildcard need at once, and each update pushes the oldest out.
  void cleanup(const TxtRecord&) override {}

 private:
  json load_accounts(const TxtRecord& record) const;
  std::optional<Account> find_account(const json& accounts, const TxtRecord& record) const;
  void update(const Account& account, const TxtRecord& record) const;
  [[noreturn]] void register_account(json accounts, const TxtRecord& record) const;
  DnsError error(const TxtRecord& record, const std::string& message) const {
    return DnsError(std::string(kName), record.zone, message);
  }

  std::string api_base_;
  std::filesystem::path storage_path_;
  std::optional<Account> fixed_;  ///< the one account given in the options, instead of the file
  // Serializes reading, registering into and rewriting the storage file.
  mutable std::mutex mutex_;
};

void AcmeDnsProvider::present(const TxtRecord& record) {
  if (fixed_) return update(*fixed_, record);
  std::lock_guard lock(mutex_);
  json accounts = load_accounts(record);
  if (std::optional<Account> account = find_account(accounts, record)) {
    update(*account, record);
    return;
  }
  register_account(std::move(accounts), record);
}

json AcmeDnsProvider::load_accounts(const TxtRecord& record) const {
  std::optional<std::string> text;
  try {
    text = pki::read_file(storage_path_);
  } catch (const pki::Error& e) {
    throw error(record, e.what());
  }
  if (!text) return json::object();
  json accounts = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!accounts.is_object()) {
    throw error(record, "reading " + storage_path_.string() + ": not a JSON object");
  }
  return accounts;
}

// The solver hands over the record after following `_acme-challenge` CNAMEs: once the user's
// CNAME is in place the name is the account's fulldomain itself. Before that (or without CNAME
// following) it is `_acme-challenge.DOMAIN.`, and the account is the one stored under DOMAIN.
std::optional<Account> AcmeDnsProvider::find_account(const json& accounts,
                                                     const TxtRecord& record) const {
  const std::string_view name = detail::without_trailing_dot(record.fqdn);
  for (const json& entry : accounts) {
    if (detail::without_trailing_dot(detail::string_field(entry, "fulldomain")) == name) {
      return account_from(entry);
    }
  }
  const auto it = accounts.find(detail::raw_mode_domain(record.fqdn));
  if (it == accounts.end() || !it->is_object()) return std::nullopt;
  return account_from(*it);
}

void AcmeDnsProvider::update(const Account& account, const TxtRecord& record) const {
  HttpRequest request;
  request.method = "POST";
  request.url = detail::join_url(api_base_, "/update");
  request.headers = {{"Content-Type", "application/json"},
                     {"X-Api-User", account.username},
                     {"X-Api-Key", account.password}};
  request.body = json{{"subdomain", account.subdomain}, {"txt", record.value}}.dump();
  const HttpResponse response = detail::send_api_request(kName, record.zone, request);
  if (response.status != 200) {
    throw error(record, "updating " + account.fulldomain + " for " + record.fqdn + ": HTTP " +
                            std::to_string(response.status) + ": " +
                            detail::short_body(response.body));
  }
}

// As lego does: registers an account for the domain, saves it, and stops with the CNAME the user
// must create once. Until that CNAME exists an update would change a record nobody looks at.
void AcmeDnsProvider::register_account(json accounts, const TxtRecord& record) const {
  HttpRequest request;
  request.method = "POST";
  request.url = detail::join_url(api_base_, "/register");
  request.headers = {{"Content-Type", "application/json"}};
  const HttpResponse response = detail::send_api_request(kName, record.zone, request);
  const json doc = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  const Account account = account_from(doc);
  if (response.status != 201 || account.username.empty() || account.fulldomain.empty()) {
    throw error(record, "registering at " + request.url + ": HTTP " +
                            std::to_string(response.status) + ": " +
                            detail::short_body(response.body));
  }
  const std::string domain = detail::raw_mode_domain(record.fqdn);
  accounts[domain] = {{"username", account.username},
                      {"password", account.password},
                      {"fulldomain", account.fulldomain},
                      {"subdomain", account.subdomain},
                      {"server_url", api_base_}};
  try {
    pki::write_file_atomic(storage_path_, accounts.dump(2) + "\n", 0600);
  } catch (const pki::Error& e) {
    throw error(record, "saving the account registered for " + domain + ": " + e.what());
  }
  throw error(record, "registered a new acme-dns account for " + domain + " in " +
                          storage_path_.string() + "; create the record \"_acme-challenge." +
                          domain + ". CNAME " + account.fulldomain + ".\" and run again");
}

}  // namespace

namespace detail {

std::unique_ptr<DnsProvider> make_acmedns_provider(const DnsProviderSettings& settings) {
  std::string api_base = required_option(settings, "api_base", "ACME_DNS_API_BASE");
  // One account given outright (Caddy's acmedns module): username, password and subdomain.
  if (auto username = option_or_env(settings, "username", "")) {
    Account account{*username, required_option(settings, "password", ""), "",
                    required_option(settings, "subdomain", "")};
    account.fulldomain = option_or_env(settings, "fulldomain", "").value_or(account.subdomain);
    return std::make_unique<AcmeDnsProvider>(std::move(api_base), std::move(account));
  }
  std::string storage_path = required_option(settings, "storage_path", "ACME_DNS_STORAGE_PATH");
  return std::make_unique<AcmeDnsProvider>(std::move(api_base), std::move(storage_path));
}

}  // namespace detail
}  // namespace acmetool::acme
