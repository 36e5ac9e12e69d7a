#include "interrupt.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "acmetool/pki/unique_fd.h"

namespace acmetool::cmd {

struct InterruptGuard::Impl {
  sigset_t previous_mask{};
  pki::UniqueFd signals, wake;
  std::thread watcher;
};

InterruptGuard::InterruptGuard(std::function<void()> on_interrupt) : impl_(std::make_unique<Impl>()) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, &impl_->previous_mask);
  impl_->signals = pki::UniqueFd(::signalfd(-1, &mask, SFD_CLOEXEC));
  impl_->wake = pki::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!impl_->signals || !impl_->wake) {
    pthread_sigmask(SIG_SETMASK, &impl_->previous_mask, nullptr);
    throw std::runtime_error(std::string("watching for SIGINT: ") + std::strerror(errno));
  }
  impl_->watcher = std::thread([impl = impl_.get(), on_interrupt = std::move(on_interrupt)] {
    pollfd fds[2] = {{impl->signals.get(), POLLIN, 0}, {impl->wake.get(), POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;  // the guard is going away
      signalfd_siginfo info{};
      if ((fds[0].revents & POLLIN) == 0 || ::read(impl->signals.get(), &info, sizeof info) != sizeof info) continue;
      std::fprintf(stderr, "acmetool: interrupted (%s); taking back presented challenges\n",
                   strsignal(static_cast<int>(info.ssi_signo)));
      on_interrupt();
      std::fflush(nullptr);
      ::_exit(128 + static_cast<int>(info.ssi_signo));
    }
  });
}

InterruptGuard::~InterruptGuard() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(impl_->wake.get(), &one, sizeof one);
  impl_->watcher.join();
  pthread_sigmask(SIG_SETMASK, &impl_->previous_mask, nullptr);
}

}  // namespace acmetool::cmd
