// A second process for the storage tests, so locks and crashes are tested across real processes.
//
//   storage_helper count ROOT LOCK KEY N   N times: lock, read the counter at KEY, add one, store, unlock
//   storage_helper hold ROOT LOCK [MS]     take the lock, print "locked", hold it MS ms (default: until killed)
//   storage_helper write-loop FILE BYTES   rewrite FILE forever with BYTES of 'a', then of 'b', ...
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "acmetool/pki/files.h"
#include "acmetool/pki/storage.h"

using namespace std::chrono_literals;
namespace pki = acmetool::pki;

namespace {

int count(const std::string& root, const std::string& lock, const std::string& key, int n) {
  pki::FileStorage storage(root, {.lock_poll_interval = std::chrono::milliseconds(5)});
  for (int i = 0; i < n; ++i) {
    pki::StorageLock held(storage, lock, 60s);
    const int value = std::stoi(storage.load(key).value_or("0"));
    // Widen the window between read and write so that a broken lock loses updates.
    std::this_thread::sleep_for(1ms);
    storage.store(key, std::to_string(value + 1));
  }
  return 0;
}

int hold(const std::string& root, const std::string& lock, long ms) {
  pki::FileStorage storage(root);
  storage.lock(lock, 60s);
  std::cout << "locked" << std::endl;
  if (ms < 0) {
    for (;;) ::pause();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  storage.unlock(lock);
  return 0;
}

int write_loop(const std::string& file, size_t bytes) {
  for (char fill = 'a';; fill = fill == 'a' ? 'b' : 'a') {
    pki::write_file_atomic(file, std::string(bytes, fill), 0600);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "count" && argc == 6) return count(argv[2], argv[3], argv[4], std::stoi(argv[5]));
    if (command == "hold" && (argc == 4 || argc == 5)) return hold(argv[2], argv[3], argc == 5 ? std::stol(argv[4]) : -1);
    if (command == "write-loop" && argc == 4) return write_loop(argv[2], std::stoul(argv[3]));
  } catch (const std::exception& e) {
    std::cerr << "storage_helper: " << e.what() << '\n';
    return 1;
  }
  std::cerr << "usage: storage_helper count|hold|write-loop ...\n";
  return 2;
}
