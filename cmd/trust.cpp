// cmd/trust.cpp: `acmetool trust` installs the local CA's root into the system, NSS and Java
// stores; the run function is shared with `acmetool untrust`.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "acmetool/pki/error.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "common.h"
#include "trust_args.h"

namespace acmetool::cmd {
namespace {

pki::TrustStore store_named(const std::string& name) {
  if (name == "system") return pki::TrustStore::System;
  if (name == "nss") return pki::TrustStore::Nss;
  return pki::TrustStore::Java;  // CLI11 allows only these three
}

// The status word of an entry, in text and JSON: "installed", "would-remove", "already"...
std::string status_word(pki::TrustAction action, const pki::TrustEntry& e, bool dry_run) {
  const bool install = action == pki::TrustAction::Install;
  switch (e.outcome) {
    case pki::TrustOutcome::Changed:
      return std::string(dry_run ? "would-" : "") +
             (install ? (dry_run ? "install" : "installed") : (dry_run ? "remove" : "removed"));
    case pki::TrustOutcome::Already:
      return install ? "already" : "absent";
    case pki::TrustOutcome::Skipped:
      return "skipped";
    case pki::TrustOutcome::Failed:
      return "failed";
  }
  return "unknown";
}

// Results on stdout, where a dry run adds each change's commands on an indented line; reasons
// and the commands to run instead on stderr.
void print_text(pki::TrustAction action, const std::vector<pki::TrustEntry>& entries,
                const TrustArgs& args, const Context& ctx) {
  for (const pki::TrustEntry& e : entries) {
    const std::string_view store = pki::to_string(e.store);
    std::cout << store << "  " << status_word(action, e, args.dry_run) << "  "
              << (e.location.empty() ? "-" : e.location) << '\n';
    if (args.dry_run && e.outcome == pki::TrustOutcome::Changed) {
      std::cout << "    " << e.command << '\n';
    }
    if (e.outcome == pki::TrustOutcome::Failed) {
      std::cerr << "acmetool: " << store << ": " << e.reason
                << (e.command.empty() ? "" : "; run instead: " + e.command) << '\n';
    } else if (e.outcome == pki::TrustOutcome::Skipped && !ctx.global.quiet) {
      std::cerr << "acmetool: " << store << ": skipped: " << e.reason << '\n';
    }
  }
}

void print_json(pki::TrustAction action, const std::vector<pki::TrustEntry>& entries,
                const TrustArgs& args) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const pki::TrustEntry& e : entries) {
    out.push_back({{"store", pki::to_string(e.store)},
                   {"status", status_word(action, e, args.dry_run)},
                   {"location", e.location},
                   {"name", e.name},
                   {"reason", e.reason},
                   {"command", e.command}});
  }
  std::cout << out.dump(2) << '\n';
}

int exit_code(const std::vector<pki::TrustEntry>& entries, const TrustArgs& args) {
  int done = 0, not_done = 0;
  for (const pki::TrustEntry& e : entries) {
    if (e.outcome == pki::TrustOutcome::Changed || e.outcome == pki::TrustOutcome::Already) ++done;
    // A store that does not exist here (no Java) is fine unless the user asked for it by name.
    if (e.outcome == pki::TrustOutcome::Failed ||
        (e.outcome == pki::TrustOutcome::Skipped && args.stores_given)) {
      ++not_done;
    }
  }
  if (done == 0) return kExitFailed;
  return not_done == 0 ? kExitOk : kExitPartial;
}

// The roots `untrust` removes besides the current one: those `ca rotate --root` replaced, which
// stay trusted until now so that the leaves they signed kept working.
std::vector<pki::RootCertificate> previous_roots(const pki::FileStorage& storage, const TrustArgs& args) {
  std::vector<pki::RootCertificate> roots;
  for (const std::string& key : storage.list(pki::keys::ca_prefix(args.ca_name) + "/previous", false)) {
    if (const auto pem = storage.load(key)) {
      roots.push_back(pki::parse_root_certificate(args.ca_name, *pem, storage.path_of(key)));
    }
  }
  return roots;
}

}  // namespace

pki::RootCertificate load_ca_root(const pki::FileStorage& storage, const std::string& ca_name) {
  const std::string key = pki::keys::ca_prefix(ca_name) + "/root.crt";
  const std::optional<std::string> pem = storage.load(key);
  if (!pem) {
    throw std::runtime_error("no local CA \"" + ca_name + "\" in " + storage.describe() +
                             ": run 'acmetool ca init' first");
  }
  return pki::parse_root_certificate(ca_name, *pem, std::filesystem::absolute(storage.path_of(key)));
}

void record_trust_or_warn(pki::FileStorage& storage, pki::TrustAction action, const pki::RootCertificate& root,
                          const std::vector<pki::TrustEntry>& entries) {
  try {
    pki::record_trust(storage, action, root, entries);
  } catch (const pki::Error& e) {
    // The stores did change; only the record (for `ca status`) is missing.
    std::cerr << "acmetool: warning: not recorded: " << e.what() << '\n';
  }
}

int run_trust(pki::TrustAction action, const TrustArgs& args, Context& ctx) {
  pki::FileStorage storage(ctx.storage_root());
  const pki::RootCertificate root = load_ca_root(storage, args.ca_name);

  pki::TrustOptions options;
  options.stores.clear();
  for (const std::string& name : args.stores) options.stores.push_back(store_named(name));
  options.dry_run = args.dry_run;
  std::vector<pki::TrustEntry> entries = pki::apply_trust(action, root, options);
  if (!args.dry_run) record_trust_or_warn(storage, action, root, entries);
  if (action == pki::TrustAction::Remove) {
    for (const pki::RootCertificate& previous : previous_roots(storage, args)) {
      const std::vector<pki::TrustEntry> removed = pki::apply_trust(action, previous, options);
      if (!args.dry_run) record_trust_or_warn(storage, action, previous, removed);
      // Only where an old root was found is worth a row; "absent" everywhere else is noise.
      for (const pki::TrustEntry& e : removed) {
        if (e.outcome == pki::TrustOutcome::Changed || e.outcome == pki::TrustOutcome::Failed) entries.push_back(e);
      }
    }
  }
  if (ctx.global.json) {
    print_json(action, entries, args);
  } else {
    print_text(action, entries, args, ctx);
  }
  return exit_code(entries, args);
}

void add_trust_command(CLI::App& root, Context& ctx, const char* name, const char* help,
                       pki::TrustAction action) {
  auto args = std::make_shared<TrustArgs>();
  CLI::App* sub = root.add_subcommand(name, help);
  sub->add_option("--ca", args->ca_name, "Local CA whose root to use")
      ->type_name("NAME")
      ->capture_default_str();
  CLI::Option* stores = sub->add_option("--store", args->stores, "Trust stores to change")
                            ->type_name("STORE")
                            ->check(CLI::IsMember({"system", "nss", "java"}))
                            ->delimiter(',')
                            ->capture_default_str();
  sub->add_flag("--dry-run", args->dry_run, "Print what would change and change nothing");
  sub->callback([args, stores, action, &ctx] {
    args->stores_given = stores->count() > 0;
    ctx.exit_code = run_trust(action, *args, ctx);
  });
}

void add_trust(CLI::App& root, Context& ctx) {
  add_trust_command(root, ctx, "trust", "Install the local CA's root into trust stores",
                    pki::TrustAction::Install);
}

}  // namespace acmetool::cmd
