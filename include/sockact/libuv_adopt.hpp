// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_ADOPT_HPP
#define SOCKACT_LIBUV_ADOPT_HPP

// libuv statuses as std::error_code, and sockact::adopt(): a passed fd into a
// uv_tcp_t, uv_pipe_t or uv_udp_t, after checking that the socket is of that
// kind. Part of <sockact/libuv.hpp>.

#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#include <uv.h>

#include <sys/socket.h>
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sockact {

namespace detail {
class libuv_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "libuv"; }
  std::string message(int value) const override {
    char buf[128];
    return ::uv_strerror_r(-value, buf, sizeof buf);  // uv_strerror() leaks on unknown codes
  }
};
}  // namespace detail

/// The category of libuv's own error codes, the ones that are not a negated
/// errno on Unix (UV_EOF, UV_EAI_*, ...); messages are uv_strerror().
inline const std::error_category& libuv_category() noexcept {
  static const detail::libuv_error_category instance;
  return instance;
}

/// A libuv status as a std::error_code: 0 is no error; a negative errno is
/// that errno in std::generic_category(); libuv's own codes are in libuv_category().
/// @code
/// if (int r = uv_read_start(s, on_alloc, on_read); r < 0) ec = sockact::libuv_error(r);
/// @endcode
inline std::error_code libuv_error(int status) noexcept {
  if (status >= 0) return {};
  // On Unix, libuv's codes for system errors are -errno; its own codes
  // (UV__EOF = -4095, UV__EAI_* from -3000, ...) lie far below any errno.
  if (status > -3000) return {-status, std::generic_category()};
  return {-status, libuv_category()};
}

/// Room for either stream handle adopt() may open on a stream socket. After
/// success, `handle.type` is UV_TCP or UV_NAMED_PIPE.
union libuv_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

/// The fd adopt() takes over: a unique_fd or a server_socket, moved in. It is
/// released only when adopt() succeeds; on error the caller still owns it.
/// A server_socket's name goes into the error message.
class adopt_fd {
 public:
  adopt_fd(unique_fd&& fd) noexcept : fd_(&fd) {}  // NOLINT(google-explicit-constructor)
  template <class Listener, class = decltype(std::declval<Listener&>().name),
            class = std::enable_if_t<!std::is_lvalue_reference_v<Listener>>>
  adopt_fd(Listener&& l) noexcept : fd_(&l.fd), name_(l.name) {}  // NOLINT(google-explicit-constructor)

  int get() const noexcept { return fd_->get(); }
  std::string_view name() const noexcept { return name_; }
  void release() const noexcept { fd_->release(); }

 private:
  unique_fd* fd_;
  std::string_view name_;
};

namespace detail {

enum class libuv_kind { tcp, pipe, udp, stream };

// The handles adopt() opens, and the kind of socket each takes.
template <class Handle>
struct libuv_handle {};
template <>
struct libuv_handle<uv_tcp_t> : std::integral_constant<libuv_kind, libuv_kind::tcp> {};
template <>
struct libuv_handle<uv_pipe_t> : std::integral_constant<libuv_kind, libuv_kind::pipe> {};
template <>
struct libuv_handle<uv_udp_t> : std::integral_constant<libuv_kind, libuv_kind::udp> {};
template <>
struct libuv_handle<libuv_stream> : std::integral_constant<libuv_kind, libuv_kind::stream> {};

// What each handle takes, for check_kind(), the core's one check.
inline const wanted_kind& libuv_wanted(libuv_kind k) noexcept {
  static constexpr wanted_kind tcp{"a TCP socket (inet or inet6 stream) for a uv_tcp_t", wanted_family::inet,
                                   SOCK_STREAM, 0, wanted_state::any};
  static constexpr wanted_kind pipe{"a unix stream socket for a uv_pipe_t", wanted_family::local, SOCK_STREAM,
                                    0, wanted_state::any};
  static constexpr wanted_kind udp{"a UDP socket (inet or inet6 datagram) for a uv_udp_t",
                                   wanted_family::inet, SOCK_DGRAM, 0, wanted_state::any};
  return k == libuv_kind::udp ? udp : k == libuv_kind::pipe ? pipe : tcp;
}

inline std::string libuv_fd_label(const adopt_fd& fd) {
  return fd_label(fd.get(), fd.name());
}

inline bool libuv_fail(std::error_code code, std::string text, std::error_code& ec, std::string* why) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

// Everything that could make uv_*_open() fail, checked before uv_*_init() so
// that an error leaves the handle uninitialized and the fd untouched. The
// description of the fd is the core's describe_fd(), as in every message.
// has_handle, not the handle: the handle is still uninitialized here, and gcc
// takes a const pointer to it for a read (-Wmaybe-uninitialized in user code).
inline bool libuv_check(uv_loop_t* loop, bool has_handle, const adopt_fd& fd, libuv_kind& want,
                        std::error_code& ec, std::string* why) {
  if (loop == nullptr || !has_handle)
    return libuv_fail({EINVAL, std::generic_category()}, loop == nullptr ? "no loop" : "no handle", ec, why);
  fd_info info = describe_fd(fd.get(), ec);
  if (ec)
    return libuv_fail(
        ec,
        libuv_fd_label(fd) + (ec == std::errc::bad_file_descriptor ? " is not open" : ": " + ec.message()),
        ec, why);
  // A libuv stream is a uv_pipe_t on a unix socket, else a uv_tcp_t.
  if (want == libuv_kind::stream) want = info.family == AF_UNIX ? libuv_kind::pipe : libuv_kind::tcp;
  if (!check_kind(info, libuv_wanted(want), libuv_fd_label(fd), ec, why)) return false;
  const std::string is = what_it_is(info);

  // uv_*_open() refuses (EEXIST) an fd the loop polls; an fd in a handle that
  // does not poll yet would be taken twice, and closed twice.
  struct search {
    int fd;
    bool found;
  } s{fd.get(), false};
  ::uv_walk(
      loop,
      [](uv_handle_t* h, void* arg) {
        auto* sp = static_cast<search*>(arg);
        uv_os_fd_t handle_fd = -1;
        if (::uv_fileno(h, &handle_fd) == 0 && handle_fd == sp->fd) sp->found = true;
      },
      &s);
  if (s.found)
    return libuv_fail({EEXIST, std::generic_category()},
                      libuv_fd_label(fd) + " (" + is + ") is already in a handle of this loop", ec, why);
  ec.clear();
  return true;
}

// Checks, then uv_*_init() and uv_*_open() for the kind of handle wanted.
// After the checks, uv_*_open() cannot fail on Linux (its remaining steps are
// ioctl(FIONBIO) and setsockopt(SO_REUSEADDR) on a valid socket). Should a
// future libuv fail anyway, the handle is already in the loop's queue and
// cannot be taken out: it is closed here (no callback), so it must stay
// valid until the loop has run once more. Only the member a handle of its
// kind has is touched: a uv_tcp_t passed in is not a whole libuv_stream.
inline bool libuv_adopt(uv_loop_t* loop, void* handle, const adopt_fd& fd, libuv_kind want,
                        std::error_code& ec, std::string* why) {
  if (!libuv_check(loop, handle != nullptr, fd, want, ec, why)) return false;
  auto* tcp = static_cast<uv_tcp_t*>(handle);
  auto* pipe = static_cast<uv_pipe_t*>(handle);
  auto* udp = static_cast<uv_udp_t*>(handle);
  // uv_tcp_init() and uv_udp_init() (AF_UNSPEC) cannot fail.
  int r = want == libuv_kind::pipe  ? ::uv_pipe_init(loop, pipe, 0)
          : want == libuv_kind::udp ? ::uv_udp_init(loop, udp)
                                    : ::uv_tcp_init(loop, tcp);
  if (r < 0)
    return libuv_fail(libuv_error(r),
                      want == libuv_kind::pipe  ? "uv_pipe_init"
                      : want == libuv_kind::udp ? "uv_udp_init"
                                                : "uv_tcp_init",
                      ec, why);
  r = want == libuv_kind::pipe  ? ::uv_pipe_open(pipe, fd.get())
      : want == libuv_kind::udp ? ::uv_udp_open(udp, fd.get())
                                : ::uv_tcp_open(tcp, fd.get());
  if (r == 0) {
    fd.release();
    ec.clear();
    return true;
  }
  ::uv_close(static_cast<uv_handle_t*>(handle), nullptr);
  return libuv_fail(libuv_error(r), libuv_fd_label(fd) + ": libuv cannot open it", ec, why);
}

}  // namespace detail

/// Opens `handle` on `loop` on a socket of its kind, which it then owns: a
/// uv_tcp_t on a TCP socket (inet or inet6 stream: listening, an Accept=yes or
/// accepted connection, or bound), a uv_pipe_t on a unix stream socket, a
/// uv_udp_t on a UDP socket, a libuv_stream on either stream kind (the
/// handle's type says which). libuv sets O_NONBLOCK, which the fd shares with
/// the service manager's copy.
/// @param loop the loop the handle will belong to.
/// @param handle uninitialized; initialized only on success (uv_close() it then).
/// @param fd moved in: released to the handle on success, left with the caller on error.
/// @param ec EBADF (not open), EEXIST (already in a handle of this loop),
///        errc::not_a_socket, errc::wrong_family, errc::wrong_type, EINVAL
///        (null loop or handle).
/// @param why when not null, receives a message that names the fd and says what it is.
/// @return true on success.
/// @code
/// uv_tcp_t tcp;
/// if (!sockact::adopt(loop, &tcp, std::move(fd), ec, &why)) log(why);
/// @endcode
template <class Handle, class = decltype(detail::libuv_handle<Handle>::value)>
bool adopt(uv_loop_t* loop, Handle* handle, adopt_fd fd, std::error_code& ec, std::string* why = nullptr) {
  return detail::libuv_adopt(loop, handle, fd, detail::libuv_handle<Handle>::value, ec, why);
}

#if SOCKACT_HAS_EXCEPTIONS
/// adopt(loop, handle, fd, ec), throwing std::system_error (with the message
/// that names the fd) instead.
/// @throws std::system_error as `ec` above.
template <class Handle, class = decltype(detail::libuv_handle<Handle>::value)>
void adopt(uv_loop_t* loop, Handle* handle, adopt_fd fd) {
  std::error_code ec;
  std::string why;
  if (!adopt(loop, handle, fd, ec, &why)) detail::throw_error(ec, "sockact::adopt: " + why);
}
#endif

}  // namespace sockact

#endif  // SOCKACT_LIBUV_ADOPT_HPP
