// SPDX-License-Identifier: MIT
// The definitions of <sockact/notify.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_NOTIFY_IPP
#define SOCKACT_IMPL_NOTIFY_IPP

#include <sockact/notify.hpp>

#include <sockact/detail/config.hpp>
#include <sockact/detail/parse.hpp>
#include <sockact/detail/posix.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if SOCKACT_DETAIL_HAVE_VSOCK
#include <linux/vm_sockets.h>
#endif

#if SOCKACT_USE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace sockact {
namespace detail {

SOCKACT_DECL int parse_uint(const char* s, unsigned& out) noexcept {
  std::uint64_t v = 0;
  if (const int r = parse_u64(s, v); r < 0) return r;
  if (v > 0xffffffffu) return -ERANGE;
  out = static_cast<unsigned>(v);
  return 0;
}

SOCKACT_DECL int parse_vsock_cid(const std::string& s, unsigned& cid) noexcept {
  if (s.empty() || s == "any" || s == "-1")
    cid = 0xffffffffu;  // VMADDR_CID_ANY
  else if (s == "hypervisor")
    cid = 0;
  else if (s == "local")
    cid = 1;
  else if (s == "host")
    cid = 2;
  else
    return parse_uint(s.c_str(), cid);
  return 0;
}

SOCKACT_DECL int parse_notify_address(const char* e, notify_address& a) {
  a = notify_address{};
  if (e[0] == '/' || e[0] == '@') {
    auto& un = reinterpret_cast<sockaddr_un&>(a.storage);
    un.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(e);
    if (len < 2) return -EINVAL;
    if (len > sizeof un.sun_path - 1)                // room for a NUL, in both forms
      return e[0] == '@' ? -EINVAL : -ENAMETOOLONG;  // as libsystemd's sockaddr_un_set_path()
    if (e[0] == '/') {
      std::memcpy(un.sun_path, e, len + 1);
      a.size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + 1);
    } else {
      std::memcpy(un.sun_path + 1, e + 1, len - 1);  // '@' becomes the leading NUL
      a.size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    }
    return 0;
  }
  const char* rest = nullptr;
  for (const auto& [prefix, type] : {std::pair<const char*, int>{"vsock:", 0},
                                     {"vsock-stream:", SOCK_STREAM},
                                     {"vsock-dgram:", SOCK_DGRAM},
                                     {"vsock-seqpacket:", SOCK_SEQPACKET}}) {
    if (std::strncmp(e, prefix, std::strlen(prefix)) == 0) {
      rest = e + std::strlen(prefix);
      a.type = type;
      break;
    }
  }
  if (rest == nullptr) return -EINVAL;
  const char* colon = std::strchr(rest, ':');
  if (colon == nullptr) return -EINVAL;
  unsigned port = 0, cid = 0;
  if (const int r = parse_uint(colon + 1, port); r < 0) return r;
  if (port == 0xffffffffu) return -EINVAL;  // VMADDR_PORT_ANY
  if (const int r = parse_vsock_cid(std::string(rest, static_cast<std::size_t>(colon - rest)), cid); r < 0)
    return r;
  if (cid == 0xffffffffu) return -EINVAL;  // a specific CID is required
#if SOCKACT_DETAIL_HAVE_VSOCK
  auto& vm = reinterpret_cast<sockaddr_vm&>(a.storage);
  vm.svm_family = AF_VSOCK;
  vm.svm_cid = cid;
  vm.svm_port = port;
  a.size = sizeof(sockaddr_vm);
  return 0;
#else
  return -EAFNOSUPPORT;
#endif
}

}  // namespace detail

SOCKACT_DECL bool notify_socket_usable(std::string* why) {
  const char* e = std::getenv("NOTIFY_SOCKET");
  if (e == nullptr) return true;
  detail::notify_address a;
  const int r = detail::parse_notify_address(e, a);
  std::string problem;
  if (r < 0) {
    problem = r == -ENAMETOOLONG ? "the path is longer than a unix socket address can hold"
                                 : "not a /path, @abstract name or vsock:CID:PORT";
  } else if (e[0] == '/') {
    struct stat st {};
    if (::stat(e, &st) != 0)
      problem = std::string("cannot be reached: ") + std::strerror(errno);
    else if (!S_ISSOCK(st.st_mode))
      problem = "is not a socket";
  }
  if (problem.empty()) return true;
  if (why != nullptr)
    *why = "NOTIFY_SOCKET=" + detail::quote(e) + " " + problem +
           "; READY=1, STOPPING=1 and watchdog pings will be lost";
  return false;
}

namespace detail {

SOCKACT_DECL void grow_send_buffer(int fd) noexcept {
  constexpr int wanted = 8 * 1024 * 1024;  // as libsystemd: room for large STATUS= or many fds
  int current = 0;
  socklen_t len = sizeof current;
  if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &len) == 0 && current >= wanted / 2) return;
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &wanted, sizeof wanted) < 0)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &wanted, sizeof wanted);
}

#if SOCKACT_DETAIL_HAVE_VSOCK
// The manager trusts messages from privileged vsock ports; try them, top down.
SOCKACT_DECL int bind_privileged_vsock_port(int fd) noexcept {
  sockaddr_vm vm{};
  vm.svm_family = AF_VSOCK;
  vm.svm_cid = VMADDR_CID_ANY;
  for (unsigned port = 1023; port > 0; --port) {
    vm.svm_port = port;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&vm), sizeof vm) == 0) return 0;
    if (errno != EADDRINUSE) return -errno;
  }
  return -EADDRINUSE;
}
#endif

SOCKACT_DECL int send_notify(pid_t pid, std::string_view state, const int* fds, std::size_t n_fds) {
  if (n_fds > 0 && fds == nullptr) return -EINVAL;
  if (n_fds > 253) return -E2BIG;  // SCM_MAX_FD: the kernel would say EINVAL
  const char* e = std::getenv("NOTIFY_SOCKET");
  if (e == nullptr) return 0;
  notify_address a;
  if (const int r = parse_notify_address(e, a); r < 0) return r;
  const int family = reinterpret_cast<const sockaddr&>(a.storage).sa_family;

  int type = a.type == 0 ? SOCK_DGRAM : a.type;
  int raw = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (raw < 0 && family != AF_UNIX && a.type == 0 &&
      (errno == ENODEV || errno == EOPNOTSUPP || errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT ||
       errno == EPFNOSUPPORT)) {
    type = SOCK_SEQPACKET;  // some hypervisors have no vsock datagrams
    raw = ::socket(family, type | SOCK_CLOEXEC, 0);
    if (raw < 0 && (errno == EOPNOTSUPP || errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)) {
      type = SOCK_STREAM;
      raw = ::socket(family, type | SOCK_CLOEXEC, 0);
    }
  }
  if (raw < 0) return -errno;
  struct closer {
    int fd;
    ~closer() { close_own(fd); }
  } guard{raw};

#if SOCKACT_DETAIL_HAVE_VSOCK
  if (family == AF_VSOCK)
    if (const int r = bind_privileged_vsock_port(raw); r < 0 && r != -EPERM && r != -EACCES) return r;
#endif
  msghdr msg{};
  const bool connected = type == SOCK_STREAM || type == SOCK_SEQPACKET;
  if (connected) {
    if (::connect(raw, reinterpret_cast<const sockaddr*>(&a.storage), a.size) < 0) return -errno;
  } else {
    msg.msg_name = &a.storage;
    msg.msg_namelen = a.size;
  }
  grow_send_buffer(raw);

  const std::size_t nul = state.find('\0');
  const std::size_t len = nul < state.size() ? nul : state.size();  // up to a NUL, as a C string
  iovec iov{const_cast<char*>(state.data()), len};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  const pid_t self = ::getpid();
  bool send_ucred = (pid != 0 && pid != self) || ::getuid() != ::geteuid() || ::getgid() != ::getegid();
  std::vector<unsigned char> control;
  const auto build_control = [&] {
    const std::size_t fd_space = n_fds > 0 ? CMSG_SPACE(sizeof(int) * n_fds) : 0;
    const std::size_t cred_space = send_ucred ? CMSG_SPACE(sizeof(ucred)) : 0;
    control.assign(fd_space + cred_space, 0);
    msg.msg_control = control.empty() ? nullptr : control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = control.empty() ? nullptr : CMSG_FIRSTHDR(&msg);
    if (n_fds > 0) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
      std::memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
      c = CMSG_NXTHDR(&msg, c);
    }
    if (send_ucred) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof(ucred));
      ucred cred{pid != 0 ? pid : self, ::getuid(), ::getgid()};
      std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
    }
  };
  build_control();

  std::size_t sent = 0;
  for (;;) {  // not do/while: a `continue` must retry, also for an empty state
    iov.iov_base = const_cast<char*>(state.data()) + sent;
    iov.iov_len = len - sent;
    const ssize_t n = ::sendmsg(raw, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!send_ucred) return -errno;
      send_ucred = false;  // not allowed to speak for that pid: send as ourselves
      build_control();
      continue;
    }
    if (type != SOCK_STREAM && static_cast<std::size_t>(n) < len) return -EIO;
    sent += static_cast<std::size_t>(n);
    msg.msg_control = nullptr;  // fds and credentials go with the first part only
    msg.msg_controllen = 0;
    if (sent >= len) break;
  }

#if SOCKACT_DETAIL_HAVE_VSOCK
  if (family == AF_VSOCK && connected) {  // the manager reads until EOF
    if (::shutdown(raw, SHUT_WR) < 0) return -errno;
    char c = 0;
    const ssize_t n = ::recv(raw, &c, 1, 0);
    if (n < 0) return -errno;
    if (n > 0) return -EPROTO;
  }
#endif
  return 1;
}

SOCKACT_DECL bool notify_result(int r, std::error_code& ec) noexcept {
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    return false;
  }
  ec.clear();
  return r > 0;
}

}  // namespace detail

SOCKACT_DECL bool notify(std::string_view state, const int* fds, std::size_t n_fds,
                         const notify_options& options, std::error_code& ec) {
#if SOCKACT_USE_LIBSYSTEMD
  const std::string text(state.substr(0, state.find('\0')));
  const int r = ::sd_pid_notify_with_fds(options.pid, options.unset_environment ? 1 : 0, text.c_str(), fds,
                                         static_cast<unsigned>(n_fds));
#else
  const int r = detail::send_notify(options.pid, state, fds, n_fds);
  if (options.unset_environment) ::unsetenv("NOTIFY_SOCKET");
#endif
  return detail::notify_result(r, ec);
}

SOCKACT_DECL bool notify(std::string_view state, std::error_code& ec) {
  return notify(state, nullptr, 0, notify_options{}, ec);
}

SOCKACT_DECL std::optional<std::chrono::microseconds> watchdog_enabled(bool unset_environment,
                                                                       std::error_code& ec) {
  std::optional<std::chrono::microseconds> out;
  int r = 0;
  if (const char* s = std::getenv("WATCHDOG_USEC")) {
    std::uint64_t usec = 0;
    r = detail::parse_u64(s, usec);
    if (r == 0 && (usec == 0 || usec == UINT64_MAX)) r = -EINVAL;
    if (r == 0) {
      r = 1;
      if (const char* p = std::getenv("WATCHDOG_PID")) {
        pid_t pid = 0;
        r = detail::parse_pid(p, pid);
        if (r == 0) r = pid == ::getpid() ? 1 : 0;
      }
      if (r == 1) {
        constexpr auto max = static_cast<std::uint64_t>(std::chrono::microseconds::max().count());
        out = std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec > max ? max : usec));
      }
    }
  }
  if (unset_environment) {
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    return std::nullopt;
  }
  ec.clear();
  return out;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL bool notify(std::string_view state) {
  std::error_code ec;
  const bool sent = notify(state, ec);
  if (ec) {
    const char* e = std::getenv("NOTIFY_SOCKET");
    detail::throw_error(ec, "sockact::notify(" + detail::quote(state, 60) +
                                ") to NOTIFY_SOCKET=" + detail::quote(e != nullptr ? e : ""));
  }
  return sent;
}

SOCKACT_DECL std::optional<std::chrono::microseconds> watchdog_enabled(bool unset_environment) {
  const char* u = std::getenv("WATCHDOG_USEC");
  const char* p = std::getenv("WATCHDOG_PID");
  const std::string context = std::string("WATCHDOG_USEC=") + detail::quote(u != nullptr ? u : "") +
                              " WATCHDOG_PID=" + detail::quote(p != nullptr ? p : "");
  std::error_code ec;
  auto out = watchdog_enabled(unset_environment, ec);
  if (ec) detail::throw_error(ec, "sockact::watchdog_enabled: " + context);
  return out;
}
#endif

}  // namespace sockact

#endif  // SOCKACT_IMPL_NOTIFY_IPP
