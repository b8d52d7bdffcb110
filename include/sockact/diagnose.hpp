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
inline const char* status_name(activation_status s) noexcept {
  switch (s) {
    case activation_status::activated:
      return "activated";
    case activation_status::not_activated:
      return "not_activated";
    case activation_status::listen_pid_missing:
      return "listen_pid_missing";
    case activation_status::listen_fds_missing:
      return "listen_fds_missing";
    case activation_status::foreign_pid:
      return "foreign_pid";
    case activation_status::pidfdid_mismatch:
      return "pidfdid_mismatch";
    case activation_status::invalid_listen_pid:
      return "invalid_listen_pid";
    case activation_status::invalid_listen_pidfdid:
      return "invalid_listen_pidfdid";
    case activation_status::invalid_listen_fds:
      return "invalid_listen_fds";
    case activation_status::invalid_listen_fdnames:
      return "invalid_listen_fdnames";
    case activation_status::names_mismatch:
      return "names_mismatch";
    case activation_status::closed_fd:
      return "closed_fd";
  }
  return "unknown";
}

/// One passed fd as found.
struct fd_report {
  int fd = -1;
  std::string name;                   ///< from LISTEN_FDNAMES when it could be split, else "unknown"
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
  bool has_warnings() const noexcept {
    for (const fd_report& r : fds)
      if (!r.warnings.empty()) return true;
    return false;
  }
  /// Several lines: summary, hint, one line per fd with its warnings.
  std::string to_string() const;
};

namespace detail {

inline void check_fds(diagnosis& d, int n, const std::vector<std::string>* names) {
  // Beyond a few thousand fds the table says nothing more that helps.
  const int shown = n > 4096 ? 4096 : n;
  for (int i = 0; i < shown; ++i) {
    fd_report r;
    r.fd = listen_fds_start + i;
    r.name = names != nullptr && static_cast<std::size_t>(i) < names->size()
                 ? (*names)[static_cast<std::size_t>(i)]
                 : "unknown";
    r.info = describe_fd(r.fd, r.error);
    if (r.error) {
      r.warnings.push_back("not open: " + r.error.message());
    } else if (!r.info.is_socket()) {
      r.warnings.push_back(std::string("not a socket but a ") + kind_name(r.info.kind) +
                           " (fine for ListenFIFO=/ListenSpecial=/ListenMessageQueue=, not for a server)");
    } else if (r.info.listening && !r.info.nonblocking) {
      r.warnings.push_back(
          "blocking listening socket: an event loop that polls before accept can stall in accept(); "
          "set NonBlocking=yes in the .service unit or make it non-blocking before use");
    }
    d.fds.push_back(std::move(r));
  }
  for (int i = shown; i < n; ++i) {  // past the table, still find a closed fd
    const int fd = listen_fds_start + i;
    if (::fcntl(fd, F_GETFD) < 0) {
      fd_report r;
      r.fd = fd;
      r.name = "unknown";
      r.error.assign(errno, std::generic_category());
      d.fds.push_back(std::move(r));
      break;
    }
  }
}

}  // namespace detail

/// Says whether this process was socket-activated and, if not, why not, from
/// the given snapshot of the variables and the fds as they are now. The
/// summary is the same text the throwing listen_fds() puts in what().
inline diagnosis diagnose(const activation_environment& env, const listen_options& options = {}) {
  detail::environment_verdict v = detail::examine_environment(env, options.pid_check, true);
  diagnosis d;
  d.status = v.status;
  d.error = v.error;
  d.summary = std::move(v.summary);
  d.hint = std::move(v.hint);
  if (v.count > 0) detail::check_fds(d, v.count, v.names_ok ? &v.names : nullptr);
  if (d.activated() && d.has_warnings()) d.hint = "usable, with warnings below";
  return d;
}

/// diagnose() on the environment as it is now.
inline diagnosis diagnose(const listen_options& options = {}) {
  return diagnose(activation_environment::current(), options);
}

inline std::string diagnosis::to_string() const {
  std::string out = summary + "\n";
  if (!hint.empty()) out += "hint: " + hint + "\n";
  for (const fd_report& r : fds) {
    out += "  ";
    out += r.error ? "fd " + std::to_string(r.fd) + ": not open" : r.info.to_string();
    out += " name=" + detail::quote(r.name) + "\n";
    for (const std::string& w : r.warnings)
      if (!r.error) out += "    warning: " + w + "\n";
  }
  return out;
}

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/diagnose.ipp>
#endif

#endif  // SOCKACT_DIAGNOSE_HPP
