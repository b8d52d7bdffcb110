// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DIAGNOSE_HPP
#define SOCKACT_DIAGNOSE_HPP

// Why no fds were taken, in words a user can act on. Reads the environment and
// looks at the fds; changes neither.

#include <sockact/listen_fds.hpp>
#include <sockact/socket_info.hpp>

#include <string>
#include <system_error>
#include <vector>

namespace sockact {

/// A short stable name for a status ("activated", "foreign_pid", ...).
SOCKACT_DECL const char* status_name(activation_status s) noexcept;

/// One passed fd as found: its number and name as a passed_fd ("unknown"
/// when LISTEN_FDNAMES is unset or cannot be split), and what it is.
struct fd_report : passed_fd {
  fd_info info;                       ///< valid when !error
  std::error_code error;              ///< EBADF when the fd is not open
  std::vector<std::string> warnings;  ///< not a socket; blocking listening socket; ...
};

/// What diagnose() found.
struct diagnosis {
  activation_status status = activation_status::not_activated;
  /// What listen_fds() reports for this environment (errno, generic
  /// category); empty when it takes the fds or finds none for us.
  std::error_code error;
  std::string summary;         ///< one line naming the variables and values at fault
  std::string hint;            ///< what to do about it; may be empty
  std::vector<fd_report> fds;  ///< fds 3..3+n-1 when LISTEN_FDS could be read, else empty

  /// True when listen_fds() with the same options returns these fds.
  bool activated() const noexcept { return status == activation_status::activated; }
  /// Whether any fd carries a warning.
  bool has_warnings() const noexcept;
  /// Several lines: summary, hint, one line per fd with its warnings.
  std::string to_string() const;
};

/// Says whether this process was socket-activated and, if not, why not, from
/// the given snapshot of the variables and the fds as they are now. The
/// summary is the same text the throwing listen_fds() puts in what().
SOCKACT_DECL diagnosis diagnose(const activation_environment& env, const listen_options& options = {});

/// diagnose() on the environment as it is now.
SOCKACT_DECL diagnosis diagnose(const listen_options& options = {});

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/diagnose.ipp>
#endif

#endif  // SOCKACT_DIAGNOSE_HPP
