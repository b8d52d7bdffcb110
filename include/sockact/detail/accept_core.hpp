// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_ACCEPT_CORE_HPP
#define SOCKACT_DETAIL_ACCEPT_CORE_HPP

// The one accept path of every driver (poll, thread, Asio, libuv, libevent)
// and of sockact-run --accept: how many connections a wake-up takes, what
// each accept() error means, and how long a listener rests after one. A
// driver supplies only its readiness wait and its timer.

#include <sockact/posix.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace sockact::detail {

/// Accepts per wake-up of a listener; then the loop's other work (and the
/// other listeners) get their turn. Transient failures count too, so a
/// listener that keeps failing cannot hold the loop.
inline constexpr int accept_burst_size = 64;

/// How long a listener is left unwatched after running out of fds or memory
/// (or an unexpected error): its clients wait in the kernel's queue instead
/// of the loop spinning on a socket that stays readable.
inline constexpr std::chrono::milliseconds accept_back_off{100};

/// What the driver does with a listener next.
enum class accept_next {
  again,     ///< try accept() again now (a transient failure: the connection died in the queue)
  wait,      ///< watch it for readiness (the queue is empty, or the burst is spent)
  back_off,  ///< stop watching it; watch it again after accept_back_off
  stop,      ///< the driver said stop (the listener is gone): nothing to do
};

/// How a burst ended.
struct accept_outcome {
  accept_next next = accept_next::wait;
  std::error_code error;  ///< the failure that ended it, if any
};

/// One per driver: remembers what it has logged, so that a long stretch out
/// of fds is said once, not at every retry (and again after an accept
/// succeeded in between).
class accept_core {
 public:
  /// What a failed accept (its status, or its errno) means; logs the first
  /// back-off of each kind through `log(std::string)`. Never closes anything:
  /// the listener is inherited, and the manager holds a copy.
  template <class Log>
  accept_next failed(accept_status status, const std::error_code& error, const std::string& listener,
                     Log&& log) {
    switch (status) {
      case accept_status::accepted:
      case accept_status::retry:
        return accept_next::again;
      case accept_status::would_block:
        return accept_next::wait;
      case accept_status::fd_limit:
        if (!warned_fd_limit_) log(message(listener, error));
        warned_fd_limit_ = true;
        return accept_next::back_off;
      case accept_status::error:
        break;
    }
    if (!warned_error_) log(message(listener, error) + " (said once)");
    warned_error_ = true;
    return accept_next::back_off;
  }
  template <class Log>
  accept_next failed(int err, const std::string& listener, Log&& log) {
    return failed(classify_accept_errno(err), std::error_code(err, std::generic_category()), listener,
                  std::forward<Log>(log));
  }

  /// Up to accept_burst_size calls of `attempt()`, which accepts one
  /// connection and hands it on itself, returning the accept_result (its fd
  /// moved out), or nullopt to stop (the listener was closed meanwhile).
  /// For drivers that must accept and register under one lock.
  template <class Attempt, class Log>
  accept_outcome burst(Attempt&& attempt, const std::string& listener, Log&& log) {
    accept_outcome out;
    for (int i = 0; i < accept_burst_size; ++i) {
      std::optional<accept_result> r = attempt();
      if (!r) return {accept_next::stop, {}};
      if (r->status == accept_status::accepted) {
        warned_fd_limit_ = warned_error_ = false;  // a later stretch without fds is said again
        continue;
      }
      const accept_next next = failed(r->status, r->error, listener, log);
      if (next == accept_next::again) continue;
      return {next, r->error};
    }
    return out;
  }

  /// The usual burst: accept_connection(listening_fd, flags) while
  /// `keep_going()`, each new connection to `on_accepted(unique_fd)`.
  template <class OnAccepted, class KeepGoing, class Log>
  accept_outcome burst(int listening_fd, OnAccepted&& on_accepted, KeepGoing&& keep_going,
                       const std::string& listener, Log&& log, int flags = SOCK_CLOEXEC | SOCK_NONBLOCK) {
    return burst(
        [&]() -> std::optional<accept_result> {
          if (!keep_going()) return std::nullopt;
          accept_result r = accept_connection(listening_fd, flags);
          if (r.status == accept_status::accepted) on_accepted(std::move(r.fd));
          return std::optional<accept_result>(std::move(r));
        },
        listener, log);
  }

 private:
  static std::string message(const std::string& listener, const std::error_code& error) {
    return "accept on " + listener + ": " + error.message() + "; pausing accepts for " +
           std::to_string(accept_back_off.count()) + " ms";
  }
  bool warned_fd_limit_ = false, warned_error_ = false;
};

/// Accept=yes: hands each connection the manager passed (a connected socket
/// among `sockets`, an activation's server_sockets) to
/// `deliver(unique_fd, const server_socket&)`, which returns whether to go
/// on. Each fd moves out, made non-blocking as an event loop needs, so a
/// second call hands over nothing. Returns how many were handed over.
template <class Sockets, class Deliver>
int hand_over_passed(Sockets& sockets, Deliver&& deliver) {
  int handed = 0;
  for (auto& l : sockets) {
    if (!l.info.connected || !l.fd) continue;
    std::error_code ignored;  // a blocking fd still works; the reads just block
    set_nonblocking(l.fd.get(), true, ignored);
    ++handed;
    unique_fd fd(l.fd.release());
    if (!deliver(std::move(fd), std::as_const(l))) break;
  }
  return handed;
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_ACCEPT_CORE_HPP
