// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LISTEN_FDS_HPP
#define SOCKACT_LISTEN_FDS_HPP

// Receiving the fds a service manager passes: sd_listen_fds() and
// sd_listen_fds_with_names() with libsystemd's results and side effects.

#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sockact {

/// The first passed fd; the others follow without gaps (SD_LISTEN_FDS_START).
inline constexpr int listen_fds_start = 3;

/// One fd passed by the service manager, as sd_listen_fds_with_names() gives
/// it: a number and a name, not yet checked (it may be a FIFO, a file, ...).
/// listen_or_bind() turns the ones it serves into server_socket.
struct passed_fd {
  int fd = -1;       ///< 3, 4, ...; owned by the caller once received
  std::string name;  ///< from LISTEN_FDNAMES: FileDescriptorName=, "connection" for Accept=yes,
                     ///< "stored" for the fd store; "unknown" when no names were passed
};

/// Whose fds to take when LISTEN_PID names another process than this one.
enum class listen_pid_check {
  /// Only LISTEN_PID == getpid(), as libsystemd. The default.
  strict,
  /// Also LISTEN_PID == getppid(): a wrapper between the manager and this
  /// program that did not exec (`podman run --init`, tini, dumb-init, a shell
  /// script without `exec`) started us and passed its fds down.
  allow_parent,
  /// Any LISTEN_PID. Only for a program that knows it is the one meant: the
  /// variables may have leaked from an ancestor whose fds are long gone.
  allow_any,
};

/// How listen_fds() behaves.
struct listen_options {
  /// Remove LISTEN_PID, LISTEN_PIDFDID, LISTEN_FDS and LISTEN_FDNAMES from the
  /// environment afterwards (on errors too), so children do not see them.
  /// On by default, as in listen_config: a server that starts a child (a CGI
  /// script, a shell-out, a worker) must not hand it variables that name fds
  /// the child does not own. sd_listen_fds(0) is listen_fds({false}, ec).
  bool unset_environment = true;
  /// What to do with fds meant for another process. Off (strict) by default.
  listen_pid_check pid_check = listen_pid_check::strict;
};

/// The activation variables as they stand at one moment; nullopt = unset.
struct activation_environment {
  std::optional<std::string> listen_pid;
  std::optional<std::string> listen_pidfdid;
  std::optional<std::string> listen_fds;
  std::optional<std::string> listen_fdnames;

  /// Reads the process environment.
  static activation_environment current();
};

/// How receiving ends, one value per way (what diagnose() reports).
enum class activation_status {
  activated,               ///< fds are for this process and usable (see warnings)
  not_activated,           ///< neither LISTEN_PID nor LISTEN_FDS is set
  listen_pid_missing,      ///< LISTEN_FDS is set, LISTEN_PID is not
  listen_fds_missing,      ///< LISTEN_PID is set (and ours), LISTEN_FDS is not
  foreign_pid,             ///< LISTEN_PID names another process
  pidfdid_mismatch,        ///< LISTEN_PIDFDID names another incarnation of LISTEN_PID
  invalid_listen_pid,      ///< LISTEN_PID is not a valid pid (EINVAL/ERANGE)
  invalid_listen_pidfdid,  ///< LISTEN_PIDFDID is not a number
  invalid_listen_fds,      ///< LISTEN_FDS is not a count in 1..INT_MAX-3
  invalid_listen_fdnames,  ///< LISTEN_FDNAMES ends in a lone backslash
  names_mismatch,          ///< LISTEN_FDNAMES has another number of names than LISTEN_FDS
  closed_fd,               ///< one of fds 3..3+n-1 is not open
};

/// Takes the fds passed by the service manager (systemd, systemd-socket-activate,
/// Podman): exactly sd_listen_fds_with_names(), with libsystemd's error values
/// and side effects (FD_CLOEXEC set on each fd; the variables removed when asked,
/// also on failure).
///
/// @param options whether to unset the variables; whether to accept fds meant
///        for another process (off by default).
/// @param ec set to the errno value libsystemd would return, in
///        std::generic_category(): EINVAL (malformed LISTEN_PID/LISTEN_FDS/
///        LISTEN_FDNAMES, or a name count that differs from LISTEN_FDS), ERANGE
///        (LISTEN_PID out of range), EBADF (a passed fd is not open).
/// @returns fds 3, 4, ... in order with their names; empty when the process
///        was not socket-activated (not an error) or on error.
///
/// @code
/// std::error_code ec;
/// for (const sockact::passed_fd& l : sockact::listen_fds({}, ec))
///   serve(l.fd, l.name);
/// if (ec) std::cerr << sockact::diagnose().to_string();
/// @endcode
SOCKACT_DECL std::vector<passed_fd> listen_fds(const listen_options& options, std::error_code& ec);

/// sd_listen_fds(): how many fds were passed (0 when not activated), setting
/// FD_CLOEXEC on them; ignores LISTEN_FDNAMES. -1 with ec set on error.
SOCKACT_DECL int listen_fds_count(const listen_options& options,
                                  std::error_code& ec) noexcept(!SOCKACT_USE_LIBSYSTEMD);

#if SOCKACT_HAS_EXCEPTIONS
/// Throwing form of listen_fds(options, ec).
/// @throws std::system_error whose what() names the variable and value at fault.
SOCKACT_DECL std::vector<passed_fd> listen_fds(const listen_options& options = {});

/// Throwing form of listen_fds_count().
SOCKACT_DECL int listen_fds_count(const listen_options& options = {});
#endif

/// The first fd with this name, or nullptr.
SOCKACT_DECL const passed_fd* find_fd(const std::vector<passed_fd>& fds, std::string_view name) noexcept;

/// All fds with this name, in order (a socket unit may listen on several
/// addresses under one FileDescriptorName=).
SOCKACT_DECL std::vector<passed_fd> fds_named(const std::vector<passed_fd>& fds, std::string_view name);

namespace detail {

/// SOCKACT_ALLOW_PARENT_PID into `check`, as activate() and the preload
/// library read it: 1 widens strict to allow_parent; 0, empty or unset keep
/// it. False (with `ec` and `why` naming the variable and value) for any
/// other value.
SOCKACT_DECL bool pid_check_from_environment(listen_pid_check& check, std::error_code& ec, std::string* why);

}  // namespace detail

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/listen_fds.ipp>
#endif

#endif  // SOCKACT_LISTEN_FDS_HPP
