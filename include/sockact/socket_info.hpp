// SPDX-License-Identifier: MIT
#ifndef SOCKACT_SOCKET_INFO_HPP
#define SOCKACT_SOCKET_INFO_HPP

// What an fd is: the sd_is_* family with libsystemd's results, and a full
// description of an fd for checks and messages.

#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>

#include <sys/socket.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace sockact {

/// libsystemd's "listening" argument of sd_is_socket() and friends: whether
/// to require a listening socket (SO_ACCEPTCONN), a non-listening one, or either.
enum class socket_state : int { any = -1, not_listening = 0, listening = 1 };

// The sd_is_* family. Each returns what libsystemd's function of the same name
// returns as 1 (true) or 0 (false); where libsystemd returns -errno, the ec
// overload sets ec to that errno (generic category) and returns false, and the
// other overload throws std::system_error.

/// sd_is_fifo(): fd is a FIFO, and (when path is given) the one at path.
SOCKACT_DECL bool is_fifo(int fd, const char* path, std::error_code& ec) noexcept;

/// sd_is_special(): fd is a regular file or character device (ListenSpecial=),
/// and (when path is given) the one at path.
SOCKACT_DECL bool is_special(int fd, const char* path, std::error_code& ec) noexcept;

/// sd_is_socket(): fd is a socket of this family (0: any), type (0: any) and
/// listening state.
SOCKACT_DECL bool is_socket(int fd, int family, int type, socket_state l, std::error_code& ec) noexcept;

/// sd_is_socket_inet(): an AF_INET or AF_INET6 socket (family 0: either), of
/// this type and listening state, bound to port (0: any).
SOCKACT_DECL bool is_socket_inet(int fd, int family, int type, socket_state l, std::uint16_t port,
                                 std::error_code& ec) noexcept;

/// sd_is_socket_sockaddr(): an inet socket bound to addr (port 0 in addr: any).
SOCKACT_DECL bool is_socket_sockaddr(int fd, int type, const sockaddr* addr, socklen_t addr_len,
                                     socket_state l, std::error_code& ec) noexcept;

/// sd_is_socket_unix(): an AF_UNIX socket, bound to path when given. An
/// abstract name starts with '\0' and is compared at exactly `length` bytes;
/// length 0 means strlen(path).
SOCKACT_DECL bool is_socket_unix(int fd, int type, socket_state l, const char* path, std::size_t length,
                                 std::error_code& ec) noexcept;

/// sd_is_mq(): a POSIX message queue, the one named path when given.
SOCKACT_DECL bool is_mq(int fd, const char* path, std::error_code& ec) noexcept;

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_fifo(int fd, const char* path = nullptr);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_special(int fd, const char* path = nullptr);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_socket(int fd, int family = 0, int type = 0, socket_state l = socket_state::any);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_socket_inet(int fd, int family = 0, int type = 0, socket_state l = socket_state::any,
                                 std::uint16_t port = 0);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_socket_sockaddr(int fd, int type, const sockaddr* addr, socklen_t addr_len,
                                     socket_state l = socket_state::any);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_socket_unix(int fd, int type = 0, socket_state l = socket_state::any,
                                 const char* path = nullptr, std::size_t length = 0);
/// @throws std::system_error where libsystemd returns -errno.
SOCKACT_DECL bool is_mq(int fd, const char* path = nullptr);
#endif

/// What kind of file an fd refers to.
enum class fd_kind {
  socket,
  fifo,
  regular_file,
  character_device,
  block_device,
  directory,
  message_queue,
  other
};

/// A description of one open fd; the socket fields are set for sockets only.
struct fd_info {
  int fd = -1;
  fd_kind kind = fd_kind::other;
  bool cloexec = false;
  bool nonblocking = false;   ///< O_NONBLOCK; shared with every copy of the open file (systemd's too)
  int family = 0;             ///< AF_INET, AF_INET6, AF_UNIX, ...
  int type = 0;               ///< SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, ...
  int protocol = 0;           ///< IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, ... (0 for unix)
  bool listening = false;     ///< SO_ACCEPTCONN: a listening stream/seqpacket socket
  bool connected = false;     ///< has a peer (an Accept=yes connection, a connected datagram socket)
  std::string local_address;  ///< "127.0.0.1:8080", "[::1]:8080", "/run/x.sock", "@name", "" (unnamed)
  std::string peer_address;   ///< as local_address, when connected

  bool is_socket() const noexcept { return kind == fd_kind::socket; }
  /// One line, e.g. "fd 3: inet6 stream tcp listening [::]:8080 blocking".
  std::string to_string() const;
};

/// "inet", "inet6", "unix", "netlink", "vsock", "packet" or "family N".
SOCKACT_DECL std::string family_name(int family);

/// "stream", "datagram", "seqpacket", "raw" or "type N".
SOCKACT_DECL std::string type_name(int type);

/// "socket", "fifo", "regular file", ...
SOCKACT_DECL const char* kind_name(fd_kind k) noexcept;

/// A socket address as text: "127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80",
/// "/path", "@abstract" (non-printable bytes as \xNN), "" for an unnamed unix
/// socket, "vsock:CID:PORT", or "family N".
SOCKACT_DECL std::string address_to_string(const sockaddr* sa, socklen_t len);

/// Describes an open fd (what the inspect program prints).
/// @param ec EBADF when fd is not open, or what fstat/getsockopt reported.
SOCKACT_DECL fd_info describe_fd(int fd, std::error_code& ec);

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error when fd is not open.
SOCKACT_DECL fd_info describe_fd(int fd);
#endif

namespace detail {

// What a consumer of a passed or bound socket takes. check_kind() is the one
// place that decides whether an fd fits: activate(), the Asio adopt() and the
// libuv adopt() all ask it, so the same fd gets the same answer and message.
enum class wanted_family { any, inet, local };
enum class wanted_state { any, listening, connected, listening_or_connected };

struct wanted_kind {
  const char* description;  // for messages: "a listening TCP socket"
  wanted_family family;
  int type;      // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  int alt_type;  // a second type also taken (SOCK_SEQPACKET next to SOCK_STREAM); 0: none
  wanted_state state;
};

inline constexpr int ipproto_mptcp = 262;  // IPPROTO_MPTCP, missing from older libc headers

// "fd 3" or "fd 3 ("web")": how every message names an fd.
SOCKACT_DECL std::string fd_label(int fd, std::string_view name);

// What the fd is, without the "fd N: " that the label already says.
SOCKACT_DECL std::string what_it_is(const fd_info& info);

/// Does the socket `info` describes fit `w`? errc::not_a_socket,
/// wrong_family, wrong_type (type or protocol), not_listening or
/// not_connected otherwise, with a message that names the fd (`label`, see
/// fd_label()), what was wanted and what it is.
SOCKACT_DECL bool check_kind(const fd_info& info, const wanted_kind& w, const std::string& label,
                             std::error_code& ec, std::string* why);

/// describe_fd() and check_kind() in one: reads only, the fd is left as it was.
SOCKACT_DECL bool check_fd(int fd, std::string_view name, const wanted_kind& w, fd_info& info,
                           std::error_code& ec, std::string* why);

}  // namespace detail

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/socket_info.ipp>
#endif

#endif  // SOCKACT_SOCKET_INFO_HPP
