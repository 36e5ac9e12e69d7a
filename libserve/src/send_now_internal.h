// A write that never waits, for plain sockets (private to libserve): most responses and upstream
// requests fit the socket's send buffer whole, and sent this way they cost one send(2) and no
// asynchronous operation (no operation object, no timeout timer armed and cancelled, no
// suspension of the coroutine). What is left, if anything, goes out with an asynchronous write.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstddef>

#include <boost/asio/buffer.hpp>

namespace acmetool::serve {

/// Sends what socket `fd` takes at once of `buffers` (at most 4), without blocking and without
/// SIGPIPE; returns the bytes sent, 0 when it takes nothing now or on an error (the
/// asynchronous write that follows meets the same error and reports it).
template <std::size_t N>
std::size_t send_now(int fd, const std::array<boost::asio::const_buffer, N>& buffers) {
  static_assert(N <= 4);
  std::array<iovec, N> vectors{};
  msghdr message{};
  for (const boost::asio::const_buffer& buffer : buffers) {
    if (buffer.size() == 0) continue;
    vectors[message.msg_iovlen++] = {const_cast<void*>(buffer.data()), buffer.size()};
  }
  if (message.msg_iovlen == 0) return 0;
  message.msg_iov = vectors.data();
  // One piece (the usual case) goes with send(2), which the kernel takes without copying in and
  // checking a message header and its vector.
  const ssize_t sent = message.msg_iovlen == 1
                           ? ::send(fd, vectors[0].iov_base, vectors[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL)
                           : ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

/// `buffers` without their first `sent` bytes.
template <std::size_t N>
std::array<boost::asio::const_buffer, N> unsent(std::array<boost::asio::const_buffer, N> buffers, std::size_t sent) {
  for (boost::asio::const_buffer& buffer : buffers) {
    const std::size_t skip = std::min(sent, buffer.size());
    buffer += skip;
    sent -= skip;
  }
  return buffers;
}

}  // namespace acmetool::serve
