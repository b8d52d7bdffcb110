// SPDX-License-Identifier: MIT
// The definitions of <sockact/listen_fds.hpp>'s functions: included by that
// header when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
// Also the internal detail::examine(), the one reading of the LISTEN_* rules,
// which <sockact/impl/diagnose.ipp> and <sockact/impl/listen.ipp> use too.
#ifndef SOCKACT_IMPL_LISTEN_FDS_IPP
#define SOCKACT_IMPL_LISTEN_FDS_IPP

#include <sockact/listen_fds.hpp>

#include <sockact/detail/parse.hpp>
#include <sockact/detail/posix.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if SOCKACT_USE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace sockact {

SOCKACT_DECL activation_environment activation_environment::current() {
  const auto get = [](const char* name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name)) return std::string(v);
    return std::nullopt;
  };
  return {get("LISTEN_PID"), get("LISTEN_PIDFDID"), get("LISTEN_FDS"), get("LISTEN_FDNAMES")};
}

namespace detail {

SOCKACT_DECL void unset_listen_environment() noexcept {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_PIDFDID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

/// Whether the policy lets us take fds meant for `pid`.
SOCKACT_DECL bool pid_accepted(pid_t pid, listen_pid_check check) noexcept {
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

/// The four variables as read; nullptr when unset. Points into the
/// environment or into an activation_environment, which must outlive it.
struct listen_variables {
  const char* pid = nullptr;
  const char* pidfdid = nullptr;
  const char* fds = nullptr;
  const char* fdnames = nullptr;

  static listen_variables current() noexcept;
  static listen_variables of(const activation_environment& env) noexcept;
};

/// Which libsystemd call to mirror: sd_listen_fds() ignores LISTEN_FDNAMES.
enum class listen_call { count, with_names };

/// What examine() does to fds 3..3+n-1: nothing (stop after LISTEN_FDS),
/// look (F_GETFD, for the diagnosis), or take (set FD_CLOEXEC, as libsystemd).
enum class fd_access { none, look, take };

/// What examine() found: the first rule broken, in libsystemd's order.
struct examination {
  activation_status status = activation_status::not_activated;
  int error = 0;                   ///< the errno libsystemd returns; 0 when it returns n or 0
  pid_t pid = 0;                   ///< LISTEN_PID, once parsed
  std::uint64_t pidfd_id = 0;      ///< pidfdid_mismatch: the pidfd id LISTEN_PID really has
  int count = 0;                   ///< LISTEN_FDS, once read and the fds are ours
  int bad_fd = -1;                 ///< closed_fd: the first fd not open
  bool have_names = false;         ///< LISTEN_FDNAMES was set and split (listen_call::with_names)
  std::vector<std::string> names;  ///< its names

  /// What sd_listen_fds*() returns: n, 0 or -errno.
  int result() const noexcept {
    if (error != 0) return -error;
    return status == activation_status::activated ? count : 0;
  }
};

SOCKACT_DECL listen_variables listen_variables::current() noexcept {
  return {std::getenv("LISTEN_PID"), std::getenv("LISTEN_PIDFDID"), std::getenv("LISTEN_FDS"),
          std::getenv("LISTEN_FDNAMES")};
}

SOCKACT_DECL listen_variables listen_variables::of(const activation_environment& env) noexcept {
  const auto ptr = [](const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; };
  return {ptr(env.listen_pid), ptr(env.listen_pidfdid), ptr(env.listen_fds), ptr(env.listen_fdnames)};
}

/// Reads `vars` by libsystemd's rules, step by step as sd_listen_fds() and
/// sd_listen_fds_with_names() in sd-daemon.c, without the unsetting. Changes
/// no fd unless `access` is take. The one place these rules are written.
SOCKACT_DECL examination examine(const listen_variables& vars, listen_pid_check check, listen_call call,
                                 fd_access access) {
  examination x;
  const auto fail = [&x](activation_status status, int err) {
    x.status = status;
    x.error = err;
    return x;
  };

  if (call == listen_call::with_names && vars.fdnames != nullptr) {
    if (split_names(vars.fdnames, x.names) < 0)
      return fail(activation_status::invalid_listen_fdnames, EINVAL);
    x.have_names = true;
  }

  if (vars.pid == nullptr)
    return fail(
        vars.fds == nullptr ? activation_status::not_activated : activation_status::listen_pid_missing, 0);
  if (const int r = parse_pid(vars.pid, x.pid); r < 0) return fail(activation_status::invalid_listen_pid, -r);
  if (!pid_accepted(x.pid, check)) return fail(activation_status::foreign_pid, 0);

  if (vars.pidfdid != nullptr) {
    std::uint64_t wanted = 0;
    if (const int r = parse_u64(vars.pidfdid, wanted); r < 0)
      return fail(activation_status::invalid_listen_pidfdid, -r);
    // Cannot read ours (old kernel): skip the check, as libsystemd does.
    if (pidfd_inode_id(x.pid, x.pidfd_id) == 0 && x.pidfd_id != wanted)
      return fail(activation_status::pidfdid_mismatch, 0);
  }

  if (vars.fds == nullptr) return fail(activation_status::listen_fds_missing, 0);
  int n = 0;
  if (const int r = parse_int(vars.fds, n); r < 0) return fail(activation_status::invalid_listen_fds, -r);
  if (n <= 0 || n > INT_MAX - listen_fds_start) return fail(activation_status::invalid_listen_fds, EINVAL);
  x.count = n;

  if (access != fd_access::none) {
    for (int fd = listen_fds_start; fd < listen_fds_start + n; ++fd) {
      const int r = access == fd_access::take ? set_cloexec(fd) : (::fcntl(fd, F_GETFD) < 0 ? -errno : 0);
      if (r < 0) {
        x.bad_fd = fd;
        return fail(activation_status::closed_fd, -r);
      }
    }
  }

  if (x.have_names && x.names.size() != static_cast<std::size_t>(n))
    return fail(activation_status::names_mismatch, EINVAL);
  return fail(activation_status::activated, 0);
}

SOCKACT_DECL std::string process_label(pid_t pid) {
  const std::string name = process_name(pid);
  return "process " + std::to_string(pid) + (name.empty() ? "" : " (" + name + ")");
}

/// One line naming the variable and value at fault (or what was taken): the
/// summary of diagnose() and the what() of the throwing listen_fds().
SOCKACT_DECL std::string describe(const examination& x, const listen_variables& vars) {
  const auto var = [](const char* name, const char* value) {
    return std::string(name) + "=" + quote(value != nullptr ? value : "");
  };
  switch (x.status) {
    case activation_status::not_activated:
      return "not socket-activated: LISTEN_PID and LISTEN_FDS are not set";
    case activation_status::listen_pid_missing:
      return var("LISTEN_FDS", vars.fds) + " is set but LISTEN_PID is not: the fds are ignored";
    case activation_status::invalid_listen_pid:
      return var("LISTEN_PID", vars.pid) + " is not a valid process id (1.." + std::to_string(INT_MAX) +
             "): " + std::generic_category().message(x.error);
    case activation_status::foreign_pid:
      return (vars.fds != nullptr ? var("LISTEN_FDS", vars.fds) + " is" : std::string("fds are")) +
             " meant for " + process_label(x.pid) + " (" + var("LISTEN_PID", vars.pid) +
             "), but this is process " + std::to_string(::getpid()) + ": the fds are not taken";
    case activation_status::invalid_listen_pidfdid:
      return var("LISTEN_PIDFDID", vars.pidfdid) +
             " is not a number: " + std::generic_category().message(x.error);
    case activation_status::pidfdid_mismatch:
      return var("LISTEN_PIDFDID", vars.pidfdid) + " names another process than " + process_label(x.pid) +
             " (pidfd id " + std::to_string(x.pidfd_id) + "): the pid was reused, the fds are not taken";
    case activation_status::listen_fds_missing:
      return var("LISTEN_PID", vars.pid) + " names this process but LISTEN_FDS is not set";
    case activation_status::invalid_listen_fds:
      return var("LISTEN_FDS", vars.fds) + " is not a count between 1 and " +
             std::to_string(INT_MAX - listen_fds_start) + ": " + std::generic_category().message(x.error);
    case activation_status::closed_fd:
      return "fd " + std::to_string(x.bad_fd) + " is not open, but " + var("LISTEN_FDS", vars.fds) +
             " says fds 3.." + std::to_string(listen_fds_start + x.count - 1) + " were passed";
    case activation_status::invalid_listen_fdnames:
      return var("LISTEN_FDNAMES", vars.fdnames) + " ends in a lone backslash";
    case activation_status::names_mismatch:
      return var("LISTEN_FDNAMES", vars.fdnames) + " has " + std::to_string(x.names.size()) +
             " name(s) but " + var("LISTEN_FDS", vars.fds);
    case activation_status::activated:
      break;
  }
  return "socket-activated: " + std::to_string(x.count) + " fd(s) for " +
         (x.pid == ::getpid() ? "this process"
                              : "this process by opt-in (LISTEN_PID=" + std::to_string(x.pid) + ")");
}

#if SOCKACT_USE_LIBSYSTEMD
/// Wraps one call into libsystemd so that it behaves as the native code:
/// LISTEN_PIDFDID is checked here (libsystemd < 259 ignores it, and does not
/// unset it), and with the foreign-pid opt-in libsystemd is shown our own pid,
/// the variables being put back afterwards when they are kept.
class libsystemd_call {
 public:
  libsystemd_call(const listen_options& options, listen_call call) : unset_(options.unset_environment) {
    const listen_variables vars = listen_variables::current();
    const examination x = examine(vars, options.pid_check, call, fd_access::none);
    switch (x.status) {
      case activation_status::invalid_listen_fdnames:  // libsystemd fails on these itself
      case activation_status::not_activated:
      case activation_status::listen_pid_missing:
      case activation_status::invalid_listen_pid:
      case activation_status::foreign_pid:
        return;
      case activation_status::invalid_listen_pidfdid:
      case activation_status::pidfdid_mismatch:
        early_ = x.result();
        return;
      default:
        break;
    }
    if (x.pid == ::getpid()) return;
    if (vars.pidfdid != nullptr) {
      saved_pidfdid_ = vars.pidfdid;
      ::unsetenv("LISTEN_PIDFDID");  // names the other process; libsystemd >= 259 would refuse
    }
    saved_pid_ = vars.pid;
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
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
SOCKACT_DECL int receive_count(const listen_options& options) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
#if SOCKACT_USE_LIBSYSTEMD
  const libsystemd_call call(options, listen_call::count);
  if (call.early_result()) return *call.early_result();
  return ::sd_listen_fds(options.unset_environment ? 1 : 0);
#else
  const examination x =
      examine(listen_variables::current(), options.pid_check, listen_call::count, fd_access::take);
  if (options.unset_environment) unset_listen_environment();  // on errors too, as libsystemd
  return x.result();
#endif
}

/// sd_listen_fds_with_names(unset, &names) with the pid policy.
SOCKACT_DECL int receive(const listen_options& options, std::vector<passed_fd>& out) {
  out.clear();
#if SOCKACT_USE_LIBSYSTEMD
  const libsystemd_call call(options, listen_call::with_names);
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
  examination x =
      examine(listen_variables::current(), options.pid_check, listen_call::with_names, fd_access::take);
  if (options.unset_environment) unset_listen_environment();  // on errors too, as libsystemd
  const int n = x.result();
  if (n <= 0) return n;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    out.push_back({listen_fds_start + i, x.have_names ? std::move(x.names[idx]) : std::string("unknown")});
  }
  return n;
#endif
}

// SOCKACT_ALLOW_PARENT_PID: 1 also takes fds meant for our parent (an init
// such as tini between the manager and us); 0, empty or unset leaves `check`
// as configured. It only widens: allow_any stays allow_any.
SOCKACT_DECL bool pid_check_from_environment(listen_pid_check& check, std::error_code& ec, std::string* why) {
  const char* v = std::getenv("SOCKACT_ALLOW_PARENT_PID");
  if (v == nullptr || *v == '\0') return true;
  const std::string_view value(v);
  if (value == "1" || value == "0") {
    if (value == "1" && check == listen_pid_check::strict) check = listen_pid_check::allow_parent;
    return true;
  }
  ec = std::make_error_code(std::errc::invalid_argument);
  if (why != nullptr)
    *why = "SOCKACT_ALLOW_PARENT_PID=" + quote(value) +
           " is neither 1 (also take the fds when LISTEN_PID is our parent's, as under podman run --init "
           "with tini) nor 0";
  return false;
}

/// The message of a failed receive: what examine() says of `env` (the
/// variables as they were before the call, which may have unset them) when
/// it names the fault, else the errno text.
SOCKACT_DECL std::string explain_failure(const activation_environment& env, listen_pid_check check,
                                         listen_call call, const std::error_code& ec) {
  const listen_variables vars = listen_variables::of(env);
  const examination x = examine(vars, check, call, fd_access::look);
  return x.error != 0 ? describe(x, vars) : ec.message();
}

}  // namespace detail

SOCKACT_DECL std::vector<passed_fd> listen_fds(const listen_options& options, std::error_code& ec) {
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

SOCKACT_DECL int listen_fds_count(const listen_options& options,
                                  std::error_code& ec) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
  const int r = detail::receive_count(options);
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    return -1;
  }
  ec.clear();
  return r;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL std::vector<passed_fd> listen_fds(const listen_options& options) {
  // Kept for the message only: the call may unset the variables.
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  std::vector<passed_fd> fds = listen_fds(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds: " +
                detail::explain_failure(before, options.pid_check, detail::listen_call::with_names, ec));
  return fds;
}

SOCKACT_DECL int listen_fds_count(const listen_options& options) {
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  const int n = listen_fds_count(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds_count: " +
                detail::explain_failure(before, options.pid_check, detail::listen_call::count, ec));
  return n;
}

#endif

SOCKACT_DECL const passed_fd* find_fd(const std::vector<passed_fd>& fds, std::string_view name) noexcept {
  for (const passed_fd& l : fds)
    if (l.name == name) return &l;
  return nullptr;
}

SOCKACT_DECL std::vector<passed_fd> fds_named(const std::vector<passed_fd>& fds, std::string_view name) {
  std::vector<passed_fd> out;
  for (const passed_fd& l : fds)
    if (l.name == name) out.push_back(l);
  return out;
}

}  // namespace sockact

#endif  // SOCKACT_IMPL_LISTEN_FDS_IPP
