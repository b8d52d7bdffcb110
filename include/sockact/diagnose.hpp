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

/// The outcome of diagnose(), one per way receiving can end.
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

inline std::string process_label(pid_t pid) {
  const std::string name = process_name(pid);
  return "process " + std::to_string(pid) + (name.empty() ? "" : " (" + name + ")");
}

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
/// the given snapshot of the variables and the fds as they are now.
inline diagnosis diagnose(const activation_environment& env, const listen_options& options = {}) {
  using detail::quote;
  diagnosis d;
  const auto var = [](const char* name, const std::string& value) {
    return std::string(name) + "=" + quote(value);
  };

  std::vector<std::string> names;
  bool names_ok = false;
  if (env.listen_fdnames) {
    if (detail::split_names(env.listen_fdnames->c_str(), names) < 0) {
      d.status = activation_status::invalid_listen_fdnames;
      d.error = std::error_code(EINVAL, std::generic_category());
      d.summary = var("LISTEN_FDNAMES", *env.listen_fdnames) + " ends in a lone backslash";
      d.hint = "names are separated by ':'; a backslash escapes the next character";
      return d;
    }
    names_ok = true;
  }

  if (!env.listen_pid) {
    if (!env.listen_fds) {
      d.status = activation_status::not_activated;
      d.summary = "not socket-activated: LISTEN_PID and LISTEN_FDS are not set";
      d.hint =
          "start the program from a .socket unit, systemd-socket-activate -l ADDRESS, or "
          "podman with a socket-activated service; a wrapper that clears the environment "
          "(sudo, su -, env -i) drops these variables";
      return d;
    }
    d.status = activation_status::listen_pid_missing;
    d.summary = var("LISTEN_FDS", *env.listen_fds) + " is set but LISTEN_PID is not: the fds are ignored";
    d.hint =
        "the service manager sets both; something between it and this program removed LISTEN_PID "
        "(pass it on, e.g. systemd-socket-activate -E or podman -e)";
    return d;
  }

  pid_t pid = 0;
  if (const int r = detail::parse_pid(env.listen_pid->c_str(), pid); r < 0) {
    d.status = activation_status::invalid_listen_pid;
    d.error = std::error_code(-r, std::generic_category());
    d.summary = var("LISTEN_PID", *env.listen_pid) + " is not a valid process id: " + d.error.message();
    d.hint = "expected a decimal pid such as LISTEN_PID=" + std::to_string(::getpid());
    return d;
  }

  const pid_t self = ::getpid();
  if (!detail::pid_accepted(pid, options.pid_check)) {
    d.status = activation_status::foreign_pid;
    const pid_t parent = ::getppid();
    d.summary = (env.listen_fds ? var("LISTEN_FDS", *env.listen_fds) + " is" : std::string("fds are")) +
                " meant for " + detail::process_label(pid) + " (" + var("LISTEN_PID", *env.listen_pid) +
                "), but this is process " + std::to_string(self) + ": the fds are not taken";
    if (pid == parent) {
      d.hint =
          "the process the manager started is our parent: an init or shell wrapper (podman run --init, "
          "tini, dumb-init, a shell script without exec) ran this program as a child. Use exec in "
          "scripts, drop --init, or opt in with listen_pid_check::allow_parent";
    } else if (pid == 1) {
      d.hint =
          "LISTEN_PID=1 is what Podman passes into a container; this program is not PID 1 there, "
          "probably because of podman run --init or a wrapper shell: run it as the container's "
          "entry point, or opt in with listen_pid_check::allow_parent";
    } else {
      d.hint =
          "the variables were probably inherited from an ancestor that did not unset them "
          "(use listen_fds(true) there); opt in with listen_pid_check::allow_any only if this "
          "program really is the one meant";
    }
    return d;
  }

  if (env.listen_pidfdid) {
    std::uint64_t wanted = 0;
    if (const int r = detail::parse_u64(env.listen_pidfdid->c_str(), wanted); r < 0) {
      d.status = activation_status::invalid_listen_pidfdid;
      d.error = std::error_code(-r, std::generic_category());
      d.summary = var("LISTEN_PIDFDID", *env.listen_pidfdid) + " is not a number: " + d.error.message();
      return d;
    }
    std::uint64_t actual = 0;
    if (detail::pidfd_inode_id(pid, actual) == 0 && actual != wanted) {
      d.status = activation_status::pidfdid_mismatch;
      d.summary = var("LISTEN_PIDFDID", *env.listen_pidfdid) + " names another process than " +
                  detail::process_label(pid) + " (pidfd id " + std::to_string(actual) +
                  "): the pid was reused, the fds are not taken";
      return d;
    }
  }

  if (!env.listen_fds) {
    d.status = activation_status::listen_fds_missing;
    d.summary = var("LISTEN_PID", *env.listen_pid) + " names this process but LISTEN_FDS is not set";
    d.hint = "the service manager sets both; something removed LISTEN_FDS";
    return d;
  }

  int n = 0;
  const int r = detail::parse_int(env.listen_fds->c_str(), n);
  if (r < 0 || n <= 0 || n > INT_MAX - listen_fds_start) {
    d.status = activation_status::invalid_listen_fds;
    d.error = std::error_code(r < 0 ? -r : EINVAL, std::generic_category());
    d.summary = var("LISTEN_FDS", *env.listen_fds) + " is not a count between 1 and " +
                std::to_string(INT_MAX - listen_fds_start) + ": " + d.error.message();
    return d;
  }

  detail::check_fds(d, n, names_ok ? &names : nullptr);
  for (const fd_report& f : d.fds) {
    if (f.error) {
      d.status = activation_status::closed_fd;
      d.error = f.error;
      d.summary = "fd " + std::to_string(f.fd) + " is not open, but " + var("LISTEN_FDS", *env.listen_fds) +
                  " says fds 3.." + std::to_string(listen_fds_start + n - 1) + " were passed";
      d.hint =
          "something closed it before sockact looked (a wrapper that closes inherited fds, or "
          "code that ran first), or LISTEN_* reached a process that did not inherit the fds";
      return d;
    }
  }

  if (names_ok && names.size() != static_cast<std::size_t>(n)) {
    d.status = activation_status::names_mismatch;
    d.error = std::error_code(EINVAL, std::generic_category());
    d.summary = var("LISTEN_FDNAMES", *env.listen_fdnames) + " has " + std::to_string(names.size()) +
                " name(s) but " + var("LISTEN_FDS", *env.listen_fds);
    d.hint = "give one name per fd, separated by ':' (systemd-socket-activate --fdname=a:b)";
    return d;
  }

  d.status = activation_status::activated;
  d.summary =
      "socket-activated: " + std::to_string(n) + " fd(s) for " +
      (pid == self ? "this process" : "this process by opt-in (LISTEN_PID=" + std::to_string(pid) + ")");
  if (d.has_warnings()) d.hint = "usable, with warnings below";
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

#endif  // SOCKACT_DIAGNOSE_HPP
