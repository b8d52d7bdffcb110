// SPDX-License-Identifier: MIT
// The definitions of <sockact/diagnose.hpp>'s functions: included by that
// header when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_DIAGNOSE_IPP
#define SOCKACT_IMPL_DIAGNOSE_IPP

#include <sockact/diagnose.hpp>

#include <sockact/detail/text.hpp>
#include <sockact/impl/listen_fds.ipp>  // detail::examine(), detail::describe()
#include <sockact/unique_fd.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

SOCKACT_DECL const char* status_name(activation_status s) noexcept {
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

SOCKACT_DECL bool diagnosis::has_warnings() const noexcept {
  for (const fd_report& r : fds)
    if (!r.warnings.empty()) return true;
  return false;
}

namespace detail {

SOCKACT_DECL void check_fds(diagnosis& d, int n, const std::vector<std::string>* names) {
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

/// How many generations up `ancestor` is from this process (1: the parent),
/// looking at most `levels` up through /proc; 0 when it is not found there.
SOCKACT_DECL int generations_up(pid_t ancestor, int levels) {
  pid_t pid = ::getpid();
  for (int depth = 1; depth <= levels && pid > 1; ++depth) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    const unique_fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f) return 0;
    char buf[512];
    const ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* end_of_name = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
    long parent = 0;
    if (end_of_name == nullptr || std::sscanf(end_of_name + 1, " %*c %ld", &parent) != 1) return 0;
    pid = static_cast<pid_t>(parent);
    if (pid == ancestor) return depth;
  }
  return 0;
}

/// What to do about what examine() found; empty when there is nothing to add.
SOCKACT_DECL std::string advise(const examination& x) {
  switch (x.status) {
    case activation_status::not_activated:
      return "start the program from a .socket unit, systemd-socket-activate -l ADDRESS, or "
             "podman with a socket-activated service; a wrapper that clears the environment "
             "(sudo, su -, env -i) drops these variables";
    case activation_status::listen_pid_missing:
      return "the service manager sets both; something between it and this program removed LISTEN_PID "
             "(pass it on, e.g. systemd-socket-activate -E or podman -e)";
    case activation_status::invalid_listen_pid:
      return "expected a decimal pid such as LISTEN_PID=" + std::to_string(::getpid());
    case activation_status::foreign_pid:
      if (x.pid == ::getppid())
        return "the process the manager started is our parent: an init or shell wrapper (podman run --init, "
               "tini, dumb-init, a shell script without exec) ran this program as a child. Use exec in "
               "scripts, drop --init, or opt in with SOCKACT_ALLOW_PARENT_PID=1 in the environment "
               "(sockact::activate(), libsockact-adopt.so) or listen_pid_check::allow_parent in code";
      if (x.pid == 1)
        return "LISTEN_PID=1 is what Podman passes into a container; this program is not PID 1 there, "
               "probably because of podman run --init or a wrapper shell: run it as the container's "
               "entry point, or opt in with SOCKACT_ALLOW_PARENT_PID=1 in the environment "
               "(sockact::activate(), libsockact-adopt.so) or listen_pid_check::allow_parent in code";
      if (const int up = generations_up(x.pid, 8); up > 1)
        return "LISTEN_PID is this program's ancestor, " + std::to_string(up) +
               " generations up: a wrapper started it as a child of a child instead of exec'ing it "
               "(npm/yarn start run 'sh -c', a script calling another one without exec). Start the "
               "server's own command from the unit (ExecStart=/usr/bin/node server.js, not npm start): "
               "Node, for one, also marks the fds it inherits close-on-exec, so they never get here";
      return "the variables were probably inherited from an ancestor that did not unset them "
             "(use listen_fds() there: it unsets them by default); opt in with listen_pid_check::allow_any "
             "only if this "
             "program really is the one meant";
    case activation_status::listen_fds_missing:
      return "the service manager sets both; something removed LISTEN_FDS";
    case activation_status::closed_fd:
      return "something closed it before sockact looked (a wrapper that closes inherited fds, or "
             "code that ran first), or LISTEN_* reached a process that did not inherit the fds";
    case activation_status::invalid_listen_fdnames:
      return "names are separated by ':'; a backslash escapes the next character";
    case activation_status::names_mismatch:
      return "give one name per fd, separated by ':' (systemd-socket-activate --fdname=a:b)";
    case activation_status::invalid_listen_pidfdid:
    case activation_status::pidfdid_mismatch:
    case activation_status::invalid_listen_fds:
    case activation_status::activated:
      break;
  }
  return {};
}

}  // namespace detail

SOCKACT_DECL diagnosis diagnose(const activation_environment& env, const listen_options& options) {
  const detail::listen_variables vars = detail::listen_variables::of(env);
  const detail::examination x =
      detail::examine(vars, options.pid_check, detail::listen_call::with_names, detail::fd_access::look);
  diagnosis d;
  d.status = x.status;
  if (x.error != 0) d.error.assign(x.error, std::generic_category());
  d.summary = detail::describe(x, vars);
  d.hint = detail::advise(x);
  if (x.count > 0) detail::check_fds(d, x.count, x.have_names ? &x.names : nullptr);
  if (d.activated() && d.has_warnings()) d.hint = "usable, with warnings below";
  return d;
}

SOCKACT_DECL diagnosis diagnose(const listen_options& options) {
  return diagnose(activation_environment::current(), options);
}

SOCKACT_DECL std::string diagnosis::to_string() const {
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

#endif  // SOCKACT_IMPL_DIAGNOSE_IPP
