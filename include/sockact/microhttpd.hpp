// SPDX-License-Identifier: MIT
#ifndef SOCKACT_MICROHTTPD_HPP
#define SOCKACT_MICROHTTPD_HPP

// The lifecycle for a libmicrohttpd (0.9.7x) server whose daemon runs threads
// of its own (MHD_USE_INTERNAL_POLLING_THREAD, alone or with
// MHD_USE_THREAD_PER_CONNECTION).
//
//   sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http());
//   sockact::microhttpd_driver driver(act);      // first: blocks SIGTERM/SIGINT for MHD's threads
//   MHD_Daemon* d = driver.start(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
//                                &answer, nullptr, MHD_OPTION_CONNECTION_LIMIT, 1000u);
//   if (!driver.run()) std::_Exit(0);            // the drain is over (false: it was cut)
//   // in a handler, for the response: if (!driver.keep_alive(connection)) add "Connection: close"
//
// Accepting. MHD accepts in a thread of its own, and a connection it has
// accepted reaches the application (MHD_OPTION_NOTIFY_CONNECTION) only
// later: a decision taken on another thread in between (the idle drain ends:
// nothing is open) would lose it. So MHD gets no listening socket
// (MHD_USE_NO_LISTEN_SOCKET): run() accepts on the calling thread, registers
// each connection with the activation right there, on the thread that takes
// the decisions, and hands it to the daemon with MHD_add_connection(). The
// listeners stay the activation's: MHD never calls shutdown(2) on them (its
// MHD_stop_daemon() does, on a listening socket it was given and that was
// not quiesced), and the drain closes them. Accept=yes connections are handed
// over the same way.
//
// What is reported, from MHD's callbacks (which the driver sets: start()
// refuses the application's own MHD_OPTION_NOTIFY_CONNECTION,
// MHD_OPTION_NOTIFY_COMPLETED and MHD_OPTION_URI_LOG_CALLBACK; pass a
// completion callback of its own to on_completed()):
//   - the request line parsed (the URI logger): a request begins; the bytes
//     before it are in MHD's buffer, out of sight (HEADERS_TIMEOUT counts
//     from the request line);
//   - the handler's first call: the head is whole (and the request too,
//     without a body); a later call with no upload data: the body is whole;
//   - MHD_OPTION_NOTIFY_COMPLETED: the response was sent (or the request ended).
//
// Closing. MHD has no call that closes a connection from another thread: a
// close the library decides (idle at the drain, a request deadline) sends FIN
// (shutdown(SHUT_WR)) and lingers as usual; the client closes, MHD reads the
// EOF and closes its side. One that does not close within the linger time
// has its read side shut, which wakes MHD the same way. A close and MHD's own
// close never cross (a lock per connection, taken by MHD's close notice), and
// a connection whose socket is no longer the one accepted is only forgotten.
// Stop the daemon through the driver (its destructor calls MHD_stop_daemon()).

#include <sockact/activation.hpp>
#include <sockact/error.hpp>
#include <sockact/poll_driver.hpp>
#include <sockact/unique_fd.hpp>

#include <microhttpd.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#if !defined(MHD_VERSION) || MHD_VERSION < 0x00097100
#error "sockact/microhttpd.hpp needs libmicrohttpd 0.9.71 or later"
#endif

namespace sockact {

namespace detail {

class microhttpd_core;

// One connection, from its accept to MHD's close notice.
struct mhd_conn : std::enable_shared_from_this<mhd_conn> {
  microhttpd_core* core = nullptr;
  std::mutex mutex;   // the library's closes (run()'s thread) against MHD's close notice
  bool gone = false;  // under mutex: MHD closed it (or the socket is not ours any more)
  int fd = -1;
  ino_t inode = 0;  // the socket's identity: its fd number may be another's later
  const server_socket* from = nullptr;
  connection conn;
  // The current request, on MHD's thread for this connection.
  bool in_request = false, head_done = false, complete = false;
  // The bytes of this connection's requests: MHD reads ahead into a buffer
  // of its own, which the library cannot see; what it took from the socket
  // and has not parsed into a request is the next one (TCP only).
  std::uint64_t done = 0;     // the requests answered, heads and bodies
  std::uint64_t current = 0;  // the request being served
  bool counted = true;        // false once a request's length on the wire is unknown (chunked)

  // Whether `fd` is still the socket accepted.
  bool same_socket() const noexcept {
    struct stat st;
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode;
  }
};

// The start of the kernel's struct tcp_info (linux/tcp.h, which clashes
// with glibc's netinet/tcp.h), up to tcpi_bytes_received (Linux 4.1).
struct kernel_tcp_info {
  std::uint8_t u8s[8];
  std::uint32_t u32s[24];
  std::uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
};
static_assert(offsetof(kernel_tcp_info, bytes_received) == 128, "struct tcp_info layout");

// Bytes MHD has taken from the socket beyond the requests it parsed (the next
// pipelined request, in its buffer); 0 when that cannot be told.
inline std::size_t read_ahead(const mhd_conn& c) noexcept {
  if (!c.counted) return 0;
  kernel_tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(c.fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || len < sizeof info) return 0;
  int unread = 0;
  if (::ioctl(c.fd, FIONREAD, &unread) != 0 || unread < 0) return 0;
  const std::uint64_t taken = info.bytes_received - static_cast<std::uint64_t>(unread);
  const std::uint64_t parsed = c.done + c.current;
  return taken > parsed ? static_cast<std::size_t>(taken - parsed) : 0;
}

// Runs the library's close of a connection under its lock, unless MHD
// closed it meanwhile.
struct mhd_guarded_post {
  std::shared_ptr<mhd_conn> c;
  template <class F>
  void operator()(F&& f) const {
    bool stale = false;
    {
      const std::lock_guard<std::mutex> lock(c->mutex);
      if (c->gone) return;
      if (c->same_socket())
        f();
      else
        stale = c->gone = true;  // closed by MHD without a notice (a failed set-up)
    }
    if (stale) c->conn = connection();
  }
};

// The library's close of a connection, under its lock (mhd_guarded_post):
// after the FIN, MHD sees the EOF once the client closes; for a client that
// does not, the read side is shut when the linger is over, which wakes MHD
// the same way.
struct mhd_closer {
  mhd_conn* c;
  void operator()() const noexcept {}
  void lingered() const noexcept { ::shutdown(c->fd, SHUT_RD); }  // a connection, never a listener
};

class microhttpd_core {
 public:
  using clock = activation::clock;
  using accept_fn = std::function<void(unique_fd, const server_socket&)>;

  explicit microhttpd_core(activation& act) : act_(&act) {}
  microhttpd_core(const microhttpd_core&) = delete;
  microhttpd_core& operator=(const microhttpd_core&) = delete;

  ~microhttpd_core() {
    if (daemon_ != nullptr) MHD_stop_daemon(daemon_);  // MHD closes what is left: close notices
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [fd, c] : by_fd_) c->conn = connection();  // nothing is served any more
  }

  std::error_code open() {
    std::error_code ec;
    poll_ = std::make_unique<poll_driver<accept_fn>>(
        *act_, accept_fn([this](unique_fd fd, const server_socket& from) { accepted(std::move(fd), from); }),
        ec);
    return ec;
  }

  template <class... Options>
  MHD_Daemon* start(std::error_code& ec, unsigned flags, MHD_AccessHandlerCallback handler, void* cls,
                    Options... options) {
    ec.clear();
    if (daemon_ != nullptr) {
      ec.assign(EALREADY, std::generic_category());
      return nullptr;
    }
    if ((flags & (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION)) == 0 ||
        handler == nullptr) {
      act_->log(
          "microhttpd_driver::start(): MHD must poll in threads of its own "
          "(MHD_USE_INTERNAL_POLLING_THREAD)");
      ec.assign(EINVAL, std::generic_category());
      return nullptr;
    }
    handler_ = handler;
    handler_cls_ = cls;
    const unsigned ours = MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    errno = 0;
    daemon_ = MHD_start_daemon(flags | ours, 0, nullptr, nullptr, &microhttpd_core::on_request, this,
                               MHD_OPTION_NOTIFY_CONNECTION, &microhttpd_core::on_connection, this,
                               MHD_OPTION_NOTIFY_COMPLETED, &microhttpd_core::on_completed, this,
                               MHD_OPTION_URI_LOG_CALLBACK, &microhttpd_core::on_request_line, this,
                               options..., MHD_OPTION_END);
    if (daemon_ == nullptr) ec.assign(errno != 0 ? errno : EINVAL, std::generic_category());
    return daemon_;
  }

  void on_completed_too(MHD_RequestCompletedCallback f, void* cls) noexcept {
    user_completed_ = f;
    user_completed_cls_ = cls;
  }

  bool run() {
    if (daemon_ == nullptr) {
      act_->log("microhttpd_driver::run(): no daemon (start() first)");
      return false;
    }
    while (!poll_->finished()) {
      pollfd p{poll_->fd(), POLLIN, 0};
      (void)::poll(&p, 1, -1);
      poll_->on_ready();  // signals, deadlines, accepts; never blocks
    }
    return act_->connections() == 0;
  }

  bool keep_alive(MHD_Connection* connection) const {
    const mhd_conn* c = of(connection);
    if (c == nullptr) return !act_->draining();
    return c->conn.keep_alive(read_ahead(*c));
  }
  const server_socket* from(MHD_Connection* connection) const {
    const mhd_conn* c = of(connection);
    return c == nullptr ? nullptr : c->from;
  }

 private:
  static mhd_conn* of(MHD_Connection* connection) {
    if (connection == nullptr) return nullptr;
    const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == nullptr ? nullptr : static_cast<mhd_conn*>(info->socket_context);
  }

  // run()'s thread: a connection accepted (or passed with Accept=yes). It is
  // registered here, where the decisions are taken, then handed to MHD.
  void accepted(unique_fd fd, const server_socket& from) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) return;  // gone already
    auto c = std::make_shared<mhd_conn>();
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return;
    c->core = this;
    c->fd = fd.get();
    c->inode = st.st_ino;
    c->from = &from;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      by_fd_[c->fd] = c;  // MHD's thread looks it up when it starts the connection
    }
    mhd_conn* raw = c.get();
    c->conn = act_->track(c->fd, mhd_closer{raw}, mhd_guarded_post{c});
    if (MHD_add_connection(daemon_, fd.release(), reinterpret_cast<sockaddr*>(&peer), len) == MHD_YES) return;
    // MHD closed the socket (a connection limit, no memory).
    {
      const std::lock_guard<std::mutex> lock(c->mutex);
      c->gone = true;
    }
    c->conn = connection();
    forget(*c);
  }

  void forget(const mhd_conn& c) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = by_fd_.find(c.fd);
    if (it != by_fd_.end() && it->second.get() == &c) by_fd_.erase(it);
  }

  // MHD's callbacks (MHD's threads) -------------------------------------------

  static void on_connection(void* cls, MHD_Connection* mc, void** socket_context,
                            MHD_ConnectionNotificationCode what) {
    auto* self = static_cast<microhttpd_core*>(cls);
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
      const MHD_ConnectionInfo* info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (info == nullptr) return;
      const std::lock_guard<std::mutex> lock(self->mutex_);
      const auto it = self->by_fd_.find(info->connect_fd);
      *socket_context = it != self->by_fd_.end() ? it->second.get() : nullptr;
      return;
    }
    auto* c = static_cast<mhd_conn*>(*socket_context);
    if (c == nullptr) return;
    *socket_context = nullptr;
    {
      const std::lock_guard<std::mutex> lock(c->mutex);  // waits for a close of the library's in progress
      c->gone = true;
    }
    c->conn = connection();  // unregistered before MHD closes the fd
    self->forget(*c);
  }

  // The request line was parsed: a request begins.
  static void* on_request_line(void*, const char*, MHD_Connection* connection) {
    if (mhd_conn* c = of(connection)) {
      c->in_request = true;
      c->head_done = c->complete = false;
      c->conn.received();
    }
    return nullptr;  // the handler's *con_cls starts as nullptr, as without a logger
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char* version, const char* upload_data, size_t* upload_data_size,
                               void** con_cls) {
    auto* self = static_cast<microhttpd_core*>(cls);
    if (mhd_conn* c = of(connection)) {
      if (!c->head_done) {
        c->head_done = true;
        count(*c, connection);
        c->complete = !has_body(connection);
        if (c->complete)
          c->conn.request_received();
        else
          c->conn.headers_received();  // REQUEST_TIMEOUT runs on while the body arrives
      } else if (!c->complete && *upload_data_size == 0) {
        c->complete = true;
        c->conn.request_received();
      }
    }
    return self->handler_(self->handler_cls_, connection, url, method, version, upload_data, upload_data_size,
                          con_cls);
  }

  // The current request's length on the wire: its head and its body.
  static void count(mhd_conn& c, MHD_Connection* connection) {
    const MHD_ConnectionInfo* head =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    const char* length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (head == nullptr || MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != nullptr) {
      c.counted = false;
      return;
    }
    c.current = head->header_size + (length != nullptr ? std::strtoull(length, nullptr, 10) : 0);
  }

  static bool has_body(MHD_Connection* connection) {
    if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
        nullptr)
      return true;
    const char* length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return length != nullptr && std::strspn(length, "0") != std::strlen(length);
  }

  static void on_completed(void* cls, MHD_Connection* connection, void** con_cls,
                           MHD_RequestTerminationCode toe) {
    auto* self = static_cast<microhttpd_core*>(cls);
    if (self->user_completed_ != nullptr)
      self->user_completed_(self->user_completed_cls_, connection, con_cls, toe);
    if (mhd_conn* c = of(connection)) {
      if (!c->head_done) c->counted = false;  // MHD answered it without the handler: its length is unknown
      c->done += c->current;
      c->current = 0;
      c->in_request = c->head_done = c->complete = false;
      // The next request may be in MHD's buffer already: it begins now. A few
      // bytes may be empty lines MHD skips before a request line (its head
      // size leaves them out): no request.
      const std::size_t ahead = read_ahead(*c);
      c->conn.response_sent(ahead > 4 ? ahead : 0);
    }
  }

  activation* act_;
  std::unique_ptr<poll_driver<accept_fn>> poll_;
  MHD_Daemon* daemon_ = nullptr;
  MHD_AccessHandlerCallback handler_ = nullptr;
  void* handler_cls_ = nullptr;
  MHD_RequestCompletedCallback user_completed_ = nullptr;
  void* user_completed_cls_ = nullptr;
  mutable std::mutex mutex_;
  std::unordered_map<int, std::shared_ptr<mhd_conn>> by_fd_;  // accepted and not yet closed by MHD
};

// The callbacks start() sets; the application's own would replace them.
template <class T>
constexpr bool mhd_driver_callback =
    std::is_same<std::decay_t<T>, MHD_RequestCompletedCallback>::value ||
    std::is_same<std::decay_t<T>, MHD_NotifyConnectionCallback>::value ||
    std::is_same<std::decay_t<T>, void* (*)(void*, const char*, MHD_Connection*)>::value;

}  // namespace detail

/// Feeds a libmicrohttpd daemon the activation's connections and runs the
/// lifecycle; see the top of this file. Not movable.
class microhttpd_driver {
 public:
  /// Blocks SIGTERM and SIGINT in the calling thread (make the driver before
  /// any thread starts, MHD's included: they inherit the mask, and the
  /// driver receives the signals) and sends READY=1.
  /// @param ec set when epoll, signalfd or timerfd fail.
  microhttpd_driver(activation& act, std::error_code& ec)
      : core_(std::make_unique<detail::microhttpd_core>(act)) {
    ec = core_->open();
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload.
  explicit microhttpd_driver(activation& act) : core_(std::make_unique<detail::microhttpd_core>(act)) {
    const std::error_code ec = core_->open();
    if (ec) detail::throw_error(ec, "sockact::microhttpd_driver");
  }
#endif
  microhttpd_driver(const microhttpd_driver&) = delete;
  microhttpd_driver& operator=(const microhttpd_driver&) = delete;
  /// Stops the daemon (MHD_stop_daemon(): MHD closes the connections left).
  ~microhttpd_driver() = default;

  /// MHD_start_daemon() for this driver: `flags` plus MHD_USE_NO_LISTEN_SOCKET
  /// and MHD_USE_ITC, no port, `handler` and `cls` as usual, then `options`
  /// (MHD_OPTION_... and their values; MHD_OPTION_END may be left out). MHD
  /// must poll in threads of its own: MHD_USE_INTERNAL_POLLING_THREAD (with
  /// select, poll or epoll) or MHD_USE_THREAD_PER_CONNECTION. The daemon is
  /// the driver's: it stops it. Once per driver.
  /// @param ec EINVAL without an internal thread, EALREADY for a second
  ///        daemon, or MHD_start_daemon()'s errno; then nullptr.
  /// @code
  ///   MHD_Daemon* d = driver.start(ec, MHD_USE_EPOLL_INTERNAL_THREAD, &answer, nullptr,
  ///                                MHD_OPTION_CONNECTION_TIMEOUT, 30u);
  /// @endcode
  template <class... Options>
  MHD_Daemon* start(std::error_code& ec, unsigned flags, MHD_AccessHandlerCallback handler, void* cls,
                    Options... options) {
    static_assert(!(detail::mhd_driver_callback<Options> || ...),
                  "sockact::microhttpd_driver::start(): the driver sets MHD_OPTION_NOTIFY_CONNECTION, "
                  "MHD_OPTION_NOTIFY_COMPLETED and MHD_OPTION_URI_LOG_CALLBACK itself; pass a completion "
                  "callback of your own to on_completed()");
    return core_->start(ec, flags, handler, cls, options...);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload.
  template <class... Options>
  MHD_Daemon* start(unsigned flags, MHD_AccessHandlerCallback handler, void* cls, Options... options) {
    std::error_code ec;
    MHD_Daemon* d = start(ec, flags, handler, cls, options...);
    if (d == nullptr) detail::throw_error(ec, "sockact::microhttpd_driver::start");
    return d;
  }
#endif

  /// The server's own MHD_OPTION_NOTIFY_COMPLETED (to free what its handler
  /// kept in *con_cls): the driver calls it first from its own. Before start().
  void on_completed(MHD_RequestCompletedCallback f, void* cls) noexcept {
    core_->on_completed_too(f, cls);
  }

  /// Accepts on the activation's listening sockets and hands each connection
  /// to the daemon, runs the deadlines and the signals, on the calling
  /// thread, until the drain is over (then the listeners are closed).
  /// @return true when every connection is closed; false when none was
  ///         started, or when SHUTDOWN_TIMEOUT (or a second signal) cut the
  ///         drain with connections still open: their handlers may still run
  ///         (and would hold up MHD_stop_daemon()): end the program at once
  ///         (std::_Exit(0)).
  bool run() {
    return core_->run();
  }

  /// For the response on `connection` (a handler's): whether it may keep the
  /// connection open. False while the server drains, unless the next request
  /// already waits in the socket: then add `Connection: close`.
  bool keep_alive(MHD_Connection* connection) const {
    return core_->keep_alive(connection);
  }
  /// The socket `connection` came in on (its name: from(c)->name); nullptr
  /// for a connection the driver does not know.
  const server_socket* from(MHD_Connection* connection) const {
    return core_->from(connection);
  }

 private:
  std::unique_ptr<detail::microhttpd_core> core_;
};

}  // namespace sockact

#endif  // SOCKACT_MICROHTTPD_HPP
