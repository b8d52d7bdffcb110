// SPDX-License-Identifier: MIT
// The definitions of <sockact/posix.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_POSIX_IPP
#define SOCKACT_IMPL_POSIX_IPP

#include <sockact/posix.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <cerrno>
#include <system_error>

namespace sockact {

SOCKACT_DECL bool set_nonblocking(int fd, bool on, std::error_code& ec) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) {
    ec.assign(errno, std::generic_category());
    return false;
  }
  const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) {
    ec.assign(errno, std::generic_category());
    return false;
  }
  ec.clear();
  return true;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL void set_nonblocking(int fd, bool on) {
  std::error_code ec;
  if (!set_nonblocking(fd, on, ec)) detail::throw_error(ec, "sockact::set_nonblocking");
}
#endif

namespace detail {
SOCKACT_DECL accept_status classify_accept_errno(int e) noexcept {
  switch (e) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return accept_status::would_block;
    // accept(2): Linux reports errors already pending on the new connection
    // from accept() itself; they concern that connection, not the listener.
    // EOPNOTSUPP is left out: it also means "not a stream socket", for ever.
    case ECONNABORTED:
    case EINTR:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ETIMEDOUT:
    case ECONNRESET:
    case EPERM:  // a firewall rule refused it
      return accept_status::retry;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return accept_status::fd_limit;
    default:
      return accept_status::error;
  }
}
}  // namespace detail

SOCKACT_DECL accept_result accept_connection(int listening_fd, int flags) noexcept {
  accept_result r;
  for (;;) {
    const int fd = ::accept4(listening_fd, nullptr, nullptr, flags);
    if (fd >= 0) {
      r.status = accept_status::accepted;
      r.fd.reset(fd);
      return r;
    }
    if (errno == EINTR) continue;
    r.status = detail::classify_accept_errno(errno);
    r.error.assign(errno, std::generic_category());
    return r;
  }
}

}  // namespace sockact

#endif  // SOCKACT_IMPL_POSIX_IPP
