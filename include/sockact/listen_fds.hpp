// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LISTEN_FDS_HPP
#define SOCKACT_LISTEN_FDS_HPP

// Receiving the fds a service manager passes: sd_listen_fds() and
// sd_listen_fds_with_names() with libsystemd's results and side effects.

#include <sockact/detail/config.hpp>
#include <sockact/detail/parse.hpp>
#include <sockact/detail/posix.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>

#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if SOCKACT_USE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

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

/// The old name of passed_fd (before 0.2.0).
using listen_fd [[deprecated("renamed sockact::passed_fd")]] = passed_fd;

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
  bool unset_environment = false;
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
  static activation_environment current() {
    const auto get = [](const char* name) -> std::optional<std::string> {
      if (const char* v = std::getenv(name)) return std::string(v);
      return std::nullopt;
    };
    return {get("LISTEN_PID"), get("LISTEN_PIDFDID"), get("LISTEN_FDS"), get("LISTEN_FDNAMES")};
  }
};

namespace detail {

inline void unset_listen_environment() noexcept {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_PIDFDID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

/// Whether the policy lets us take fds meant for `pid`.
inline bool pid_accepted(pid_t pid, listen_pid_check check) noexcept {
  if (pid == ::getpid()) return true;
  switch (check) {
    case listen_pid_check::strict:
      return false;
    case listen_pid_check::allow_parent:
      return pid == ::getppid();
    case listen_pid_check::allow_any:
      return true;
  }
  return false;
}

/// LISTEN_PIDFDID names one incarnation of LISTEN_PID. 0 when it matches or
/// cannot be checked, 1 when it names another incarnation, -errno when the
/// value is not a number.
inline int pidfdid_mismatch(const char* value, pid_t pid) noexcept {
  std::uint64_t wanted = 0;
  if (const int r = parse_u64(value, wanted); r < 0) return r;
  std::uint64_t actual = 0;
  if (pidfd_inode_id(pid, actual) < 0) return 0;  // cannot read ours: skip, as libsystemd
  return actual != wanted ? 1 : 0;
}

/// sd_listen_fds() without the unsetting: n, 0 (not for us) or -errno.
inline int count_listen_fds(listen_pid_check check) noexcept {
  const char* e = std::getenv("LISTEN_PID");
  if (e == nullptr) return 0;
  pid_t pid = 0;
  if (const int r = parse_pid(e, pid); r < 0) return r;
  if (!pid_accepted(pid, check)) return 0;

  if (const char* id = std::getenv("LISTEN_PIDFDID")) {
    const int r = pidfdid_mismatch(id, pid);
    if (r != 0) return r < 0 ? r : 0;
  }

  e = std::getenv("LISTEN_FDS");
  if (e == nullptr) return 0;
  int n = 0;
  if (const int r = parse_int(e, n); r < 0) return r;
  if (n <= 0 || n > INT_MAX - listen_fds_start) return -EINVAL;

  for (int fd = listen_fds_start; fd < listen_fds_start + n; ++fd)
    if (const int r = set_cloexec(fd); r < 0) return r;
  return n;
}

#if SOCKACT_USE_LIBSYSTEMD
/// Wraps one call into libsystemd so that it behaves as the native code:
/// LISTEN_PIDFDID is checked here (libsystemd < 259 ignores it, and does not
/// unset it), and with the foreign-pid opt-in libsystemd is shown our own pid,
/// the variables being put back afterwards when they are kept.
class libsystemd_call {
 public:
  explicit libsystemd_call(const listen_options& options) : unset_(options.unset_environment) {
    const char* e = std::getenv("LISTEN_PID");
    pid_t pid = 0;
    if (e == nullptr || parse_pid(e, pid) < 0 || !pid_accepted(pid, options.pid_check)) return;
    const char* names = std::getenv("LISTEN_FDNAMES");
    std::vector<std::string> ignored;
    if (names != nullptr && split_names(names, ignored) < 0) return;  // libsystemd fails on names first
    if (const char* id = std::getenv("LISTEN_PIDFDID")) {
      const int r = pidfdid_mismatch(id, pid);
      if (r != 0) {
        early_ = r < 0 ? r : 0;
        return;
      }
      if (pid != ::getpid()) {
        saved_pidfdid_ = id;
        ::unsetenv("LISTEN_PIDFDID");  // names the other process; libsystemd >= 259 would refuse
      }
    }
    if (pid != ::getpid()) {
      saved_pid_ = e;
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    }
  }
  ~libsystemd_call() {
    if (unset_) {
      unset_listen_environment();
    } else if (saved_pid_) {
      ::setenv("LISTEN_PID", saved_pid_->c_str(), 1);
      if (saved_pidfdid_) ::setenv("LISTEN_PIDFDID", saved_pidfdid_->c_str(), 1);
    }
  }
  libsystemd_call(const libsystemd_call&) = delete;
  libsystemd_call& operator=(const libsystemd_call&) = delete;

  /// Set when the result is known without libsystemd: 0 or -errno.
  const std::optional<int>& early_result() const noexcept { return early_; }

 private:
  bool unset_;
  std::optional<int> early_;
  std::optional<std::string> saved_pid_;
  std::optional<std::string> saved_pidfdid_;
};
#endif

/// sd_listen_fds(unset) with the pid policy: n, 0 or -errno.
inline int receive_count(const listen_options& options) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
#if SOCKACT_USE_LIBSYSTEMD
  const libsystemd_call call(options);
  if (call.early_result()) return *call.early_result();
  return ::sd_listen_fds(options.unset_environment ? 1 : 0);
#else
  const int r = count_listen_fds(options.pid_check);
  if (options.unset_environment) unset_listen_environment();
  return r;
#endif
}

/// sd_listen_fds_with_names(unset, &names) with the pid policy.
inline int receive(const listen_options& options, std::vector<passed_fd>& out) {
  out.clear();
#if SOCKACT_USE_LIBSYSTEMD
  const libsystemd_call call(options);
  if (call.early_result()) return *call.early_result();
  char** names = nullptr;
  const int n = ::sd_listen_fds_with_names(options.unset_environment ? 1 : 0, &names);
  if (n > 0) {
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back({listen_fds_start + i, names[i]});
  }
  if (names != nullptr) {
    for (char** p = names; *p != nullptr; ++p) std::free(*p);
    std::free(names);
  }
  return n;
#else
  std::vector<std::string> names;
  bool have_names = false;
  if (const char* e = std::getenv("LISTEN_FDNAMES")) {
    // Split before anything else: a malformed list fails before any fd is touched.
    if (const int r = split_names(e, names); r < 0) {
      if (options.unset_environment) unset_listen_environment();
      return r;
    }
    have_names = true;
  }
  const int n = receive_count(options);
  if (n <= 0) return n;
  if (have_names && names.size() != static_cast<std::size_t>(n)) return -EINVAL;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    out.push_back({listen_fds_start + i, have_names ? std::move(names[idx]) : std::string("unknown")});
  }
  return n;
#endif
}

/// Says which variable made a receive fail, naming it and its value. `env` is
/// the environment as it was before the call (the call may have unset it).
inline std::string explain_failure(const activation_environment& env, listen_pid_check check, bool with_names,
                                   const std::error_code& ec) {
  if (with_names && env.listen_fdnames) {
    std::vector<std::string> names;
    if (split_names(env.listen_fdnames->c_str(), names) < 0)
      return "LISTEN_FDNAMES=" + quote(*env.listen_fdnames) + " ends in a lone backslash";
  }
  pid_t pid = 0;
  if (env.listen_pid && parse_pid(env.listen_pid->c_str(), pid) < 0)
    return "LISTEN_PID=" + quote(*env.listen_pid) + " is not a valid process id (1.." +
           std::to_string(INT_MAX) + ")";
  if (env.listen_pidfdid && env.listen_pid && pid_accepted(pid, check)) {
    std::uint64_t id = 0;
    if (parse_u64(env.listen_pidfdid->c_str(), id) < 0)
      return "LISTEN_PIDFDID=" + quote(*env.listen_pidfdid) + " is not a number";
  }
  int n = 0;
  if (env.listen_fds) {
    if (parse_int(env.listen_fds->c_str(), n) < 0 || n <= 0 || n > INT_MAX - listen_fds_start)
      return "LISTEN_FDS=" + quote(*env.listen_fds) + " is not a count between 1 and " +
             std::to_string(INT_MAX - listen_fds_start);
    for (int fd = listen_fds_start; fd < listen_fds_start + n; ++fd)
      if (::fcntl(fd, F_GETFD) < 0)
        return "fd " + std::to_string(fd) + " is not open, but LISTEN_FDS=" + quote(*env.listen_fds) +
               " says fds 3.." + std::to_string(listen_fds_start + n - 1) + " were passed";
  }
  if (with_names && env.listen_fdnames && env.listen_fds) {
    std::vector<std::string> names;
    const int m = split_names(env.listen_fdnames->c_str(), names);
    if (m != n)
      return "LISTEN_FDNAMES=" + quote(*env.listen_fdnames) + " has " + std::to_string(m) +
             " name(s) but LISTEN_FDS=" + quote(*env.listen_fds);
  }
  return ec.message();
}

}  // namespace detail

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
/// for (const sockact::passed_fd& l : sockact::listen_fds(true, ec))
///   serve(l.fd, l.name);
/// if (ec) std::cerr << sockact::diagnose().to_string();
/// @endcode
inline std::vector<passed_fd> listen_fds(const listen_options& options, std::error_code& ec) {
  std::vector<passed_fd> out;
  const int r = detail::receive(options, out);
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    out.clear();
  } else {
    ec.clear();
  }
  return out;
}

/// @copydoc listen_fds(const listen_options&, std::error_code&)
inline std::vector<passed_fd> listen_fds(bool unset_environment, std::error_code& ec) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds(options, ec);
}

/// sd_listen_fds(): how many fds were passed (0 when not activated), setting
/// FD_CLOEXEC on them; ignores LISTEN_FDNAMES. -1 with ec set on error.
inline int listen_fds_count(const listen_options& options,
                            std::error_code& ec) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
  const int r = detail::receive_count(options);
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    return -1;
  }
  ec.clear();
  return r;
}

/// @copydoc listen_fds_count(const listen_options&, std::error_code&)
inline int listen_fds_count(bool unset_environment, std::error_code& ec) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds_count(options, ec);
}

#if SOCKACT_HAS_EXCEPTIONS
/// Throwing form of listen_fds(options, ec).
/// @throws std::system_error whose what() names the variable and value at fault.
inline std::vector<passed_fd> listen_fds(const listen_options& options) {
  // Kept for the message only: the call may unset the variables.
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  std::vector<passed_fd> fds = listen_fds(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds: " + detail::explain_failure(before, options.pid_check, true, ec));
  return fds;
}

/// Throwing form of listen_fds(unset_environment, ec).
/// @throws std::system_error whose what() names the variable and value at fault.
inline std::vector<passed_fd> listen_fds(bool unset_environment = false) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds(options);
}

/// Throwing form of listen_fds_count().
inline int listen_fds_count(const listen_options& options) {
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  const int n = listen_fds_count(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds_count: " + detail::explain_failure(before, options.pid_check, false, ec));
  return n;
}

/// Throwing form of listen_fds_count().
inline int listen_fds_count(bool unset_environment = false) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds_count(options);
}
#endif

/// The first fd with this name, or nullptr.
inline const passed_fd* find_fd(const std::vector<passed_fd>& fds, std::string_view name) noexcept {
  for (const passed_fd& l : fds)
    if (l.name == name) return &l;
  return nullptr;
}

/// All fds with this name, in order (a socket unit may listen on several
/// addresses under one FileDescriptorName=).
inline std::vector<passed_fd> fds_named(const std::vector<passed_fd>& fds, std::string_view name) {
  std::vector<passed_fd> out;
  for (const passed_fd& l : fds)
    if (l.name == name) out.push_back(l);
  return out;
}

}  // namespace sockact

#endif  // SOCKACT_LISTEN_FDS_HPP
