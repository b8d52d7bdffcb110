// SPDX-License-Identifier: MIT
#ifndef SOCKACT_POSIX_HPP
#define SOCKACT_POSIX_HPP

// Helpers for poll/epoll servers on inherited (or bound) sockets.

#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/unique_fd.hpp>

#include <sys/socket.h>
#include <system_error>
#include <utility>

namespace sockact {

/// Turns O_NONBLOCK on or off; a no-op when already so.
///
/// O_NONBLOCK belongs to the open file, which the fd shares with the service
/// manager's copy: the change outlives this process and the next instance
/// starts with it. Event-loop servers need it on (a connection reset between
/// poll() and accept() would otherwise block the loop); servers that block in
/// accept() on purpose should leave it off.
SOCKACT_DECL bool set_nonblocking(int fd, bool on, std::error_code& ec) noexcept;

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error
SOCKACT_DECL void set_nonblocking(int fd, bool on = true);
#endif

/// How one accept attempt ended.
enum class accept_status {
  accepted,     ///< `fd` holds the new connection
  would_block,  ///< nothing queued (EAGAIN): wait for readiness
  retry,        ///< the connection died while queued, or a transient network error: try again now
  fd_limit,     ///< out of fds or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): back off, don't spin
  error,        ///< anything else (EBADF, ENOTSOCK, EINVAL: not a listening socket)
};

/// The outcome of accept_connection().
struct accept_result {
  accept_status status = accept_status::error;
  unique_fd fd;           ///< the connection when status == accepted
  std::error_code error;  ///< errno of the failure, empty when accepted
};

namespace detail {
/// What an accept() errno means for the loop.
SOCKACT_DECL accept_status classify_accept_errno(int e) noexcept;
}  // namespace detail

/// Accepts one connection: EINTR is retried here; every other outcome is
/// classified so a loop can act on it without reading errno tables.
/// @param flags accept4() flags for the new socket (default: close-on-exec and non-blocking).
SOCKACT_DECL accept_result accept_connection(int listening_fd,
                                             int flags = SOCK_CLOEXEC | SOCK_NONBLOCK) noexcept;

/// Accepts a burst of connections: up to `budget`, while `keep_going()`,
/// handing each to `on_accepted(unique_fd)` (non-blocking, close-on-exec) and
/// retrying transient failures, so that an event loop lets other work in
/// between bursts. Returns the outcome that ended it: would_block (the queue
/// is empty), fd_limit (back off, don't spin), error (`error` says what), or
/// accepted (the budget is spent or keep_going() said no).
template <class OnAccepted, class KeepGoing>
accept_result accept_burst(int listening_fd, int budget, OnAccepted&& on_accepted, KeepGoing&& keep_going) {
  accept_result r;
  r.status = accept_status::accepted;
  for (; budget > 0 && keep_going(); --budget) {
    r = accept_connection(listening_fd);
    if (r.status == accept_status::accepted)
      on_accepted(std::move(r.fd));
    else if (r.status != accept_status::retry)
      return r;
  }
  r.status = accept_status::accepted;
  return r;
}

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/posix.ipp>
#endif

#endif  // SOCKACT_POSIX_HPP
