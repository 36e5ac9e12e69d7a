// cmd/interrupt.h: what a command does when SIGINT or SIGTERM arrives while it works, such as
// taking back DNS records it presented before the process ends.
#pragma once

#include <functional>
#include <memory>

namespace acmetool::cmd {

/// While alive, SIGINT and SIGTERM are blocked in the creating thread and in every thread it
/// starts afterwards, and a watcher thread waits for them: on one it prints a line to stderr,
/// runs `on_interrupt` (which must be thread-safe and quick), and ends the process with status
/// 128 + the signal number (130 for SIGINT), as a shell reports a killed command. The destructor
/// stops the watcher and restores the signal mask. Create it before starting worker threads.
class InterruptGuard {
 public:
  explicit InterruptGuard(std::function<void()> on_interrupt);
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::cmd
