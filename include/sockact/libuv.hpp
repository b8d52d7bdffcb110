// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_HPP
#define SOCKACT_LIBUV_HPP

// The libuv adapter: opens a uv_tcp_t, uv_pipe_t or uv_udp_t on a socket the
// service manager passed (or listen_or_bind() bound), after checking that the
// socket is of that kind.
//
// Contract of every open_*() call:
// - Success: the handle is initialized on `loop` and owns the fd; uv_close()
//   closes it. From a `listener&&`, only its `fd` is taken (released); its
//   `name` and `info` stay.
// - Error: the handle is not initialized (there is nothing to uv_close) and
//   the fd is left open, unchanged and owned by the caller. Everything that
//   can fail is checked before uv_*_init(): a bad fd is EBADF, an fd already
//   in a handle of this loop EEXIST (libuv itself notices only fds it polls,
//   and two handles would close one fd twice), a wrong kind of socket
//   errc::not_a_socket, errc::wrong_family or errc::wrong_type. (Should a
//   future libuv's uv_*_open() fail after these checks, the handle is
//   uv_close()d here, without callback, and must stay valid until the loop
//   runs again; with libuv 1.x on Linux it cannot.)
// - libuv sets O_NONBLOCK, which is shared with the service manager's copy of
//   the socket (uv_udp_open() also sets SO_REUSEADDR). uv_listen() calls
//   listen(2) again on an already-listening socket, which only sets the
//   backlog: pass SOMAXCONN to keep systemd's default (Backlog=).
// - Closing an inherited listening socket is fine; shutting it down is not
//   (systemd keeps a copy). libuv never shuts listeners down, and a
//   uv_pipe_t opened here never unlinks the socket file.

#include <sockact/detail/config.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>
#include <sockact/listen.hpp>
#include <sockact/socket_info.hpp>

#include <uv.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cerrno>
#include <string>
#include <system_error>

namespace sockact {

// ---------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------

/// The category of libuv's own error codes, the ones that are not a negated
/// errno on Unix (UV_EOF, UV_EAI_*, UV_ECHARSET, ...); messages are uv_strerror().
inline const std::error_category& libuv_category() noexcept;

/// A libuv status as a std::error_code: 0 is no error; a negative errno (what
/// libuv returns on Unix for system errors) is that errno in
/// std::generic_category(), so it compares equal to std::errc values; libuv's
/// own codes (UV_EOF, ...) are in libuv_category().
/// @code
/// if (int r = uv_listen(stream, SOMAXCONN, on_connection); r < 0) ec = sockact::libuv_error(r);
/// @endcode
inline std::error_code libuv_error(int status) noexcept;

/// Room for either handle open_stream() may open. After success,
/// `handle.type` is UV_TCP or UV_NAMED_PIPE.
union libuv_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

/// Opens a uv_tcp_t on a TCP socket (IPv4 or IPv6): listening (then call
/// uv_listen()), an Accept=yes connection, or bound and idle.
/// @param loop the loop the handle will belong to.
/// @param handle an uninitialized handle; initialized only on success.
/// @param fd the socket; owned by the handle on success, by the caller otherwise.
/// @param ec EBADF (not open), EEXIST (already in a handle of this loop),
///        errc::not_a_socket, errc::wrong_family (not AF_INET/AF_INET6),
///        errc::wrong_type (not a stream socket, or SCTP), EINVAL (null loop
///        or handle).
/// @return true on success.
/// @code
/// uv_tcp_t server;
/// std::error_code ec;
/// if (sockact::open_tcp(loop, &server, 3, ec)) uv_listen((uv_stream_t*)&server, SOMAXCONN, on_connection);
/// @endcode
inline bool open_tcp(uv_loop_t* loop, uv_tcp_t* handle, int fd, std::error_code& ec) noexcept;
/// As above; on success `l.fd` is released to the handle, on error it still owns the fd.
inline bool open_tcp(uv_loop_t* loop, uv_tcp_t* handle, listener&& l, std::error_code& ec) noexcept;

/// Opens a uv_pipe_t (not for IPC) on a unix stream socket: listening, an
/// Accept=yes connection, or one end of a socketpair().
/// @param loop the loop the handle will belong to.
/// @param handle an uninitialized handle; initialized only on success.
/// @param fd the socket; owned by the handle on success, by the caller otherwise.
/// @param ec EBADF, EEXIST, errc::not_a_socket, errc::wrong_family (not
///        AF_UNIX), errc::wrong_type (datagram or seqpacket), EINVAL.
/// @return true on success.
/// @code
/// uv_pipe_t server;
/// if (sockact::open_pipe(loop, &server, std::move(l), ec)) uv_listen((uv_stream_t*)&server, SOMAXCONN, cb);
/// @endcode
inline bool open_pipe(uv_loop_t* loop, uv_pipe_t* handle, int fd, std::error_code& ec) noexcept;
/// As above; on success `l.fd` is released to the handle, on error it still owns the fd.
inline bool open_pipe(uv_loop_t* loop, uv_pipe_t* handle, listener&& l, std::error_code& ec) noexcept;

/// Opens a uv_udp_t on a UDP socket (IPv4 or IPv6, bound or connected).
/// @param loop the loop the handle will belong to.
/// @param handle an uninitialized handle; initialized only on success.
/// @param fd the socket; owned by the handle on success, by the caller otherwise.
/// @param ec EBADF, EEXIST, errc::not_a_socket, errc::wrong_family (not
///        AF_INET/AF_INET6), errc::wrong_type (not a datagram socket), EINVAL.
/// @return true on success.
/// @code
/// uv_udp_t udp;
/// if (sockact::open_udp(loop, &udp, 3, ec)) uv_udp_recv_start(&udp, on_alloc, on_datagram);
/// @endcode
inline bool open_udp(uv_loop_t* loop, uv_udp_t* handle, int fd, std::error_code& ec) noexcept;
/// As above; on success `l.fd` is released to the handle, on error it still owns the fd.
inline bool open_udp(uv_loop_t* loop, uv_udp_t* handle, listener&& l, std::error_code& ec) noexcept;

/// Opens the stream handle that fits the socket: a uv_tcp_t for TCP, a
/// uv_pipe_t for a unix stream socket. For servers that listen wherever they
/// are told (listen_or_bind()) and so do not know the family in advance.
/// @param loop the loop the handle will belong to.
/// @param handle uninitialized storage; initialized only on success.
/// @param fd the socket; owned by the handle on success, by the caller otherwise.
/// @param ec EBADF, EEXIST, errc::not_a_socket, errc::wrong_family (neither
///        inet nor unix), errc::wrong_type (not a stream socket), EINVAL.
/// @return the stream on success, nullptr on error.
/// @code
/// sockact::libuv_stream s;
/// if (uv_stream_t* stream = sockact::open_stream(loop, &s, std::move(l), ec))
///   uv_listen(stream, SOMAXCONN, on_connection);
/// @endcode
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, int fd, std::error_code& ec) noexcept;
/// As above; on success `l.fd` is released to the handle, on error it still owns the fd.
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, listener&& l,
                                std::error_code& ec) noexcept;

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error with the ec overload's error; what() describes the fd.
inline void open_tcp(uv_loop_t* loop, uv_tcp_t* handle, int fd);
/// @throws std::system_error with the ec overload's error; what() names the listener.
inline void open_tcp(uv_loop_t* loop, uv_tcp_t* handle, listener&& l);
/// @throws std::system_error with the ec overload's error; what() describes the fd.
inline void open_pipe(uv_loop_t* loop, uv_pipe_t* handle, int fd);
/// @throws std::system_error with the ec overload's error; what() names the listener.
inline void open_pipe(uv_loop_t* loop, uv_pipe_t* handle, listener&& l);
/// @throws std::system_error with the ec overload's error; what() describes the fd.
inline void open_udp(uv_loop_t* loop, uv_udp_t* handle, int fd);
/// @throws std::system_error with the ec overload's error; what() names the listener.
inline void open_udp(uv_loop_t* loop, uv_udp_t* handle, listener&& l);
/// @throws std::system_error with the ec overload's error; what() describes the fd.
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, int fd);
/// @throws std::system_error with the ec overload's error; what() names the listener.
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, listener&& l);
#endif

// ---------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------

namespace detail {

class libuv_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "libuv"; }
  std::string message(int value) const override {
    char buf[128];
    return ::uv_strerror_r(-value, buf, sizeof buf);  // uv_strerror() leaks on unknown codes
  }
};

enum class libuv_kind { tcp, pipe, udp };

// Everything that could make uv_*_open() fail, checked before uv_*_init() so
// that an error leaves the handle uninitialized. 0 or an error.
inline std::error_code libuv_check(uv_loop_t* loop, const void* handle, int fd, libuv_kind want) noexcept {
  if (loop == nullptr || handle == nullptr) return {EINVAL, std::generic_category()};
  if (fd < 0) return {EBADF, std::generic_category()};
  struct stat st {};
  if (::fstat(fd, &st) < 0) return {errno, std::generic_category()};
  if (!S_ISSOCK(st.st_mode)) return errc::not_a_socket;

  int family = 0, type = 0, protocol = 0;
#ifdef SO_DOMAIN
  if (const int r = int_sockopt(fd, SO_DOMAIN, family); r < 0) return {-r, std::generic_category()};
#else
  sockaddr_storage sa;
  socklen_t len = 0;
  if (const int r = local_address(fd, sa, len); r < 0) return {-r, std::generic_category()};
  family = sa.ss_family;
#endif
  if (const int r = int_sockopt(fd, SO_TYPE, type); r < 0) return {-r, std::generic_category()};
  const bool inet = family == AF_INET || family == AF_INET6;
  switch (want) {
    case libuv_kind::tcp:
      if (!inet) return errc::wrong_family;
      if (type != SOCK_STREAM) return errc::wrong_type;
      // SCTP has stream sockets too; libuv's TCP options do not apply to them.
      if (int_sockopt(fd, SO_PROTOCOL, protocol) == 0 && protocol == IPPROTO_SCTP) return errc::wrong_type;
      break;
    case libuv_kind::pipe:
      if (family != AF_UNIX) return errc::wrong_family;
      if (type != SOCK_STREAM) return errc::wrong_type;
      break;
    case libuv_kind::udp:
      if (!inet) return errc::wrong_family;
      if (type != SOCK_DGRAM) return errc::wrong_type;
      break;
  }

  // uv_*_open() refuses (UV_EEXIST) an fd the loop polls; an fd in a handle
  // that does not poll yet would be taken twice, and closed twice.
  struct search {
    int fd;
    bool found;
  } s{fd, false};
  ::uv_walk(
      loop,
      [](uv_handle_t* h, void* arg) {
        auto* sp = static_cast<search*>(arg);
        uv_os_fd_t handle_fd = -1;
        if (::uv_fileno(h, &handle_fd) == 0 && handle_fd == sp->fd) sp->found = true;
      },
      &s);
  if (s.found) return {EEXIST, std::generic_category()};
  return {};
}

// After the checks, uv_*_open() cannot fail on Linux (its remaining steps are
// ioctl(FIONBIO) and setsockopt(SO_REUSEADDR) on a valid socket). Should a
// future libuv fail anyway, the handle is already in the loop's queue and
// cannot be taken out: it is closed here (no callback), so it must stay valid
// until the loop has run once more.
inline bool libuv_opened(uv_handle_t* handle, int status, std::error_code& ec) noexcept {
  if (status == 0) {
    ec.clear();
    return true;
  }
  ::uv_close(handle, nullptr);
  ec = libuv_error(status);
  return false;
}

inline bool libuv_is_unix(int fd) noexcept {
  int family = 0;
#ifdef SO_DOMAIN
  return int_sockopt(fd, SO_DOMAIN, family) == 0 && family == AF_UNIX;
#else
  sockaddr_storage sa;
  socklen_t len = 0;
  return local_address(fd, sa, len) == 0 && sa.ss_family == AF_UNIX;
#endif
}

#if SOCKACT_HAS_EXCEPTIONS
[[noreturn]] inline void libuv_throw(const std::error_code& ec, const char* function, int fd) {
  std::error_code ignored;
  const fd_info info = describe_fd(fd, ignored);
  throw_error(ec, std::string("sockact::") + function + ": " +
                      (ignored ? "fd " + std::to_string(fd) : info.to_string()));
}
[[noreturn]] inline void libuv_throw(const std::error_code& ec, const char* function, const listener& l) {
  std::error_code ignored;
  const fd_info info = describe_fd(l.fd.get(), ignored);
  throw_error(ec, std::string("sockact::") + function + ": listener " + quote(l.name) + ", " +
                      (ignored ? "fd " + std::to_string(l.fd.get()) : info.to_string()));
}
#endif

}  // namespace detail

inline const std::error_category& libuv_category() noexcept {
  static const detail::libuv_error_category instance;
  return instance;
}

inline std::error_code libuv_error(int status) noexcept {
  if (status >= 0) return {};
  // On Unix, libuv's codes for system errors are -errno; its own codes
  // (UV__EOF = -4095, UV__EAI_* from -3000, fallbacks for errnos a platform
  // lacks) lie far below any errno.
  if (status > -3000) return {-status, std::generic_category()};
  return {-status, libuv_category()};
}

inline bool open_tcp(uv_loop_t* loop, uv_tcp_t* handle, int fd, std::error_code& ec) noexcept {
  ec = detail::libuv_check(loop, handle, fd, detail::libuv_kind::tcp);
  if (ec) return false;
  if (const int r = ::uv_tcp_init(loop, handle); r < 0) {  // AF_UNSPEC: cannot fail
    ec = libuv_error(r);
    return false;
  }
  return detail::libuv_opened(reinterpret_cast<uv_handle_t*>(handle), ::uv_tcp_open(handle, fd), ec);
}

inline bool open_pipe(uv_loop_t* loop, uv_pipe_t* handle, int fd, std::error_code& ec) noexcept {
  ec = detail::libuv_check(loop, handle, fd, detail::libuv_kind::pipe);
  if (ec) return false;
  if (const int r = ::uv_pipe_init(loop, handle, 0); r < 0) {
    ec = libuv_error(r);
    return false;
  }
  return detail::libuv_opened(reinterpret_cast<uv_handle_t*>(handle), ::uv_pipe_open(handle, fd), ec);
}

inline bool open_udp(uv_loop_t* loop, uv_udp_t* handle, int fd, std::error_code& ec) noexcept {
  ec = detail::libuv_check(loop, handle, fd, detail::libuv_kind::udp);
  if (ec) return false;
  if (const int r = ::uv_udp_init(loop, handle); r < 0) {  // AF_UNSPEC: cannot fail
    ec = libuv_error(r);
    return false;
  }
  return detail::libuv_opened(reinterpret_cast<uv_handle_t*>(handle), ::uv_udp_open(handle, fd), ec);
}

inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, int fd, std::error_code& ec) noexcept {
  if (handle == nullptr) {
    ec.assign(EINVAL, std::generic_category());
    return nullptr;
  }
  // Anything but a unix socket goes the TCP way, whose checks name what is wrong.
  const bool ok = detail::libuv_is_unix(fd) ? open_pipe(loop, &handle->pipe, fd, ec)
                                            : open_tcp(loop, &handle->tcp, fd, ec);
  return ok ? &handle->stream : nullptr;
}

inline bool open_tcp(uv_loop_t* loop, uv_tcp_t* handle, listener&& l, std::error_code& ec) noexcept {
  if (!open_tcp(loop, handle, l.fd.get(), ec)) return false;
  l.fd.release();  // the handle owns it now
  return true;
}

inline bool open_pipe(uv_loop_t* loop, uv_pipe_t* handle, listener&& l, std::error_code& ec) noexcept {
  if (!open_pipe(loop, handle, l.fd.get(), ec)) return false;
  l.fd.release();  // the handle owns it now
  return true;
}

inline bool open_udp(uv_loop_t* loop, uv_udp_t* handle, listener&& l, std::error_code& ec) noexcept {
  if (!open_udp(loop, handle, l.fd.get(), ec)) return false;
  l.fd.release();  // the handle owns it now
  return true;
}

inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, listener&& l,
                                std::error_code& ec) noexcept {
  uv_stream_t* s = open_stream(loop, handle, l.fd.get(), ec);
  if (s != nullptr) l.fd.release();
  return s;
}

#if SOCKACT_HAS_EXCEPTIONS
inline void open_tcp(uv_loop_t* loop, uv_tcp_t* handle, int fd) {
  std::error_code ec;
  if (!open_tcp(loop, handle, fd, ec)) detail::libuv_throw(ec, "open_tcp", fd);
}
inline void open_tcp(uv_loop_t* loop, uv_tcp_t* handle, listener&& l) {
  std::error_code ec;
  if (!open_tcp(loop, handle, l.fd.get(), ec)) detail::libuv_throw(ec, "open_tcp", l);
  l.fd.release();
}
inline void open_pipe(uv_loop_t* loop, uv_pipe_t* handle, int fd) {
  std::error_code ec;
  if (!open_pipe(loop, handle, fd, ec)) detail::libuv_throw(ec, "open_pipe", fd);
}
inline void open_pipe(uv_loop_t* loop, uv_pipe_t* handle, listener&& l) {
  std::error_code ec;
  if (!open_pipe(loop, handle, l.fd.get(), ec)) detail::libuv_throw(ec, "open_pipe", l);
  l.fd.release();
}
inline void open_udp(uv_loop_t* loop, uv_udp_t* handle, int fd) {
  std::error_code ec;
  if (!open_udp(loop, handle, fd, ec)) detail::libuv_throw(ec, "open_udp", fd);
}
inline void open_udp(uv_loop_t* loop, uv_udp_t* handle, listener&& l) {
  std::error_code ec;
  if (!open_udp(loop, handle, l.fd.get(), ec)) detail::libuv_throw(ec, "open_udp", l);
  l.fd.release();
}
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, int fd) {
  std::error_code ec;
  uv_stream_t* s = open_stream(loop, handle, fd, ec);
  if (s == nullptr) detail::libuv_throw(ec, "open_stream", fd);
  return s;
}
inline uv_stream_t* open_stream(uv_loop_t* loop, libuv_stream* handle, listener&& l) {
  std::error_code ec;
  uv_stream_t* s = open_stream(loop, handle, l.fd.get(), ec);
  if (s == nullptr) detail::libuv_throw(ec, "open_stream", l);
  l.fd.release();
  return s;
}
#endif

}  // namespace sockact

#endif  // SOCKACT_LIBUV_HPP
