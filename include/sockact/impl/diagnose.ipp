// SPDX-License-Identifier: MIT
// The definitions of <sockact/diagnose.hpp>'s functions: included by that
// header when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_DIAGNOSE_IPP
#define SOCKACT_IMPL_DIAGNOSE_IPP

#include <sockact/diagnose.hpp>

#include <sockact/detail/text.hpp>
#include <sockact/impl/listen_fds.ipp>  // detail::examine_environment()

#include <fcntl.h>
#include <cerrno>
#include <cstddef>
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

}  // namespace detail

SOCKACT_DECL diagnosis diagnose(const activation_environment& env, const listen_options& options) {
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
