// SPDX-License-Identifier: MIT
#ifndef SOCKACT_NOTIFY_HPP
#define SOCKACT_NOTIFY_HPP

// The service manager notification protocol (sd_notify) without libsystemd:
// one notify() and named messages (READY=1, STOPPING=1, WATCHDOG=1, STATUS=,
// MAINPID=, EXTEND_TIMEOUT_USEC=, FDSTORE=1 with fds), and sd_watchdog_enabled().

#include <sockact/detail/config.hpp>

#include <sys/socket.h>
#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

// Whether NOTIFY_SOCKET=vsock:... can be used; <sockact/impl/notify.ipp>
// includes <linux/vm_sockets.h> then.
#if defined(__linux__) && __has_include(<linux/vm_sockets.h>)
#define SOCKACT_DETAIL_HAVE_VSOCK 1
#else
#define SOCKACT_DETAIL_HAVE_VSOCK 0
#endif

namespace sockact {

/// How notify() sends.
struct notify_options {
  /// Remove NOTIFY_SOCKET afterwards (on failure too), so children cannot
  /// send in our name.
  bool unset_environment = false;
  /// Send on behalf of this pid (sd_pid_notify); 0 = this process.
  pid_t pid = 0;
};

namespace detail {

/// Where NOTIFY_SOCKET points: a unix path, an abstract name, or vsock.
struct notify_address {
  sockaddr_storage storage{};
  socklen_t size = 0;
  int type = 0;  // 0: datagram, falling back for vsock; else the type asked for
};

// systemd's safe_atou: an unsigned int, refusing a minus sign.
SOCKACT_DECL int parse_uint(const char* s, unsigned& out) noexcept;

// A vsock CID: a number, or one of the names newer systemd accepts.
SOCKACT_DECL int parse_vsock_cid(const std::string& s, unsigned& cid) noexcept;

/// Parses NOTIFY_SOCKET: "/path", "@abstract" (2..107 bytes), "vsock:CID:PORT"
/// and (systemd >= 256) "vsock-stream:", "vsock-dgram:", "vsock-seqpacket:".
/// Anything else is EINVAL, as libsystemd 252 says (newer ones say EPROTO).
SOCKACT_DECL int parse_notify_address(const char* e, notify_address& a);

}  // namespace detail

/// Whether NOTIFY_SOCKET, when set, can be used: it parses, and a path names
/// an existing socket. False with `why` naming NOTIFY_SOCKET, its value and
/// the reason; servers warn once at start rather than lose READY=1 silently.
/// Unset is usable (nothing to notify).
SOCKACT_DECL bool notify_socket_usable(std::string* why = nullptr);

namespace detail {

/// sd_pid_notify_with_fds() without the unsetting: 1 sent, 0 no NOTIFY_SOCKET, -errno.
SOCKACT_DECL int send_notify(pid_t pid, std::string_view state, const int* fds, std::size_t n_fds);

}  // namespace detail

/// A message to the service manager: newline-separated VAR=value assignments,
/// built from the named values below and joined with `+`. notify() also takes
/// a plain string, as sd_notify() does.
///
/// @code
/// using sockact::notify_state;
/// sockact::notify(notify_state::ready + notify_state::status("serving on :8080"));
/// @endcode
class notify_state {
 public:
  /// Assignments as the protocol spells them ("RELOADING=1\nMONOTONIC_USEC=...").
  explicit notify_state(std::string assignments) noexcept : text_(std::move(assignments)) {}

  /// READY=1: start-up finished (Type=notify services).
  static const notify_state ready;
  /// STOPPING=1: shutting down; systemd stops routing work to us.
  static const notify_state stopping;
  /// WATCHDOG=1: keep-alive ping for WatchdogSec=.
  static const notify_state watchdog;

  /// STATUS=text, shown by systemctl status.
  static notify_state status(std::string_view text) { return notify_state("STATUS=" + std::string(text)); }
  /// MAINPID=pid: another process is the main one now.
  static notify_state mainpid(pid_t pid) { return notify_state("MAINPID=" + std::to_string(pid)); }
  /// EXTEND_TIMEOUT_USEC=: ask for more time to start or stop.
  static notify_state extend_timeout(std::chrono::microseconds extra) {
    return notify_state("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count()));
  }
  /// FDSTORE=1 and FDNAME=name (none when empty): with the fds passed to
  /// notify(state, fds, n_fds, options, ec), for the manager to keep across
  /// restarts (FileDescriptorStoreMax= must be set); they come back as
  /// LISTEN_FDS named `name`. The fds stay open here too.
  static notify_state fd_store(std::string_view name) {
    return notify_state(name.empty() ? std::string("FDSTORE=1") : "FDSTORE=1\nFDNAME=" + std::string(name));
  }

  /// Both messages, in order, as one.
  friend notify_state operator+(notify_state a, const notify_state& b) {
    a.text_ += '\n';
    a.text_ += b.text_;
    return a;
  }

  const std::string& str() const noexcept { return text_; }
  operator std::string_view() const noexcept { return text_; }

 private:
  std::string text_;
};

inline const notify_state notify_state::ready{"READY=1"};
inline const notify_state notify_state::stopping{"STOPPING=1"};
inline const notify_state notify_state::watchdog{"WATCHDOG=1"};

/// Sends `state` (newline-separated VAR=value assignments, up to the first
/// NUL) and, for FDSTORE=1, fds to the service manager: sd_pid_notify_with_fds().
/// @param options whether to unset NOTIFY_SOCKET; on whose behalf to send.
/// @param ec EINVAL/EPROTO malformed NOTIFY_SOCKET, E2BIG over 253 fds, EIO
///        short send, or what socket/connect/sendmsg reported.
/// @returns true when sent; false with no error when NOTIFY_SOCKET is unset
///          (not started by a manager that listens); false with ec on failure.
///
/// @code
/// std::error_code ec;
/// sockact::notify(sockact::notify_state::fd_store("state"), &fd, 1, {}, ec);
/// @endcode
SOCKACT_DECL bool notify(std::string_view state, const int* fds, std::size_t n_fds,
                         const notify_options& options, std::error_code& ec);

/// sd_notify(0, state).
/// @code
/// std::error_code ec;
/// sockact::notify(sockact::notify_state::stopping, ec);
/// @endcode
SOCKACT_DECL bool notify(std::string_view state, std::error_code& ec);

/// sd_watchdog_enabled(): the interval at which WATCHDOG=1 is expected, when
/// the manager asks it of this process (WATCHDOG_USEC set and WATCHDOG_PID
/// unset or ours). nullopt otherwise. ec: WATCHDOG_USEC not a number, 0 or
/// infinite (EINVAL/ERANGE), WATCHDOG_PID malformed.
SOCKACT_DECL std::optional<std::chrono::microseconds> watchdog_enabled(bool unset_environment,
                                                                       std::error_code& ec);

#if SOCKACT_HAS_EXCEPTIONS
/// Throwing form of notify(state, ec).
/// @throws std::system_error naming NOTIFY_SOCKET and the state sent.
SOCKACT_DECL bool notify(std::string_view state);

/// @throws std::system_error naming WATCHDOG_USEC/WATCHDOG_PID and their values.
SOCKACT_DECL std::optional<std::chrono::microseconds> watchdog_enabled(bool unset_environment = false);
#endif

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/notify.ipp>
#endif

#endif  // SOCKACT_NOTIFY_HPP
