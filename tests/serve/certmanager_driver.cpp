// A process that runs one CertManager over a storage directory until every name it manages is
// served, for tests that need several processes (shared storage) or kill them (crash safety).
//
//   certmanager_driver --storage DIR --ca URL --ca-root FILE [--http-port N] [--wait S] NAME...
//
// Prints "served NAME" for each name it ends up serving; exits 0 when it serves them all within
// --wait seconds (default 120), 1 otherwise, 2 for bad arguments.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "acmetool/pki/storage.h"
#include "acmetool/serve/cert_manager.h"

int main(int argc, char** argv) {
  using namespace acmetool;
  std::string storage_dir, ca, ca_root;
  int http_port = 0, wait_seconds = 120;
  std::vector<serve::ManagedName> names;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--storage") storage_dir = value();
    else if (arg == "--ca") ca = value();
    else if (arg == "--ca-root") ca_root = value();
    else if (arg == "--http-port") http_port = std::stoi(value());
    else if (arg == "--wait") wait_seconds = std::stoi(value());
    else names.push_back({arg});
  }
  if (storage_dir.empty() || ca.empty() || names.empty()) {
    std::cerr << "usage: certmanager_driver --storage DIR --ca URL --ca-root FILE [--http-port N] NAME...\n";
    return 2;
  }
  pki::FileStorage storage(storage_dir);
  serve::CertManagerOptions options;
  options.acme.directory_urls = {ca};
  options.acme.ca_root = ca_root;
  options.acme.challenges = {"http-01"};
  options.acme.listen_address = "127.0.0.1";
  options.acme.http_port = http_port;
  options.max_parallel_obtains = 8;
  options.log = [](std::string_view line) { std::cerr << line << "\n"; };
  serve::CertManager manager(storage, options);
  manager.manage(names);
  manager.wait_idle(std::chrono::seconds(wait_seconds));
  int missing = 0;
  for (const auto& name : names) {
    if (manager.cache().find(name.name, std::chrono::system_clock::now())) {
      std::cout << "served " << name.name << "\n";
    } else {
      ++missing;
    }
  }
  std::cout.flush();
  return missing ? 1 : 0;
}
