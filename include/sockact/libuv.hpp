// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_HPP
#define SOCKACT_LIBUV_HPP

// The libuv adapter.
//
//   sockact::activation act = sockact::activate(config);  // <sockact/activation.hpp>
//   sockact::libuv_driver driver(loop, act, [&](sockact::libuv_accepted& a) {
//     auto* c = new client;                                  // holds a sockact::libuv_connection conn
//     if (!a.open(c->conn, on_closed, ec)) return delete c;  // uv_tcp_t or uv_pipe_t, tracked
//     c->conn.handle()->data = c;
//     uv_read_start(c->conn.stream(), on_alloc, on_read);
//   });
//   uv_run(loop, UV_RUN_DEFAULT);                            // returns when the drain is over
//
// - libuv_driver accepts connections itself, from a uv_poll_t on each
//   listening socket: on EMFILE/ENFILE it stops watching that socket for
//   100 ms and the clients wait in the kernel's queue (uv_listen() would
//   accept and close them). It runs the activation's deadlines on a
//   uv_timer_t, catches SIGTERM and SIGINT, closes the listeners when the
//   drain begins (close, never shutdown(2)) and its own handles when it ends.
// - adopt() opens a uv_tcp_t, uv_pipe_t or uv_udp_t on an fd it takes over,
//   after checking that the socket is of that kind.
// - track() registers a uv stream with the activation; the activation closes
//   it with uv_close() when the drain or a request deadline says so.
//
// This header needs only <uv.h> and the fd helpers of the core; it does not
// include <sockact/activation.hpp>: its templates use the activation the
// program includes anyway.

#include <sockact/detail/accept_core.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>
#include <sockact/posix.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#include <uv.h>

#include <signal.h>
#include <sys/socket.h>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sockact {

class activation;
class libuv_connection;
struct server_socket;

// ---------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------

/// The category of libuv's own error codes, the ones that are not a negated
/// errno on Unix (UV_EOF, UV_EAI_*, ...); messages are uv_strerror().
inline const std::error_category& libuv_category() noexcept;

/// A libuv status as a std::error_code: 0 is no error; a negative errno is
/// that errno in std::generic_category(); libuv's own codes are in libuv_category().
/// @code
/// if (int r = uv_read_start(s, on_alloc, on_read); r < 0) ec = sockact::libuv_error(r);
/// @endcode
inline std::error_code libuv_error(int status) noexcept;

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

/// Opens `handle` on `loop` on a socket of its kind, which it then owns: a
/// uv_tcp_t on a TCP socket (inet or inet6 stream: listening, an Accept=yes or
/// accepted connection, or bound), a uv_pipe_t on a unix stream socket, a
/// uv_udp_t on a UDP socket, a libuv_stream on either stream kind (the
/// handle's type says which).
/// @param loop the loop the handle will belong to.
/// @param handle uninitialized; initialized only on success (uv_close() it then).
/// @param fd moved in: released to the handle on success, left with the caller on error.
/// @param ec EBADF (not open), EEXIST (already in a handle of this loop),
///        errc::not_a_socket, errc::wrong_family, errc::wrong_type, EINVAL
///        (null loop or handle).
/// @param why receives a message that names the fd and says what it is.
/// @return true (the stream, for libuv_stream) on success.
/// @code
/// uv_tcp_t tcp;
/// if (!sockact::adopt(loop, &tcp, std::move(fd), ec, &why)) log(why);
/// @endcode
/// libuv sets O_NONBLOCK, which the fd shares with the service manager's copy.
inline bool adopt(uv_loop_t* loop, uv_tcp_t* handle, adopt_fd fd, std::error_code& ec,
                  std::string* why = nullptr);
inline bool adopt(uv_loop_t* loop, uv_pipe_t* handle, adopt_fd fd, std::error_code& ec,
                  std::string* why = nullptr);
inline bool adopt(uv_loop_t* loop, uv_udp_t* handle, adopt_fd fd, std::error_code& ec,
                  std::string* why = nullptr);
inline uv_stream_t* adopt(uv_loop_t* loop, libuv_stream* handle, adopt_fd fd, std::error_code& ec,
                          std::string* why = nullptr);
#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error with the ec overload's error; what() is its `why`.
inline void adopt(uv_loop_t* loop, uv_tcp_t* handle, adopt_fd fd);
inline void adopt(uv_loop_t* loop, uv_pipe_t* handle, adopt_fd fd);
inline void adopt(uv_loop_t* loop, uv_udp_t* handle, adopt_fd fd);
inline uv_stream_t* adopt(uv_loop_t* loop, libuv_stream* handle, adopt_fd fd);
#endif

/// Registers an open stream handle (uv_tcp_t, uv_pipe_t, libuv_stream,
/// uv_stream_t) with the activation and returns its sockact::connection.
/// When the drain or a request deadline closes the connection, or
/// connection::close() is called, the handle is uv_close()d with `on_closed`.
///
/// Lifetime: keep the returned connection in the object that holds the
/// handle, and destroy both in `on_closed` (or later). From then on the
/// activation never touches the handle again; nor does it touch a handle
/// that is already closing (uv_close() called by the program itself).
/// @code
/// c->conn = sockact::track(act, &c->tcp, [](uv_handle_t* h) { delete static_cast<client*>(h->data); });
/// @endcode
template <class Activation, class Handle>
auto track(Activation& act, Handle* handle, uv_close_cb on_closed = nullptr);

/// A connection libuv_driver accepted (or an Accept=yes connection the
/// manager passed), handed to the program's connection callback.
class libuv_accepted {
 public:
  /// The socket it came in on (its name: FileDescriptorName=, or the address).
  const server_socket& from() const noexcept { return *from_; }
  uv_loop_t* loop() const noexcept { return loop_; }
  /// The connection's fd (non-blocking, close-on-exec); closed when this
  /// object goes, unless open() or release() took it.
  int fd() const noexcept { return fd_.get(); }
  /// Takes the fd, to open it another way (uv_tcp_open(), uv_pipe_open()).
  unique_fd release() noexcept { return std::move(fd_); }

  /// adopt() then track(): opens `handle` (uv_tcp_t, uv_pipe_t or
  /// libuv_stream) on the connection and registers it; `on_closed` is the
  /// handle's close callback (see track()). After the last response, close
  /// with the returned connection's close() (FIN, then the library lingers
  /// so that the client sees no reset) rather than uv_close().
  /// @param ec as adopt(); then the returned connection is empty and the
  ///        handle not initialized.
  template <class Handle, class Activation = activation>
  auto open(Handle* handle, uv_close_cb on_closed, std::error_code& ec);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as adopt().
  template <class Handle, class Activation = activation>
  auto open(Handle* handle, uv_close_cb on_closed = nullptr);
#endif

  /// open() into a sockact::libuv_connection (<sockact/libuv_server.hpp>):
  /// the handle and its connection in one object, so that neither outlives
  /// the other. Call it once per libuv_connection.
  /// @return false when it failed: `ec` is set as adopt() sets it, `c` stays
  /// empty and its handle uninitialized, so `c` may be freed at once. (The
  /// one exception adopt() describes, uv_*_open() failing after the checks,
  /// cannot happen on Linux; there the handle would be closing, with
  /// uv_is_closing(c.handle()) true, and `c` must outlive the next loop turn.)
  inline bool open(libuv_connection& c, uv_close_cb on_closed, std::error_code& ec);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as adopt().
  inline void open(libuv_connection& c, uv_close_cb on_closed = nullptr);
#endif

  /// Made by libuv_driver.
  libuv_accepted(uv_loop_t* loop, void* act, unique_fd fd, const server_socket& from) noexcept
      : loop_(loop), act_(act), fd_(std::move(fd)), from_(&from) {}

 private:
  uv_loop_t* loop_;
  void* act_;
  unique_fd fd_;
  const server_socket* from_;
};

namespace detail {
class libuv_driver_core;
}

/// Serves an activation on a uv loop. It
/// - accepts connections itself from a uv_poll_t on each listening socket
///   and hands each to `on_connection(sockact::libuv_accepted&)` (Accept=yes
///   connections passed by the manager too, in the loop's first iteration).
///   Out of fds (EMFILE, ENFILE, ...) it stops watching that socket for
///   100 ms: the clients stay queued in the kernel and are served later;
/// - runs the activation's deadlines (idle exit, request timeouts, drain,
///   watchdog) on a uv_timer_t, and SIGTERM/SIGINT on uv_signal_t handles;
/// - when the drain begins, stops and closes its polls and the listening
///   sockets (close, never shutdown(2): the manager keeps its copies);
/// - when the drain is over (or the one Accept=yes connection closed),
///   closes its handles, so that uv_run() returns once the program's are
///   closed too, and calls act.finish().
/// It sends READY=1 once it serves.
///
/// Contract: `act` and what `on_connection` uses outlive the running driver.
/// on_connection must not throw (it runs inside libuv callbacks). The driver
/// object may be moved, and destroyed at any time (even inside
/// on_connection): its handles live in a block of their own that their
/// close callbacks free; as with any libuv handle, run the loop once more
/// before uv_loop_close(). One thread: the loop's.
/// @code
/// sockact::libuv_driver driver(&loop, act, [&](sockact::libuv_accepted& a) { serve(a); });
/// uv_run(&loop, UV_RUN_DEFAULT);
/// @endcode
class libuv_driver {
 public:
  /// Not running.
  libuv_driver() noexcept = default;
  /// Opens the handles on `loop` and starts serving.
  /// @param ec EINVAL (null loop), or what uv_timer_init(), uv_signal_start(),
  ///        uv_poll_init() (EEXIST: a listening fd already in a handle of
  ///        this loop) returned; then nothing stays open and on_connection is
  ///        never called.
  template <class Activation, class OnConnection>
  libuv_driver(uv_loop_t* loop, Activation& act, OnConnection on_connection, std::error_code& ec) {
    start(loop, act, std::move(on_connection), ec, nullptr);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload; what() names the call and socket.
  template <class Activation, class OnConnection>
  libuv_driver(uv_loop_t* loop, Activation& act, OnConnection on_connection) {
    std::error_code ec;
    std::string why;
    start(loop, act, std::move(on_connection), ec, &why);
    if (ec) detail::throw_error(ec, "sockact::libuv_driver: " + why);
  }
#endif
  libuv_driver(libuv_driver&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  libuv_driver& operator=(libuv_driver&& o) noexcept;
  libuv_driver(const libuv_driver&) = delete;
  libuv_driver& operator=(const libuv_driver&) = delete;
  /// stop(); the handles' memory goes with their close callbacks.
  ~libuv_driver();

  /// The drain is over (or the driver was stopped): nothing more will happen.
  bool finished() const noexcept;
  /// Stops for good, without finishing the activation: closes the driver's
  /// handles (not the listening sockets, not the connections). For a server
  /// that ends for its own reasons. Idempotent.
  void stop() noexcept;

 private:
  template <class Activation, class OnConnection>
  void start(uv_loop_t* loop, Activation& act, OnConnection on_connection, std::error_code& ec,
             std::string* why);
  detail::libuv_driver_core* core_ = nullptr;
};

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

enum class libuv_kind { tcp, pipe, udp, stream };

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

// After the checks, uv_*_open() cannot fail on Linux (its remaining steps are
// ioctl(FIONBIO) and setsockopt(SO_REUSEADDR) on a valid socket). Should a
// future libuv fail anyway, the handle is already in the loop's queue and
// cannot be taken out: it is closed here (no callback), so it must stay
// valid until the loop has run once more.
inline bool libuv_opened(uv_handle_t* handle, const adopt_fd& fd, int status, std::error_code& ec,
                         std::string* why) {
  if (status == 0) {
    fd.release();
    ec.clear();
    return true;
  }
  ::uv_close(handle, nullptr);
  return libuv_fail(libuv_error(status), libuv_fd_label(fd) + ": libuv cannot open it", ec, why);
}

inline bool libuv_adopt(uv_loop_t* loop, libuv_stream* handle, const adopt_fd& fd, libuv_kind want,
                        std::error_code& ec, std::string* why) {
  if (!libuv_check(loop, handle != nullptr, fd, want, ec, why)) return false;
  if (want == libuv_kind::pipe) {
    if (const int r = ::uv_pipe_init(loop, &handle->pipe, 0); r < 0)
      return libuv_fail(libuv_error(r), "uv_pipe_init", ec, why);
    return libuv_opened(&handle->handle, fd, ::uv_pipe_open(&handle->pipe, fd.get()), ec, why);
  }
  if (const int r = ::uv_tcp_init(loop, &handle->tcp); r < 0)  // AF_UNSPEC: cannot fail
    return libuv_fail(libuv_error(r), "uv_tcp_init", ec, why);
  return libuv_opened(&handle->handle, fd, ::uv_tcp_open(&handle->tcp, fd.get()), ec, why);
}

// Only the member a handle of this kind has is touched: a uv_tcp_t passed in
// is not a whole libuv_stream.
inline libuv_stream* as_stream(void* handle) noexcept {
  return static_cast<libuv_stream*>(handle);
}

}  // namespace detail

inline const std::error_category& libuv_category() noexcept {
  static const detail::libuv_error_category instance;
  return instance;
}

inline std::error_code libuv_error(int status) noexcept {
  if (status >= 0) return {};
  // On Unix, libuv's codes for system errors are -errno; its own codes
  // (UV__EOF = -4095, UV__EAI_* from -3000, ...) lie far below any errno.
  if (status > -3000) return {-status, std::generic_category()};
  return {-status, libuv_category()};
}

inline bool adopt(uv_loop_t* loop, uv_tcp_t* handle, adopt_fd fd, std::error_code& ec, std::string* why) {
  return detail::libuv_adopt(loop, detail::as_stream(handle), fd, detail::libuv_kind::tcp, ec, why);
}

inline bool adopt(uv_loop_t* loop, uv_pipe_t* handle, adopt_fd fd, std::error_code& ec, std::string* why) {
  return detail::libuv_adopt(loop, detail::as_stream(handle), fd, detail::libuv_kind::pipe, ec, why);
}

inline uv_stream_t* adopt(uv_loop_t* loop, libuv_stream* handle, adopt_fd fd, std::error_code& ec,
                          std::string* why) {
  return detail::libuv_adopt(loop, handle, fd, detail::libuv_kind::stream, ec, why) ? &handle->stream
                                                                                    : nullptr;
}

inline bool adopt(uv_loop_t* loop, uv_udp_t* handle, adopt_fd fd, std::error_code& ec, std::string* why) {
  detail::libuv_kind want = detail::libuv_kind::udp;
  if (!detail::libuv_check(loop, handle != nullptr, fd, want, ec, why)) return false;
  if (const int r = ::uv_udp_init(loop, handle); r < 0)  // AF_UNSPEC: cannot fail
    return detail::libuv_fail(libuv_error(r), "uv_udp_init", ec, why);
  return detail::libuv_opened(reinterpret_cast<uv_handle_t*>(handle), fd, ::uv_udp_open(handle, fd.get()), ec,
                              why);
}

#if SOCKACT_HAS_EXCEPTIONS
namespace detail {
template <class Handle>
auto adopt_or_throw(uv_loop_t* loop, Handle* handle, adopt_fd fd) {
  std::error_code ec;
  std::string why;
  auto r = adopt(loop, handle, fd, ec, &why);
  if (ec) throw_error(ec, "sockact::adopt: " + why);
  return r;
}
}  // namespace detail
inline void adopt(uv_loop_t* loop, uv_tcp_t* handle, adopt_fd fd) {
  detail::adopt_or_throw(loop, handle, fd);
}
inline void adopt(uv_loop_t* loop, uv_pipe_t* handle, adopt_fd fd) {
  detail::adopt_or_throw(loop, handle, fd);
}
inline void adopt(uv_loop_t* loop, uv_udp_t* handle, adopt_fd fd) {
  detail::adopt_or_throw(loop, handle, fd);
}
inline uv_stream_t* adopt(uv_loop_t* loop, libuv_stream* handle, adopt_fd fd) {
  return detail::adopt_or_throw(loop, handle, fd);
}
#endif

template <class Activation, class Handle>
auto track(Activation& act, Handle* handle, uv_close_cb on_closed) {
  auto* h = reinterpret_cast<uv_handle_t*>(handle);
  uv_os_fd_t fd = -1;
  (void)::uv_fileno(h, &fd);
  // The library's closes go through `post`: skipped for a handle that is
  // already closing, so that neither shutdown(2) nor uv_close() reaches an
  // fd number libuv has closed (and the kernel may have given to another).
  return act.track(
      static_cast<int>(fd),
      [h, on_closed] {
        if (!::uv_is_closing(h)) ::uv_close(h, on_closed);
      },
      [h](auto&& close) {
        if (!::uv_is_closing(h)) close();
      });
}

template <class Handle, class Activation>
auto libuv_accepted::open(Handle* handle, uv_close_cb on_closed, std::error_code& ec) {
  Activation& act = *static_cast<Activation*>(act_);
  decltype(track(act, handle, on_closed)) conn;
  std::string why;
  if (!adopt(loop_, handle, std::move(fd_), ec, &why)) return conn;
  conn = track(act, handle, on_closed);
  return conn;
}

#if SOCKACT_HAS_EXCEPTIONS
template <class Handle, class Activation>
auto libuv_accepted::open(Handle* handle, uv_close_cb on_closed) {
  std::error_code ec;
  auto conn = open<Handle, Activation>(handle, on_closed, ec);
  if (ec) detail::throw_error(ec, "sockact::libuv_accepted::open: fd " + std::to_string(fd_.get()));
  return conn;
}
#endif

namespace detail {

// The driver's handles and what their callbacks reach, on the heap: they
// must stay valid until their close callbacks, which may come after the
// driver object is gone. Freed when both are over.
class libuv_driver_core {
 public:
  // A listening socket, watched for connections to accept.
  struct watch {
    uv_poll_t poll{};
    libuv_driver_core* owner = nullptr;
    std::size_t index = 0;           // in act.sockets()
    int fd = -1;                     // the listening fd, as it was at the start
    std::uint64_t paused_until = 0;  // uv_hrtime() at which to watch again; 0: watching
    bool open = false;
  };

  explicit libuv_driver_core(uv_loop_t* l) noexcept : loop(l) {}
  virtual ~libuv_driver_core() {
    for (watch* w : watches) delete w;
  }
  libuv_driver_core(const libuv_driver_core&) = delete;
  libuv_driver_core& operator=(const libuv_driver_core&) = delete;

  uv_loop_t* loop;
  uv_timer_t timer{};
  uv_prepare_t prepare{};
  uv_signal_t signals[2]{};
  std::vector<watch*> watches;
  int open_handles = 0;              // initialized and not yet through their close callback
  bool driver_gone = false;          // the driver object no longer points here
  bool closing = false;              // finished or stopped: no more calls out
  bool finished = false;             // the activation finished
  std::uint64_t armed = UINT64_MAX;  // uv_hrtime() the timer is set for; max: stopped

  // What the activation type knows.
  virtual std::int64_t deadline_in_ns() = 0;  // INT64_MAX: none
  virtual void timer_fired() = 0;
  virtual void signal_caught(int signo) = 0;
  virtual void readable(watch& w) = 0;
  virtual void before_wait() = 0;

  std::error_code open(std::string& failed) {
    int r = ::uv_timer_init(loop, &timer);
    if (r < 0) return failed = "uv_timer_init", libuv_error(r);
    opened(reinterpret_cast<uv_handle_t*>(&timer), this);
    r = ::uv_prepare_init(loop, &prepare);
    if (r < 0) return failed = "uv_prepare_init", libuv_error(r);
    opened(reinterpret_cast<uv_handle_t*>(&prepare), this);
    static constexpr int numbers[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; ++i) {
      r = ::uv_signal_init(loop, &signals[i]);
      if (r < 0) return failed = "uv_signal_init", libuv_error(r);
      opened(reinterpret_cast<uv_handle_t*>(&signals[i]), this);
      r = ::uv_signal_start(&signals[i], on_signal, numbers[i]);
      if (r < 0)
        return failed = i == 0 ? "uv_signal_start(SIGTERM)" : "uv_signal_start(SIGINT)", libuv_error(r);
    }
    ::uv_prepare_start(&prepare, on_prepare);
    ::uv_unref(reinterpret_cast<uv_handle_t*>(&prepare));  // runs every iteration, keeps nothing alive
    return {};
  }

  std::error_code watch_listener(std::size_t index, int fd) {
    auto* w = new watch;
    watches.push_back(w);
    w->owner = this;
    w->index = index;
    w->fd = fd;
    std::error_code ec;
    set_nonblocking(fd, true, ec);  // a reset between poll and accept must not block the loop
    if (ec) return ec;
    if (const int r = ::uv_poll_init(loop, &w->poll, fd); r < 0) return libuv_error(r);
    opened(reinterpret_cast<uv_handle_t*>(&w->poll), w);
    w->open = true;
    if (const int r = ::uv_poll_start(&w->poll, UV_READABLE, on_poll); r < 0) return libuv_error(r);
    return {};
  }

  void opened(uv_handle_t* h, void* data) noexcept {
    h->data = data;
    ++open_handles;
  }

  void close(uv_handle_t* h) noexcept {
    if (h->data != nullptr && !::uv_is_closing(h)) ::uv_close(h, on_closed);
  }

  // Out of fds: leave the queued clients in the kernel for a while.
  void pause(watch& w) noexcept {
    ::uv_poll_stop(&w.poll);
    w.paused_until =
        ::uv_hrtime() + static_cast<std::uint64_t>(std::chrono::nanoseconds(accept_back_off).count());
  }

  // Stops watching the listeners for good (the drain began).
  void close_watches() noexcept {
    for (watch* w : watches)
      if (w->open) {
        w->open = false;
        w->paused_until = 0;
        close(reinterpret_cast<uv_handle_t*>(&w->poll));  // uv_close() stops the poll; the fd stays open
      }
  }

  bool accepting() const noexcept {
    for (const watch* w : watches)
      if (w->open) return true;
    return false;
  }

  void close_handles() noexcept {
    if (closing) return;
    closing = true;
    close_watches();
    close(reinterpret_cast<uv_handle_t*>(&timer));
    close(reinterpret_cast<uv_handle_t*>(&prepare));
    for (uv_signal_t& s : signals) close(reinterpret_cast<uv_handle_t*>(&s));
  }

  // The driver object lets go; the block goes now or with the last close callback.
  void release() noexcept {
    driver_gone = true;
    close_handles();
    if (open_handles == 0) delete this;
  }

  // Points the timer at the next deadline, if that is earlier than the one
  // it is set for. Never later: deadlines such as "look again in 250 ms"
  // move with every call, and must still come.
  void rearm() noexcept {
    if (closing) return;
    const std::uint64_t now = ::uv_hrtime();
    std::int64_t in = deadline_in_ns();
    for (const watch* w : watches)
      if (w->open && w->paused_until != 0) {
        const std::int64_t left =
            w->paused_until > now ? static_cast<std::int64_t>(w->paused_until - now) : 0;
        if (left < in) in = left;
      }
    if (in == INT64_MAX) return;  // nothing due; a timer already set fires early and does no harm
    if (in < 0) in = 0;
    const std::uint64_t ms = (static_cast<std::uint64_t>(in) + 999'999) / 1'000'000;
    const std::uint64_t due = now + ms * 1'000'000;
    if (armed != UINT64_MAX && due + 1'000'000 >= armed) return;
    ::uv_update_time(loop);  // count from now, not from the start of this iteration
    ::uv_timer_start(&timer, on_timer, ms, 0);
    armed = due;
  }

  static libuv_driver_core* of(void* handle) noexcept {
    return static_cast<libuv_driver_core*>(static_cast<uv_handle_t*>(handle)->data);
  }

  static void on_timer(uv_timer_t* t) {
    libuv_driver_core* s = of(t);
    s->armed = UINT64_MAX;  // a one-shot timer: stopped now
    const std::uint64_t now = ::uv_hrtime();
    for (watch* w : s->watches)
      if (w->open && w->paused_until != 0 && w->paused_until <= now) {
        w->paused_until = 0;
        ::uv_poll_start(&w->poll, UV_READABLE, on_poll);
      }
    s->timer_fired();
    s->rearm();
  }

  static void on_prepare(uv_prepare_t* p) {
    libuv_driver_core* s = of(p);
    if (s->closing) return;
    s->before_wait();
    s->rearm();
  }

  static void on_signal(uv_signal_t* h, int signo) {
    libuv_driver_core* s = of(h);
    if (s->closing) return;
    s->signal_caught(signo);
    s->rearm();
  }

  static void on_poll(uv_poll_t* p, int status, int) {
    auto* w = static_cast<watch*>(p->data);
    libuv_driver_core* s = w->owner;
    if (s->closing || !w->open) return;
    (void)status;  // an error shows up again in accept(), which says what it is
    s->readable(*w);
  }

  static void on_closed(uv_handle_t* h) noexcept {
    libuv_driver_core* s =
        h->type == UV_POLL ? static_cast<watch*>(h->data)->owner : static_cast<libuv_driver_core*>(h->data);
    if (--s->open_handles == 0 && s->driver_gone) delete s;
  }
};

template <class Activation, class OnConnection>
class libuv_driver_impl final : public libuv_driver_core {
 public:
  using clock = typename Activation::clock;

  libuv_driver_impl(uv_loop_t* l, Activation& a, OnConnection f)
      : libuv_driver_core(l), act_(&a), on_connection_(std::move(f)) {}

  std::error_code start(std::string& failed) {
    if (std::error_code ec = open(failed)) return ec;
    auto& sockets = act_->sockets();
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (!sockets[i].info.listening || !sockets[i].fd) continue;
      if (std::error_code ec = watch_listener(i, sockets[i].fd.get())) {
        failed = "watching " + libuv_fd_label(std::move(sockets[i]));
        return ec;
      }
    }
    return {};
  }

 private:
  std::int64_t deadline_in_ns() override {
    const typename clock::time_point now = clock::now();
    const typename clock::time_point due = act_->next_deadline(now);
    if (due == clock::time_point::max()) return INT64_MAX;
    if (due <= now) return 0;
    using period = typename clock::period;
    const long double ns = static_cast<long double>((due - now).count()) * period::num * 1e9L / period::den;
    return ns >= 9e18L ? INT64_MAX : static_cast<std::int64_t>(ns);
  }

  void timer_fired() override { apply(act_->on_timer()); }
  void signal_caught(int signo) override { apply(act_->on_signal(signo)); }

  void readable(watch& w) override {
    auto& sockets = act_->sockets();
    if (w.index >= sockets.size() || sockets[w.index].fd.get() != w.fd) return;
    const auto& from = sockets[w.index];
    const detail::accept_outcome r = accept_.burst(
        w.fd, [&](unique_fd c) { deliver(std::move(c), from); },
        [&] { return !closing && w.open; },  // an idle drain accepts too
        from.name, [&](const std::string& line) { act_->log(line); });
    if (r.next == accept_next::back_off) pause(w);
  }

  void before_wait() override {
    if (!handed_over_) {  // Accept=yes: connections the manager passed
      handed_over_ = true;
      for (auto& l : act_->sockets()) {
        if (!l.info.connected || !l.fd) continue;
        std::error_code ignored;
        set_nonblocking(l.fd.get(), true, ignored);
        single_ = true;
        deliver(unique_fd(l.fd.release()), l);
        if (closing) return;
      }
    }
    // Accept=yes: the connection was served; nothing more to do.
    if (single_ && act_->connections() == 0 && !accepting()) finish();
  }

  template <class Listener>
  void deliver(unique_fd fd, const Listener& from) {
    libuv_accepted a(loop, act_, std::move(fd), from);
    on_connection_(a);
  }

  template <class Step>
  void apply(const Step& r) {
    if (r.stop_accepting && accepting()) {
      close_watches();          // first: the polls must not outlive their fds
      act_->close_listeners();  // close, never shutdown(2)
    }
    if (r.finished) finish();
  }

  void finish() {
    if (closing) return;
    close_handles();
    finished = true;
    act_->finish();  // bounded: the connections closed by the library linger at most this long
  }

  Activation* act_;
  OnConnection on_connection_;
  bool handed_over_ = false;
  bool single_ = false;
  accept_core accept_;
};

}  // namespace detail

template <class Activation, class OnConnection>
void libuv_driver::start(uv_loop_t* loop, Activation& act, OnConnection on_connection, std::error_code& ec,
                         std::string* why) {
  if (loop == nullptr) {
    detail::libuv_fail({EINVAL, std::generic_category()}, "no loop", ec, why);
    return;
  }
  auto* impl = new detail::libuv_driver_impl<Activation, OnConnection>(loop, act, std::move(on_connection));
  std::string failed;
  ec = impl->start(failed);
  if (ec) {
    if (why != nullptr) *why = failed + ": " + ec.message();
    impl->release();  // closes what was opened; freed by the close callbacks
    return;
  }
  core_ = impl;
  impl->rearm();
  act.ready();
}

inline libuv_driver& libuv_driver::operator=(libuv_driver&& o) noexcept {
  if (this != &o) {
    if (core_ != nullptr) core_->release();
    core_ = std::exchange(o.core_, nullptr);
  }
  return *this;
}

inline libuv_driver::~libuv_driver() {
  if (core_ != nullptr) core_->release();
}

inline bool libuv_driver::finished() const noexcept {
  return core_ == nullptr || core_->closing;
}

inline void libuv_driver::stop() noexcept {
  if (core_ != nullptr) core_->close_handles();
}

}  // namespace sockact

#endif  // SOCKACT_LIBUV_HPP
