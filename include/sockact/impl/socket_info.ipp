// SPDX-License-Identifier: MIT
// The definitions of <sockact/socket_info.hpp>'s functions: included by that
// header when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_SOCKET_INFO_IPP
#define SOCKACT_IMPL_SOCKET_INFO_IPP

#include <sockact/socket_info.hpp>

#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace sockact {

namespace detail {

// Each returns 1, 0 or -errno, as the libsystemd function it is named after.

SOCKACT_DECL bool same_inode(const struct stat& a, const struct stat& b) noexcept {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

SOCKACT_DECL int is_fifo(int fd, const char* path) noexcept {
  if (fd < 0) return -EBADF;
  struct stat st {};
  if (::fstat(fd, &st) < 0) return -errno;
  if (!S_ISFIFO(st.st_mode)) return 0;
  if (path == nullptr) return 1;
  struct stat sp {};
  if (::stat(path, &sp) < 0) return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
  return same_inode(st, sp) ? 1 : 0;
}

SOCKACT_DECL int is_special(int fd, const char* path) noexcept {
  if (fd < 0) return -EBADF;
  struct stat st {};
  if (::fstat(fd, &st) < 0) return -errno;
  if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) return 0;
  if (path == nullptr) return 1;
  struct stat sp {};
  if (::stat(path, &sp) < 0) return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
  if (S_ISREG(st.st_mode) && S_ISREG(sp.st_mode)) return same_inode(st, sp) ? 1 : 0;
  if (S_ISCHR(st.st_mode) && S_ISCHR(sp.st_mode)) return st.st_rdev == sp.st_rdev ? 1 : 0;
  return 0;
}

SOCKACT_DECL int int_sockopt(int fd, int option, int& value) noexcept {
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) < 0) return -errno;
  if (len != sizeof value) return -EINVAL;
  return 0;
}

SOCKACT_DECL int is_socket_of(int fd, int type, int listen) noexcept {
  if (fd < 0) return -EBADF;
  if (type < 0) return -EINVAL;
  struct stat st {};
  if (::fstat(fd, &st) < 0) return -errno;
  if (!S_ISSOCK(st.st_mode)) return 0;
  if (type != 0) {
    int actual = 0;
    if (const int r = int_sockopt(fd, SO_TYPE, actual); r < 0) return r;
    if (actual != type) return 0;
  }
  if (listen >= 0) {
    int accepting = 0;
    if (const int r = int_sockopt(fd, SO_ACCEPTCONN, accepting); r < 0) return r;
    if ((accepting != 0) != (listen != 0)) return 0;
  }
  return 1;
}

SOCKACT_DECL int local_address(int fd, sockaddr_storage& sa, socklen_t& len) noexcept {
  sa = sockaddr_storage{};
  len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return -errno;
  if (len < sizeof(sa_family_t)) return -EINVAL;
  return 0;
}

SOCKACT_DECL int is_socket(int fd, int family, int type, int listen) noexcept {
  if (fd < 0) return -EBADF;
  if (family < 0) return -EINVAL;
  if (const int r = is_socket_of(fd, type, listen); r <= 0) return r;
  if (family == 0) return 1;
  sockaddr_storage sa;
  socklen_t len = 0;
  if (const int r = local_address(fd, sa, len); r < 0) return r;
  return sa.ss_family == family ? 1 : 0;
}

SOCKACT_DECL std::uint16_t inet_port(const sockaddr_storage& sa) noexcept {
  if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(sa).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6&>(sa).sin6_port);
}

SOCKACT_DECL int is_socket_inet(int fd, int family, int type, int listen, std::uint16_t port) noexcept {
  if (fd < 0) return -EBADF;
  if (family != 0 && family != AF_INET && family != AF_INET6) return -EINVAL;
  if (const int r = is_socket_of(fd, type, listen); r <= 0) return r;
  sockaddr_storage sa;
  socklen_t len = 0;
  if (const int r = local_address(fd, sa, len); r < 0) return r;
  if (sa.ss_family != AF_INET && sa.ss_family != AF_INET6) return 0;
  if (family != 0 && sa.ss_family != family) return 0;
  if (port > 0) return inet_port(sa) == port ? 1 : 0;
  return 1;
}

SOCKACT_DECL int is_socket_sockaddr(int fd, int type, const sockaddr* addr, socklen_t addr_len,
                                    int listen) noexcept {
  if (fd < 0) return -EBADF;
  if (addr == nullptr) return -EINVAL;
  if (addr_len < sizeof(sa_family_t)) return -ENOBUFS;
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) return -EPFNOSUPPORT;
  if (const int r = is_socket_of(fd, type, listen); r <= 0) return r;
  sockaddr_storage sa;
  socklen_t len = 0;
  if (const int r = local_address(fd, sa, len); r < 0) return r;
  if (sa.ss_family != addr->sa_family) return 0;
  if (sa.ss_family == AF_INET) {
    if (len < sizeof(sockaddr_in) || addr_len < sizeof(sockaddr_in)) return -EINVAL;
    sockaddr_in want{};
    std::memcpy(&want, addr, sizeof want);
    const auto& have = reinterpret_cast<const sockaddr_in&>(sa);
    if (want.sin_port != 0 && have.sin_port != want.sin_port) return 0;
    return have.sin_addr.s_addr == want.sin_addr.s_addr ? 1 : 0;
  }
  if (len < sizeof(sockaddr_in6) || addr_len < sizeof(sockaddr_in6)) return -EINVAL;
  sockaddr_in6 want{};
  std::memcpy(&want, addr, sizeof want);
  const auto& have = reinterpret_cast<const sockaddr_in6&>(sa);
  if (want.sin6_port != 0 && have.sin6_port != want.sin6_port) return 0;
  if (want.sin6_flowinfo != 0 && have.sin6_flowinfo != want.sin6_flowinfo) return 0;
  if (want.sin6_scope_id != 0 && have.sin6_scope_id != want.sin6_scope_id) return 0;
  return std::memcmp(&have.sin6_addr, &want.sin6_addr, sizeof want.sin6_addr) == 0 ? 1 : 0;
}

SOCKACT_DECL int is_socket_unix(int fd, int type, int listen, const char* path, std::size_t length) noexcept {
  if (fd < 0) return -EBADF;
  if (const int r = is_socket_of(fd, type, listen); r <= 0) return r;
  sockaddr_storage sa;
  socklen_t len = 0;
  if (const int r = local_address(fd, sa, len); r < 0) return r;
  if (sa.ss_family != AF_UNIX) return 0;
  if (path == nullptr) return 1;
  const auto& un = reinterpret_cast<const sockaddr_un&>(sa);
  const std::size_t base = offsetof(sockaddr_un, sun_path);
  if (length == 0) length = std::strlen(path);
  if (length == 0) return len == base ? 1 : 0;  // unnamed socket
  if (path[0] != '\0')                          // path name, NUL included
    return (len >= base + length + 1 && std::memcmp(path, un.sun_path, length + 1) == 0) ? 1 : 0;
  // abstract name: exact length, no terminator
  return (len == base + length && std::memcmp(path, un.sun_path, length) == 0) ? 1 : 0;
}

/// mq_getattr() as a plain syscall, so that no -lrt is needed on older glibc.
SOCKACT_DECL int mq_attributes(int fd, struct mq_attr& attr) noexcept {
  return static_cast<int>(::syscall(SYS_mq_getsetattr, fd, nullptr, &attr));
}

SOCKACT_DECL int is_mq(int fd, const char* path) noexcept {
  if (fd < 0) return -EBADF;
  if (::fcntl(fd, F_GETFD) < 0) return -errno;
  struct mq_attr attr {};
  if (mq_attributes(fd, attr) < 0) return errno == EBADF ? 0 : -errno;  // EBADF: open, not an mq
  if (path == nullptr) return 1;
  if (path[0] != '/') return -EINVAL;
  struct stat a {};
  if (::fstat(fd, &a) < 0) return -errno;
  const std::string full = std::string("/dev/mqueue") + path;
  struct stat b {};
  if (::stat(full.c_str(), &b) < 0) return -errno;
  return same_inode(a, b) ? 1 : 0;
}

SOCKACT_DECL bool to_bool(int r, std::error_code& ec) noexcept {
  if (r < 0) {
    ec.assign(-r, std::generic_category());
    return false;
  }
  ec.clear();
  return r > 0;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL bool to_bool_or_throw(int r, const char* what) {
  std::error_code ec;
  const bool b = to_bool(r, ec);
  if (ec) throw_error(ec, what);
  return b;
}
#endif

}  // namespace detail

SOCKACT_DECL bool is_fifo(int fd, const char* path, std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_fifo(fd, path), ec);
}

SOCKACT_DECL bool is_special(int fd, const char* path, std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_special(fd, path), ec);
}

SOCKACT_DECL bool is_socket(int fd, int family, int type, socket_state l, std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_socket(fd, family, type, static_cast<int>(l)), ec);
}

SOCKACT_DECL bool is_socket_inet(int fd, int family, int type, socket_state l, std::uint16_t port,
                                 std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_socket_inet(fd, family, type, static_cast<int>(l), port), ec);
}

SOCKACT_DECL bool is_socket_sockaddr(int fd, int type, const sockaddr* addr, socklen_t addr_len,
                                     socket_state l, std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_socket_sockaddr(fd, type, addr, addr_len, static_cast<int>(l)), ec);
}

SOCKACT_DECL bool is_socket_unix(int fd, int type, socket_state l, const char* path, std::size_t length,
                                 std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_socket_unix(fd, type, static_cast<int>(l), path, length), ec);
}

SOCKACT_DECL bool is_mq(int fd, const char* path, std::error_code& ec) noexcept {
  return detail::to_bool(detail::is_mq(fd, path), ec);
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL bool is_fifo(int fd, const char* path) {
  return detail::to_bool_or_throw(detail::is_fifo(fd, path), "sockact::is_fifo");
}
SOCKACT_DECL bool is_special(int fd, const char* path) {
  return detail::to_bool_or_throw(detail::is_special(fd, path), "sockact::is_special");
}
SOCKACT_DECL bool is_socket(int fd, int family, int type, socket_state l) {
  return detail::to_bool_or_throw(detail::is_socket(fd, family, type, static_cast<int>(l)),
                                  "sockact::is_socket");
}
SOCKACT_DECL bool is_socket_inet(int fd, int family, int type, socket_state l, std::uint16_t port) {
  return detail::to_bool_or_throw(detail::is_socket_inet(fd, family, type, static_cast<int>(l), port),
                                  "sockact::is_socket_inet");
}
SOCKACT_DECL bool is_socket_sockaddr(int fd, int type, const sockaddr* addr, socklen_t addr_len,
                                     socket_state l) {
  return detail::to_bool_or_throw(detail::is_socket_sockaddr(fd, type, addr, addr_len, static_cast<int>(l)),
                                  "sockact::is_socket_sockaddr");
}
SOCKACT_DECL bool is_socket_unix(int fd, int type, socket_state l, const char* path, std::size_t length) {
  return detail::to_bool_or_throw(detail::is_socket_unix(fd, type, static_cast<int>(l), path, length),
                                  "sockact::is_socket_unix");
}
SOCKACT_DECL bool is_mq(int fd, const char* path) {
  return detail::to_bool_or_throw(detail::is_mq(fd, path), "sockact::is_mq");
}
#endif

SOCKACT_DECL std::string family_name(int family) {
  switch (family) {
    case AF_INET:
      return "inet";
    case AF_INET6:
      return "inet6";
    case AF_UNIX:
      return "unix";
    case AF_NETLINK:
      return "netlink";
    case AF_PACKET:
      return "packet";
#ifdef AF_VSOCK
    case AF_VSOCK:
      return "vsock";
#endif
    default:
      return "family " + std::to_string(family);
  }
}

SOCKACT_DECL std::string type_name(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "stream";
    case SOCK_DGRAM:
      return "datagram";
    case SOCK_SEQPACKET:
      return "seqpacket";
    case SOCK_RAW:
      return "raw";
    default:
      return "type " + std::to_string(type);
  }
}

SOCKACT_DECL const char* kind_name(fd_kind k) noexcept {
  switch (k) {
    case fd_kind::socket:
      return "socket";
    case fd_kind::fifo:
      return "fifo";
    case fd_kind::regular_file:
      return "regular file";
    case fd_kind::character_device:
      return "character device";
    case fd_kind::block_device:
      return "block device";
    case fd_kind::directory:
      return "directory";
    case fd_kind::message_queue:
      return "message queue";
    case fd_kind::other:
      return "other";
  }
  return "other";
}

SOCKACT_DECL std::string address_to_string(const sockaddr* sa, socklen_t len) {
  if (len < sizeof(sa_family_t)) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      sockaddr_in in{};
      std::memcpy(&in, sa, len < sizeof in ? len : sizeof in);
      ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(in.sin_port));
    }
    case AF_INET6: {
      sockaddr_in6 in6{};
      std::memcpy(&in6, sa, len < sizeof in6 ? len : sizeof in6);
      ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
      std::string out = "[" + std::string(buf);
      if (in6.sin6_scope_id != 0) out += "%" + std::to_string(in6.sin6_scope_id);
      return out + "]:" + std::to_string(ntohs(in6.sin6_port));
    }
    case AF_UNIX: {
      const std::size_t base = offsetof(sockaddr_un, sun_path);
      if (len <= base) return "";
      const char* p = reinterpret_cast<const sockaddr_un*>(sa)->sun_path;
      std::size_t n = len - base;
      if (p[0] == '\0') {
        std::string q = detail::quote(std::string_view(p + 1, n - 1), 200);
        return "@" + q.substr(1, q.size() - 2);
      }
      n = ::strnlen(p, n);
      return std::string(p, n);
    }
#ifdef AF_VSOCK
    case AF_VSOCK: {
      struct vsock_like {
        sa_family_t family;
        unsigned short reserved;
        unsigned int port;
        unsigned int cid;
      } v{};
      std::memcpy(&v, sa, len < sizeof v ? len : sizeof v);
      return "vsock:" + std::to_string(v.cid) + ":" + std::to_string(v.port);
    }
#endif
    default:
      return family_name(sa->sa_family);
  }
}

SOCKACT_DECL fd_info describe_fd(int fd, std::error_code& ec) {
  fd_info info;
  info.fd = fd;
  ec.clear();
  const int fdflags = fd < 0 ? -1 : ::fcntl(fd, F_GETFD);
  if (fdflags < 0) {
    ec.assign(fd < 0 ? EBADF : errno, std::generic_category());
    return info;
  }
  info.cloexec = (fdflags & FD_CLOEXEC) != 0;
  const int flflags = ::fcntl(fd, F_GETFL);
  info.nonblocking = flflags >= 0 && (flflags & O_NONBLOCK) != 0;
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    ec.assign(errno, std::generic_category());
    return info;
  }
  if (S_ISSOCK(st.st_mode))
    info.kind = fd_kind::socket;
  else if (S_ISFIFO(st.st_mode))
    info.kind = fd_kind::fifo;
  else if (S_ISCHR(st.st_mode))
    info.kind = fd_kind::character_device;
  else if (S_ISBLK(st.st_mode))
    info.kind = fd_kind::block_device;
  else if (S_ISDIR(st.st_mode))
    info.kind = fd_kind::directory;
  else if (detail::is_mq(fd, nullptr) > 0)
    info.kind = fd_kind::message_queue;
  else if (S_ISREG(st.st_mode))
    info.kind = fd_kind::regular_file;
  if (info.kind != fd_kind::socket) return info;

  int value = 0;
  if (detail::int_sockopt(fd, SO_TYPE, value) == 0) info.type = value;
  if (detail::int_sockopt(fd, SO_PROTOCOL, value) == 0) info.protocol = value;
  if (detail::int_sockopt(fd, SO_ACCEPTCONN, value) == 0) info.listening = value != 0;
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    info.family = sa.ss_family;
    info.local_address = address_to_string(reinterpret_cast<sockaddr*>(&sa), len);
  } else if (detail::int_sockopt(fd, SO_DOMAIN, value) == 0) {
    info.family = value;
  }
  sockaddr_storage peer{};
  len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    info.connected = true;
    info.peer_address = address_to_string(reinterpret_cast<sockaddr*>(&peer), len);
  }
  return info;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL fd_info describe_fd(int fd) {
  std::error_code ec;
  fd_info info = describe_fd(fd, ec);
  if (ec) detail::throw_error(ec, "sockact::describe_fd(" + std::to_string(fd) + ")");
  return info;
}
#endif

SOCKACT_DECL std::string fd_info::to_string() const {
  std::string out = "fd " + std::to_string(fd) + ": ";
  if (kind != fd_kind::socket) {
    out += kind_name(kind);
  } else {
    out += family_name(family) + " " + type_name(type);
    if (protocol == IPPROTO_TCP && (family == AF_INET || family == AF_INET6))
      out += " tcp";
    else if (protocol == IPPROTO_UDP && (family == AF_INET || family == AF_INET6))
      out += " udp";
    else if (protocol == IPPROTO_SCTP)
      out += " sctp";
    if (listening)
      out += " listening";
    else if (connected)
      out += " connected";
    else if (type == SOCK_STREAM || type == SOCK_SEQPACKET)
      out += " not-listening";
    out += " " + (local_address.empty() ? std::string("(unnamed)") : local_address);
    if (connected) out += " peer " + (peer_address.empty() ? std::string("(unnamed)") : peer_address);
  }
  out += nonblocking ? " nonblocking" : " blocking";
  return out;
}

namespace detail {

// For inet sockets the protocol must be the one the type implies: MPTCP is a
// drop-in for TCP (SocketProtocol=mptcp), UDP-Lite for UDP; SCTP is neither.
SOCKACT_DECL bool inet_protocol_fits(const fd_info& info) noexcept {
  if (info.type == SOCK_STREAM) return info.protocol == IPPROTO_TCP || info.protocol == ipproto_mptcp;
  if (info.type == SOCK_DGRAM) return info.protocol == IPPROTO_UDP || info.protocol == IPPROTO_UDPLITE;
  return true;
}

SOCKACT_DECL std::string fd_label(int fd, std::string_view name) {
  std::string out = "fd " + std::to_string(fd);
  if (!name.empty()) out += " (" + quote(name) + ")";
  return out;
}

SOCKACT_DECL std::string what_it_is(const fd_info& info) {
  std::string got = info.to_string();
  const std::size_t colon = got.find(": ");
  if (colon != std::string::npos) got.erase(0, colon + 2);
  return got;
}

SOCKACT_DECL bool kind_error(std::error_code code, std::string text, std::error_code& ec, std::string* why) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

SOCKACT_DECL bool check_kind(const fd_info& info, const wanted_kind& w, const std::string& label,
                             std::error_code& ec, std::string* why) {
  if (!info.is_socket())
    return kind_error(errc::not_a_socket, label + " is a " + kind_name(info.kind) + ", not a socket", ec,
                      why);
  const bool inet = info.family == AF_INET || info.family == AF_INET6;
  errc problem{};
  if (w.family == wanted_family::inet ? !inet : w.family == wanted_family::local && info.family != AF_UNIX)
    problem = errc::wrong_family;
  else if ((info.type != w.type && (w.alt_type == 0 || info.type != w.alt_type)) ||
           (w.family == wanted_family::inet && !inet_protocol_fits(info)))
    problem = errc::wrong_type;
  else if ((w.state == wanted_state::listening && !info.listening) ||
           (w.state == wanted_state::listening_or_connected && !info.listening && !info.connected))
    problem = errc::not_listening;
  else if (w.state == wanted_state::connected && (info.listening || !info.connected))
    problem = errc::not_connected;
  if (problem == errc{}) {
    ec.clear();
    return true;
  }
  return kind_error(problem, label + ": wanted " + w.description + ", got " + what_it_is(info), ec, why);
}

SOCKACT_DECL bool check_fd(int fd, std::string_view name, const wanted_kind& w, fd_info& info,
                           std::error_code& ec, std::string* why) {
  info = describe_fd(fd, ec);
  if (ec)
    return kind_error(
        ec,
        fd_label(fd, name) + (ec == std::errc::bad_file_descriptor ? " is not open" : ": " + ec.message()),
        ec, why);
  return check_kind(info, w, fd_label(fd, name), ec, why);
}

}  // namespace detail

}  // namespace sockact

#endif  // SOCKACT_IMPL_SOCKET_INFO_IPP
