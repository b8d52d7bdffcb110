// SPDX-License-Identifier: MIT
// The definitions of <sockact/listen_fds.hpp>'s functions: included by that
// header when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
// Also the internal detail::examine_environment(), which <sockact/impl/listen.ipp>
// and <sockact/impl/diagnose.ipp> use.
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

/// LISTEN_PIDFDID names one incarnation of LISTEN_PID. 0 when it matches or
/// cannot be checked, 1 when it names another incarnation, -errno when the
/// value is not a number.
SOCKACT_DECL int pidfdid_mismatch(const char* value, pid_t pid) noexcept {
  std::uint64_t wanted = 0;
  if (const int r = parse_u64(value, wanted); r < 0) return r;
  std::uint64_t actual = 0;
  if (pidfd_inode_id(pid, actual) < 0) return 0;  // cannot read ours: skip, as libsystemd
  return actual != wanted ? 1 : 0;
}

/// sd_listen_fds() without the unsetting: n, 0 (not for us) or -errno.
SOCKACT_DECL int count_listen_fds(listen_pid_check check) noexcept {
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
SOCKACT_DECL int receive_count(const listen_options& options) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
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
SOCKACT_DECL int receive(const listen_options& options, std::vector<passed_fd>& out) {
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

SOCKACT_DECL std::string process_label(pid_t pid) {
  const std::string name = process_name(pid);
  return "process " + std::to_string(pid) + (name.empty() ? "" : " (" + name + ")");
}

/// What the activation variables say, in words: the one explanation that
/// diagnose() reports and the throwing listen_fds() forms quote.
struct environment_verdict {
  activation_status status = activation_status::not_activated;
  std::error_code error;           ///< what listen_fds() reports (errno, generic category); empty when none
  std::string summary;             ///< one line naming the variables and values at fault
  std::string hint;                ///< what to do about it; may be empty
  int count = 0;                   ///< LISTEN_FDS when it was read and the fds are ours, else 0
  std::vector<std::string> names;  ///< LISTEN_FDNAMES split, when names_ok
  bool names_ok = false;
};

/// Examines `env` (a snapshot of the variables) and the fds as they are now,
/// in the order libsystemd checks them. `with_names`: as
/// sd_listen_fds_with_names() (LISTEN_FDNAMES counts), else as sd_listen_fds().
SOCKACT_DECL environment_verdict examine_environment(const activation_environment& env,
                                                     listen_pid_check check, bool with_names) {
  environment_verdict v;
  const auto var = [](const char* name, const std::string& value) {
    return std::string(name) + "=" + quote(value);
  };
  const auto fail = [&v](activation_status status, int err) {
    v.status = status;
    if (err != 0) v.error = std::error_code(err, std::generic_category());
    return v;
  };

  if (with_names && env.listen_fdnames) {
    if (split_names(env.listen_fdnames->c_str(), v.names) < 0) {
      v.summary = var("LISTEN_FDNAMES", *env.listen_fdnames) + " ends in a lone backslash";
      v.hint = "names are separated by ':'; a backslash escapes the next character";
      return fail(activation_status::invalid_listen_fdnames, EINVAL);
    }
    v.names_ok = true;
  }

  if (!env.listen_pid) {
    if (!env.listen_fds) {
      v.summary = "not socket-activated: LISTEN_PID and LISTEN_FDS are not set";
      v.hint =
          "start the program from a .socket unit, systemd-socket-activate -l ADDRESS, or "
          "podman with a socket-activated service; a wrapper that clears the environment "
          "(sudo, su -, env -i) drops these variables";
      return fail(activation_status::not_activated, 0);
    }
    v.summary = var("LISTEN_FDS", *env.listen_fds) + " is set but LISTEN_PID is not: the fds are ignored";
    v.hint =
        "the service manager sets both; something between it and this program removed LISTEN_PID "
        "(pass it on, e.g. systemd-socket-activate -E or podman -e)";
    return fail(activation_status::listen_pid_missing, 0);
  }

  pid_t pid = 0;
  if (const int r = parse_pid(env.listen_pid->c_str(), pid); r < 0) {
    v.summary = var("LISTEN_PID", *env.listen_pid) + " is not a valid process id (1.." +
                std::to_string(INT_MAX) + "): " + std::generic_category().message(-r);
    v.hint = "expected a decimal pid such as LISTEN_PID=" + std::to_string(::getpid());
    return fail(activation_status::invalid_listen_pid, -r);
  }

  const pid_t self = ::getpid();
  if (!pid_accepted(pid, check)) {
    const pid_t parent = ::getppid();
    v.summary = (env.listen_fds ? var("LISTEN_FDS", *env.listen_fds) + " is" : std::string("fds are")) +
                " meant for " + process_label(pid) + " (" + var("LISTEN_PID", *env.listen_pid) +
                "), but this is process " + std::to_string(self) + ": the fds are not taken";
    if (pid == parent) {
      v.hint =
          "the process the manager started is our parent: an init or shell wrapper (podman run --init, "
          "tini, dumb-init, a shell script without exec) ran this program as a child. Use exec in "
          "scripts, drop --init, or opt in with SOCKACT_ALLOW_PARENT_PID=1 in the environment "
          "(sockact::activate(), libsockact-adopt.so) or listen_pid_check::allow_parent in code";
    } else if (pid == 1) {
      v.hint =
          "LISTEN_PID=1 is what Podman passes into a container; this program is not PID 1 there, "
          "probably because of podman run --init or a wrapper shell: run it as the container's "
          "entry point, or opt in with SOCKACT_ALLOW_PARENT_PID=1 in the environment "
          "(sockact::activate(), libsockact-adopt.so) or listen_pid_check::allow_parent in code";
    } else {
      v.hint =
          "the variables were probably inherited from an ancestor that did not unset them "
          "(use listen_fds(true) there); opt in with listen_pid_check::allow_any only if this "
          "program really is the one meant";
    }
    return fail(activation_status::foreign_pid, 0);
  }

  if (env.listen_pidfdid) {
    std::uint64_t wanted = 0;
    if (const int r = parse_u64(env.listen_pidfdid->c_str(), wanted); r < 0) {
      v.summary = var("LISTEN_PIDFDID", *env.listen_pidfdid) +
                  " is not a number: " + std::generic_category().message(-r);
      return fail(activation_status::invalid_listen_pidfdid, -r);
    }
    std::uint64_t actual = 0;
    if (pidfd_inode_id(pid, actual) == 0 && actual != wanted) {
      v.summary = var("LISTEN_PIDFDID", *env.listen_pidfdid) + " names another process than " +
                  process_label(pid) + " (pidfd id " + std::to_string(actual) +
                  "): the pid was reused, the fds are not taken";
      return fail(activation_status::pidfdid_mismatch, 0);
    }
  }

  if (!env.listen_fds) {
    v.summary = var("LISTEN_PID", *env.listen_pid) + " names this process but LISTEN_FDS is not set";
    v.hint = "the service manager sets both; something removed LISTEN_FDS";
    return fail(activation_status::listen_fds_missing, 0);
  }

  int n = 0;
  const int r = parse_int(env.listen_fds->c_str(), n);
  if (r < 0 || n <= 0 || n > INT_MAX - listen_fds_start) {
    const int err = r < 0 ? -r : EINVAL;
    v.summary = var("LISTEN_FDS", *env.listen_fds) + " is not a count between 1 and " +
                std::to_string(INT_MAX - listen_fds_start) + ": " + std::generic_category().message(err);
    return fail(activation_status::invalid_listen_fds, err);
  }
  v.count = n;

  for (int fd = listen_fds_start; fd < listen_fds_start + n; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) {
      const int err = errno;
      v.summary = "fd " + std::to_string(fd) + " is not open, but " + var("LISTEN_FDS", *env.listen_fds) +
                  " says fds 3.." + std::to_string(listen_fds_start + n - 1) + " were passed";
      v.hint =
          "something closed it before sockact looked (a wrapper that closes inherited fds, or "
          "code that ran first), or LISTEN_* reached a process that did not inherit the fds";
      return fail(activation_status::closed_fd, err);
    }
  }

  if (v.names_ok && v.names.size() != static_cast<std::size_t>(n)) {
    v.summary = var("LISTEN_FDNAMES", *env.listen_fdnames) + " has " + std::to_string(v.names.size()) +
                " name(s) but " + var("LISTEN_FDS", *env.listen_fds);
    v.hint = "give one name per fd, separated by ':' (systemd-socket-activate --fdname=a:b)";
    return fail(activation_status::names_mismatch, EINVAL);
  }

  v.summary =
      "socket-activated: " + std::to_string(n) + " fd(s) for " +
      (pid == self ? "this process" : "this process by opt-in (LISTEN_PID=" + std::to_string(pid) + ")");
  return fail(activation_status::activated, 0);
}

/// The message of a failed receive: the verdict's summary when it names the
/// fault, else the errno text. `env` is the environment as it was before the
/// call (the call may have unset it).
SOCKACT_DECL std::string explain_failure(const activation_environment& env, listen_pid_check check,
                                         bool with_names, const std::error_code& ec) {
  const environment_verdict v = examine_environment(env, check, with_names);
  return v.error ? v.summary : ec.message();
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

SOCKACT_DECL std::vector<passed_fd> listen_fds(bool unset_environment, std::error_code& ec) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds(options, ec);
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

SOCKACT_DECL int listen_fds_count(bool unset_environment,
                                  std::error_code& ec) noexcept(!SOCKACT_USE_LIBSYSTEMD) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds_count(options, ec);
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL std::vector<passed_fd> listen_fds(const listen_options& options) {
  // Kept for the message only: the call may unset the variables.
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  std::vector<passed_fd> fds = listen_fds(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds: " + detail::explain_failure(before, options.pid_check, true, ec));
  return fds;
}

SOCKACT_DECL std::vector<passed_fd> listen_fds(bool unset_environment) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds(options);
}

SOCKACT_DECL int listen_fds_count(const listen_options& options) {
  const activation_environment before = activation_environment::current();
  std::error_code ec;
  const int n = listen_fds_count(options, ec);
  if (ec)
    detail::throw_error(
        ec, "sockact::listen_fds_count: " + detail::explain_failure(before, options.pid_check, false, ec));
  return n;
}

SOCKACT_DECL int listen_fds_count(bool unset_environment) {
  listen_options options;
  options.unset_environment = unset_environment;
  return listen_fds_count(options);
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
