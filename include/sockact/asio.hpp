// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_HPP
#define SOCKACT_ASIO_HPP

// The Asio adapter, on a sockact::activation:
//   - asio_driver runs the activation on an io_context (any number of
//     threads): it accepts on every socket the activation serves and hands
//     each new connection, on a strand of its own, to the application; runs
//     the idle, request and drain deadlines on a timer; catches SIGTERM and
//     SIGINT; closes its acceptors when the drain begins (close, never
//     shutdown(2)); sends READY=1, STOPPING=1 and watchdog pings.
//   - tracked_stream<> is the session's socket (or beast::tcp_stream) as a
//     tracked connection: it registers itself, reports every read, and the
//     activation closes it on its strand. track() does the same for a plain
//     socket whose reads the application reports itself.
//   - adopt<T>() makes one Asio object from one fd, after checking what it is.
//
//   sockact::activation act = sockact::activate();
//   asio::io_context io;
//   sockact::asio_driver driver(io, act, [&](asio::ip::tcp::socket s, const sockact::server_socket&) {
//     std::make_shared<session>(std::move(s))->start();  // session: sockact::tracked_stream<tcp::socket>
//   });
//   io.run();  // returns after the idle exit or the drain
//
// Works with Boost.Asio and with standalone asio. Define one of these before
// including this header (or with -D) to choose:
//   SOCKACT_ASIO_BOOST       <boost/asio.hpp>, namespace boost::asio
//   SOCKACT_ASIO_STANDALONE  <asio.hpp>, namespace ::asio
// With neither, the flavour already included wins; otherwise Boost.Asio when
// <boost/asio.hpp> exists, else standalone asio.
//
// Errors are std::error_code in both flavours: sockact::errc for a socket of
// the wrong kind, errno values in std::generic_category() for the rest.

#if defined(SOCKACT_ASIO_BOOST) && defined(SOCKACT_ASIO_STANDALONE)
#error "sockact/asio.hpp: define SOCKACT_ASIO_BOOST or SOCKACT_ASIO_STANDALONE, not both"
#endif
#if !defined(SOCKACT_ASIO_BOOST) && !defined(SOCKACT_ASIO_STANDALONE)
#if defined(BOOST_ASIO_VERSION)
#define SOCKACT_ASIO_BOOST 1
#elif defined(ASIO_VERSION)
#define SOCKACT_ASIO_STANDALONE 1
#elif __has_include(<boost/asio.hpp>)
#define SOCKACT_ASIO_BOOST 1
#elif __has_include(<asio.hpp>)
#define SOCKACT_ASIO_STANDALONE 1
#else
#error \
    "sockact/asio.hpp needs Boost.Asio (<boost/asio.hpp>) or standalone asio (<asio.hpp>); neither was found"
#endif
#endif

#include <sockact/activation.hpp>
#include <sockact/detail/accept_core.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>
#include <sockact/listen.hpp>
#include <sockact/posix.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#if defined(SOCKACT_ASIO_BOOST)
#include <boost/asio.hpp>
#else
#include <asio.hpp>
#endif

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sockact {

// The adapter's names live in an inline namespace per flavour, so a program
// whose parts use different flavours has no clashing definitions.
#if defined(SOCKACT_ASIO_BOOST)
inline namespace asio_boost {
#else
inline namespace asio_standalone {
#endif

#if defined(SOCKACT_ASIO_BOOST)
namespace asio_ns = ::boost::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::boost::system::error_code;
#else
namespace asio_ns = ::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::std::error_code;
#endif

/// An acceptor for listening SOCK_SEQPACKET sockets of any family (Asio has
/// no typed seqpacket protocol); family and protocol are the socket's own.
using asio_seqpacket_acceptor = asio_ns::basic_socket_acceptor<asio_ns::generic::seq_packet_protocol>;
/// A connected SOCK_SEQPACKET socket of any family.
using asio_seqpacket_socket = asio_ns::generic::seq_packet_protocol::socket;

namespace asio_detail {

// An io_context (any execution context) or an executor.
template <class T>
struct is_asio_context_or_executor
    : std::integral_constant<bool, std::is_convertible<T&, asio_ns::execution_context&>::value ||
                                       asio_ns::execution::is_executor<T>::value ||
                                       asio_ns::is_executor<T>::value> {};

template <class Context>
using enable_if_context_t =
    std::enable_if_t<is_asio_context_or_executor<std::remove_cv_t<std::remove_reference_t<Context>>>::value,
                     int>;

// The executor of an io_context, or the executor itself.
template <class Context>
auto executor_of(Context& c) {
  if constexpr (std::is_convertible<Context&, asio_ns::execution_context&>::value)
    return c.get_executor();
  else
    return c;
}

using detail::fd_label;
using detail::wanted_family;
using detail::wanted_state;
using detail::what_it_is;

// What an Asio type accepts: the core's wanted_kind, and the type's name.
struct asio_wanted : detail::wanted_kind {
  const char* type_name;  // for messages: "tcp::acceptor"
};

template <class Protocol>
struct protocol_traits;
template <>
struct protocol_traits<asio_ns::ip::tcp> {
  static constexpr wanted_family family = wanted_family::inet;
  static constexpr int type = SOCK_STREAM;
  static asio_ns::ip::tcp make(const fd_info& i) {
    return i.family == AF_INET6 ? asio_ns::ip::tcp::v6() : asio_ns::ip::tcp::v4();
  }
};
template <>
struct protocol_traits<asio_ns::ip::udp> {
  static constexpr wanted_family family = wanted_family::inet;
  static constexpr int type = SOCK_DGRAM;
  static asio_ns::ip::udp make(const fd_info& i) {
    return i.family == AF_INET6 ? asio_ns::ip::udp::v6() : asio_ns::ip::udp::v4();
  }
};
template <>
struct protocol_traits<asio_ns::local::stream_protocol> {
  static constexpr wanted_family family = wanted_family::local;
  static constexpr int type = SOCK_STREAM;
  static asio_ns::local::stream_protocol make(const fd_info&) { return {}; }
};
template <>
struct protocol_traits<asio_ns::local::datagram_protocol> {
  static constexpr wanted_family family = wanted_family::local;
  static constexpr int type = SOCK_DGRAM;
  static asio_ns::local::datagram_protocol make(const fd_info&) { return {}; }
};
template <>
struct protocol_traits<asio_ns::generic::seq_packet_protocol> {
  static constexpr wanted_family family = wanted_family::any;
  static constexpr int type = SOCK_SEQPACKET;
  static asio_ns::generic::seq_packet_protocol make(const fd_info& i) { return {i.family, i.protocol}; }
};

// Which Asio objects adopt<T>() makes, and what each wants.
template <class T>
struct object_traits;
template <class E>
struct object_traits<asio_ns::basic_socket_acceptor<asio_ns::ip::tcp, E>> {
  static constexpr asio_wanted wanted{
      {"a listening TCP socket", wanted_family::inet, SOCK_STREAM, 0, wanted_state::listening},
      "tcp::acceptor"};
};
template <class E>
struct object_traits<asio_ns::basic_socket_acceptor<asio_ns::local::stream_protocol, E>> {
  static constexpr asio_wanted wanted{
      {"a listening unix stream socket", wanted_family::local, SOCK_STREAM, 0, wanted_state::listening},
      "local::stream_protocol::acceptor"};
};
template <class E>
struct object_traits<asio_ns::basic_socket_acceptor<asio_ns::generic::seq_packet_protocol, E>> {
  static constexpr asio_wanted wanted{
      {"a listening seqpacket socket", wanted_family::any, SOCK_SEQPACKET, 0, wanted_state::listening},
      "asio_seqpacket_acceptor"};
};
template <class E>
struct object_traits<asio_ns::basic_stream_socket<asio_ns::ip::tcp, E>> {
  static constexpr asio_wanted wanted{
      {"a connected TCP socket", wanted_family::inet, SOCK_STREAM, 0, wanted_state::connected},
      "tcp::socket"};
};
template <class E>
struct object_traits<asio_ns::basic_stream_socket<asio_ns::local::stream_protocol, E>> {
  static constexpr asio_wanted wanted{
      {"a connected unix stream socket", wanted_family::local, SOCK_STREAM, 0, wanted_state::connected},
      "local::stream_protocol::socket"};
};
template <class E>
struct object_traits<asio_ns::basic_seq_packet_socket<asio_ns::generic::seq_packet_protocol, E>> {
  static constexpr asio_wanted wanted{
      {"a connected seqpacket socket", wanted_family::any, SOCK_SEQPACKET, 0, wanted_state::connected},
      "asio_seqpacket_socket"};
};
template <class E>
struct object_traits<asio_ns::basic_datagram_socket<asio_ns::ip::udp, E>> {
  static constexpr asio_wanted wanted{{"a UDP socket", wanted_family::inet, SOCK_DGRAM, 0, wanted_state::any},
                                      "udp::socket"};
};
template <class E>
struct object_traits<asio_ns::basic_datagram_socket<asio_ns::local::datagram_protocol, E>> {
  static constexpr asio_wanted wanted{
      {"a unix datagram socket", wanted_family::local, SOCK_DGRAM, 0, wanted_state::any},
      "local::datagram_protocol::socket"};
};

inline bool is_inet(int family) noexcept {
  return family == AF_INET || family == AF_INET6;
}

inline bool fail_check(std::error_code code, std::string text, std::error_code& ec, std::string* why) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

// Asio reports errno values in its system category ("system" in Boost,
// "asio.system" in standalone asio); sockact uses the generic one.
inline std::error_code to_std_error(const asio_error_code& e) {
  if (e.category() == asio_ns::error::get_system_category()) return {e.value(), std::generic_category()};
  return static_cast<std::error_code>(e);
}

// Checks the fd, then hands it to a new Asio object. On any error the fd is
// untouched and still the caller's; on success it belongs to the object.
template <class Object, class Context>
Object adopt_fd(Context&& context, unique_fd& fd, const std::string& name, std::error_code& ec,
                std::string* why) {
  Object object(context);
  const asio_wanted& w = object_traits<Object>::wanted;
  fd_info info;
  if (!detail::check_fd(fd.get(), name, w, info, ec, why)) return object;
  asio_error_code aec;
  object.assign(protocol_traits<typename Object::protocol_type>::make(info), fd.get(), aec);
  if (aec) {  // e.g. EEXIST: this io_context already watches that fd (owned by another object)
    fail_check(to_std_error(aec),
               fd_label(fd.get(), name) + ": Asio cannot take it: " + to_std_error(aec).message(), ec, why);
    return object;
  }
  fd.release();
  // Tell Asio what the fd already is. A blocking fd stays blocking until Asio
  // starts its first asynchronous operation on it, when Asio sets O_NONBLOCK
  // itself; that flag is shared with the service manager's copy.
  if (info.nonblocking) {
    asio_error_code ignored;  // bookkeeping only: Asio sets the flag again when it needs it
    object.native_non_blocking(true, ignored);
  }
  ec.clear();
  return object;
}

template <class T>
std::string adopt_name() {
  return std::string("sockact::adopt<") + object_traits<T>::wanted.type_name + ">";
}

}  // namespace asio_detail

// ---------------------------------------------------------------------------
// adopt<T>(): one Asio object from one fd
// ---------------------------------------------------------------------------

/// Makes the Asio object `T` from an fd, after checking that the fd is what
/// `T` serves (family, type, protocol, listening or connected). The protocol
/// object is deduced from the socket (tcp::v4() or v6(), the seqpacket
/// socket's family). `T` is one of: tcp::acceptor, tcp::socket, udp::socket,
/// local::stream_protocol::acceptor and ::socket,
/// local::datagram_protocol::socket, asio_seqpacket_acceptor,
/// asio_seqpacket_socket (any executor type).
///
/// Ownership moves in on success (`fd` is then empty); on error `fd` still
/// holds the fd, untouched. O_NONBLOCK is left as it is (Asio sets it on the
/// first asynchronous operation). Nothing here shuts a socket down.
/// @param context io_context or executor the object will use.
/// @param fd the owning fd (or a server_socket from activation::sockets(), whose
///        name then appears in messages).
/// @param ec EBADF (not open), errc::not_a_socket, errc::wrong_family,
///        errc::wrong_type, errc::not_listening, errc::not_connected, or what
///        Asio reported (EEXIST: the same io_context already watches the fd).
/// @param why when not null, receives a message naming the fd and what it is.
/// @code
///   auto acceptor = sockact::adopt<asio::ip::tcp::acceptor>(io, std::move(socket.fd), ec);
///   if (ec == sockact::errc::wrong_family) { /* a unix socket */ }
/// @endcode
template <class T, class Context, asio_detail::enable_if_context_t<Context> = 0>
T adopt(Context&& context, unique_fd&& fd, std::error_code& ec, std::string* why = nullptr) {
  return asio_detail::adopt_fd<T>(context, fd, std::string(), ec, why);
}

/// adopt() from one of the sockets of an activation (or listen_or_bind()):
/// its fd moves in on success; messages name it.
template <class T, class Context, asio_detail::enable_if_context_t<Context> = 0>
T adopt(Context&& context, server_socket&& from, std::error_code& ec, std::string* why = nullptr) {
  return asio_detail::adopt_fd<T>(context, from.fd, from.name, ec, why);
}

#if SOCKACT_HAS_EXCEPTIONS
/// adopt() that throws.
/// @throws std::system_error with the error code; what() names the type wanted, the fd and what it is.
template <class T, class Context, asio_detail::enable_if_context_t<Context> = 0>
T adopt(Context&& context, unique_fd&& fd) {
  std::error_code ec;
  std::string why;
  T object = asio_detail::adopt_fd<T>(context, fd, std::string(), ec, &why);
  if (ec) sockact::detail::throw_error(ec, asio_detail::adopt_name<T>() + ": " + why);
  return object;
}

/// adopt() from a server_socket, that throws.
/// @throws std::system_error with the error code; what() names the type wanted, the fd and what it is.
template <class T, class Context, asio_detail::enable_if_context_t<Context> = 0>
T adopt(Context&& context, server_socket&& from) {
  std::error_code ec;
  std::string why;
  T object = asio_detail::adopt_fd<T>(context, from.fd, from.name, ec, &why);
  if (ec) sockact::detail::throw_error(ec, asio_detail::adopt_name<T>() + ": " + why);
  return object;
}
#endif

// ---------------------------------------------------------------------------
// track(): a connection the activation can close on its own strand
// ---------------------------------------------------------------------------

namespace asio_detail {

// Runs the activation's closes on the socket's executor: at once when already
// there (connection::close() from the session's own handler), else posted.
// With an owner, a close that finds the owner gone does nothing, and the
// owner stays alive while the close runs.
template <class Executor>
struct post_to_socket {
  Executor executor;
  std::weak_ptr<void> owner;
  bool owned = false;

  template <class F>
  void operator()(F&& f) const {
    asio_ns::dispatch(executor, [owner = owner, owned = owned, f = std::forward<F>(f)]() mutable {
      std::shared_ptr<void> keep;
      if (owned && !(keep = owner.lock())) return;
      f();
    });
  }
};

template <class Socket>
struct close_socket {
  Socket* socket;
  void operator()() const {
    asio_error_code ignored;
    socket->close(ignored);  // a connection: the activation already sent its FIN
  }
};

// tracked_stream's: its reads are known (read_started()), so an idle close
// may cancel the read in flight and decide on its completion.
template <class Socket>
struct close_tracked_socket {
  Socket* socket;
  void operator()() const {
    asio_error_code ignored;
    socket->close(ignored);
  }
  void interrupt() const {
    asio_error_code ignored;
    socket->cancel(ignored);
  }
};

template <class T, class = void>
struct has_socket_member : std::false_type {};
template <class T>
struct has_socket_member<T, std::void_t<decltype(std::declval<T&>().socket())>> : std::true_type {};

// The socket under a stream: beast::basic_stream's socket(), or the stream itself.
template <class Stream>
auto& socket_of(Stream& s) noexcept {
  if constexpr (has_socket_member<Stream>::value)
    return s.socket();
  else
    return s;
}

}  // namespace asio_detail

/// Registers a connection with the activation (tracked_stream does this by
/// itself, needs none of the rules below, and is the better choice: it
/// also reports its reads in flight (connection::read_started()), so that
/// a drain never closes a connection whose read has taken a request that
/// its handler has not seen yet). The returned handle reports
/// its requests (received(), request_received(), response_sent(),
/// keep_alive(), close(); see sockact::connection), and the activation closes
/// it when the drain or a request deadline says so, on the socket's executor.
///
/// Rules that make this safe with an io_context run by several threads:
///   - the socket's executor is a strand (asio_driver gives every
///     connection one), and the socket is not moved while tracked;
///   - keep the handle next to the socket (in the same session object,
///     declared after the socket) and close through conn.close(), not
///     socket.close(): while the handle lives, its fd must be open;
///   - pass the session as `owner` (e.g. shared_from_this()): a close then
///     keeps it alive while it runs, and does nothing once it is gone.
/// conn.close() called on the socket's strand closes at once; the
/// activation's own closes are posted there.
/// @param act the activation; it must outlive the handle.
/// @param socket a connected stream socket (tcp::socket, local::stream_protocol::socket).
/// @param owner what owns the socket, held weakly; empty: the handle's life alone.
/// @code
///   void session::start() {
///     conn_ = sockact::track(act_, socket_, shared_from_this());
///     read();
///   }
/// @endcode
template <class Socket>
connection track(activation& act, Socket& socket, std::weak_ptr<void> owner = {}) {
  using executor = std::decay_t<decltype(socket.get_executor())>;
  const bool owned = owner.owner_before(std::weak_ptr<void>{}) || std::weak_ptr<void>{}.owner_before(owner);
  return act.track(socket.native_handle(), asio_detail::close_socket<Socket>{&socket},
                   asio_detail::post_to_socket<executor>{socket.get_executor(), std::move(owner), owned});
}

namespace asio_detail {

// The activation an asio_driver runs on an execution context: a
// tracked_stream made on that context registers itself with it.
class activation_service final : public asio_ns::execution_context::service {
 public:
  static inline asio_ns::execution_context::id id;
  explicit activation_service(asio_ns::execution_context& c) : asio_ns::execution_context::service(c) {}
  std::atomic<activation*> act{nullptr};

 private:
  void shutdown() override {}
};

template <class Executor>
activation* activation_of(const Executor& executor) {
  asio_ns::execution_context& context = asio_ns::query(executor, asio_ns::execution::context);
  if (!asio_ns::has_service<activation_service>(context)) return nullptr;
  return asio_ns::use_service<activation_service>(context).act.load(std::memory_order_acquire);
}

// Serialises the activation's closes with the stream's destruction, whatever
// thread each runs on: a close that comes after it does nothing.
struct close_guard {
  std::mutex mutex;
  bool alive = true;
};

template <class Executor>
struct guarded_post {
  Executor executor;
  std::shared_ptr<close_guard> guard;

  template <class F>
  void operator()(F&& f) const {
    asio_ns::dispatch(executor, [guard = guard, f = std::forward<F>(f)]() mutable {
      const std::lock_guard<std::mutex> lock(guard->mutex);
      if (guard->alive) f();
    });
  }
};

}  // namespace asio_detail

/// A stream (a socket, or beast::tcp_stream) that is a tracked connection:
/// made on an io_context that an asio_driver runs (e.g. from the socket the
/// driver handed over), it registers itself with the driver's activation;
/// the activation closes it (on its strand) when the drain or a request
/// deadline says so; and every read is reported (connection::received), so
/// that a request whose first bytes a framework has buffered (Beast's
/// http::async_read) is busy, not idle, and its deadlines run.
/// It is an AsyncReadStream and AsyncWriteStream over `NextLayer`, and it
/// does not move: make it a member of the session, in place of the socket.
/// @code
///   sockact::tracked_stream<beast::tcp_stream> stream_;  // was: beast::tcp_stream stream_;
///   http::async_read(stream_, buffer_, req_, ...);        // as before
///   stream_.connection().request_received();             // the handle
/// @endcode
template <class NextLayer>
class tracked_stream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  /// Constructs the next layer from `args` (e.g. the accepted socket), and
  /// registers the connection when an asio_driver runs its context.
  template <class... Args>
  explicit tracked_stream(Args&&... args) : next_(std::forward<Args>(args)...) {
    if (activation* act = asio_detail::activation_of(next_.get_executor())) track(*act);
  }
  tracked_stream(const tracked_stream&) = delete;
  tracked_stream& operator=(const tracked_stream&) = delete;
  ~tracked_stream() { untrack(); }

  /// Registers the connection with `act` (needed only without an asio_driver).
  void track(activation& act) {
    untrack();
    guard_ = std::make_shared<asio_detail::close_guard>();
    auto& socket = asio_detail::socket_of(next_);
    using socket_type = std::remove_reference_t<decltype(socket)>;
    using executor = std::decay_t<decltype(socket.get_executor())>;
    conn_ = act.track(socket.native_handle(), asio_detail::close_tracked_socket<socket_type>{&socket},
                      asio_detail::guarded_post<executor>{socket.get_executor(), guard_});
  }
  /// The handle: request_received(), response_sent(buffered), keep_alive(buffered), close().
  sockact::connection& connection() noexcept { return conn_; }

  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }
  executor_type get_executor() noexcept { return next_.get_executor(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio_ns::async_compose<Token, void(asio_error_code, std::size_t)>(
        [this, buffers, started = false](auto& self, asio_error_code ec = {}, std::size_t n = 0) mutable {
          if (started) {
            // Bytes the reactor took count before anything else runs on the strand.
            switch (conn_.read_finished(n, ec == asio_ns::error::operation_aborted)) {
              case connection::read_outcome::complete:
                return self.complete(ec, n);
              case connection::read_outcome::closed:
                return self.complete(asio_error_code(asio_ns::error::operation_aborted), std::size_t{0});
              case connection::read_outcome::read_again:
                break;  // the library's own cancel, and the connection stays: read on
            }
          }
          started = true;
          conn_.read_started();
          next_.async_read_some(buffers, std::move(self));
        },
        token, next_);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return next_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  void untrack() noexcept {
    if (guard_) {
      const std::lock_guard<std::mutex> lock(guard_->mutex);
      guard_->alive = false;
    }
    conn_ = sockact::connection();
  }

  NextLayer next_;
  std::shared_ptr<asio_detail::close_guard> guard_;
  sockact::connection conn_;
};

// ---------------------------------------------------------------------------
// asio_driver: the activation on an io_context
// ---------------------------------------------------------------------------

namespace asio_detail {

template <class F, class Socket>
constexpr bool takes_socket() {
  return std::is_invocable<F&, Socket&&, const server_socket&>::value ||
         std::is_invocable<F&, Socket&&>::value;
}

class driver_base {
 public:
  virtual ~driver_base() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  // The io_context was stopped by something else (io_context::stop()) before
  // the activation was done, and runs again: begin the drain.
  virtual void stopped_from_outside() = 0;
  std::atomic<bool> finished{false};
  std::atomic<bool> halted{false};
};

template <class Executor, class OnConnection>
class driver_state final : public driver_base,
                           public std::enable_shared_from_this<driver_state<Executor, OnConnection>> {
 public:
  using clock = activation::clock;
  using strand_type = asio_ns::strand<Executor>;
  using tcp = asio_ns::ip::tcp;
  using local_stream = asio_ns::local::stream_protocol;
  static constexpr std::chrono::milliseconds finish_wait{200};

  driver_state(const Executor& executor, activation& act, OnConnection on_connection)
      : executor_(executor),
        strand_(asio_ns::make_strand(executor)),
        act_(act),
        on_connection_(std::move(on_connection)),
        timer_(strand_),
        signals_(strand_) {}

  // Takes the activation's sockets; on error nothing has started.
  bool adopt_sockets(std::error_code& ec, std::string* why) {
    constexpr bool tcp_ok = takes_socket<OnConnection, tcp::socket>();
    constexpr bool unix_ok = takes_socket<OnConnection, local_stream::socket>();
    static_assert(
        tcp_ok || unix_ok,
        "asio_driver: the connection handler must take (tcp::socket&&[, const sockact::server_socket&]) "
        "or (local::stream_protocol::socket&&[, ...])");
    std::vector<server_socket>& sockets = act_.sockets();
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      server_socket& l = sockets[i];
      if (!l.fd) continue;
      const bool inet = is_inet(l.info.family), local = l.info.family == AF_UNIX;
      const bool stream = l.info.type == SOCK_STREAM;
      if (stream && inet && tcp_ok) {
        if (!add<tcp>(i, ec, why)) return false;
      } else if (stream && local && unix_ok) {
        if (!add<local_stream>(i, ec, why)) return false;
      } else {
        return fail_check(errc::wrong_type,
                          fd_label(l.fd.get(), l.name) + " is " + what_it_is(l.info) +
                              "; this server's connection handler takes only " +
                              (tcp_ok && unix_ok ? "TCP and unix stream"
                               : tcp_ok          ? "TCP"
                                                 : "unix stream") +
                              " sockets",
                          ec, why);
      }
    }
    asio_error_code aec;
    signals_.add(SIGTERM, aec);
    if (!aec) signals_.add(SIGINT, aec);
    if (aec) return fail_check(to_std_error(aec), "cannot catch SIGTERM/SIGINT: " + aec.message(), ec, why);
    ec.clear();
    return true;
  }

  void start() override {
    act_.ready();
    asio_ns::dispatch(strand_, [self = this->shared_from_this()] {
      for (auto& a : self->tcp_) self->accept(a);
      for (auto& a : self->unix_) self->accept(a);
      self->hand_over(self->tcp_connections_);
      self->hand_over(self->unix_connections_);
      self->wait_for_signal();
      self->arm();
    });
  }

  void stop() override {
    asio_ns::dispatch(strand_, [self = this->shared_from_this()] { self->halt(); });
  }

  // Posted to the io_context first, so that it runs after what was queued
  // when it stopped: the completion of the driver's own signal_set for the
  // signal that made the application stop it. An outside stop counts as the
  // first stop signal, and the first signal after it does not count again.
  void stopped_from_outside() override {
    asio_ns::post(executor_, [self = this->shared_from_this()] {
      asio_ns::dispatch(self->strand_, [self] {
        if (self->halted_ || self->finishing_) return;
        self->act_.log(
            "the io_context was stopped from outside the driver (io_context::stop(), e.g. in the "
            "application's own signal_set), " +
            std::to_string(self->act_.connections()) +
            " connection(s) open: asio_driver::run() runs it on until the drain is over");
        if (self->signalled_) return;
        self->signalled_ = self->absorb_signal_ = true;
        self->apply(self->act_.on_signal(SIGTERM));
      });
    });
  }

 private:
  template <class Protocol>
  struct acceptor_entry {
    acceptor_entry(const strand_type& s, std::size_t i) : acceptor(s), pause(s), index(i) {}
    asio_ns::basic_socket_acceptor<Protocol> acceptor;
    asio_ns::steady_timer pause;
    std::size_t index;  // in act.sockets()
  };
  template <class Protocol>
  using entries = std::vector<std::shared_ptr<acceptor_entry<Protocol>>>;
  template <class Protocol>
  struct pending_connection {
    typename Protocol::socket socket;
    std::size_t index;
  };

  template <class Protocol>
  entries<Protocol>& acceptors() {
    if constexpr (std::is_same<Protocol, tcp>::value)
      return tcp_;
    else
      return unix_;
  }
  template <class Protocol>
  std::vector<pending_connection<Protocol>>& connections() {
    if constexpr (std::is_same<Protocol, tcp>::value)
      return tcp_connections_;
    else
      return unix_connections_;
  }

  template <class Protocol>
  bool add(std::size_t i, std::error_code& ec, std::string* why) {
    server_socket& l = act_.sockets()[i];
    if (l.info.listening) {
      auto e = std::make_shared<acceptor_entry<Protocol>>(strand_, i);
      e->acceptor = adopt_fd<asio_ns::basic_socket_acceptor<Protocol>>(strand_, l.fd, l.name, ec, why);
      if (ec) return false;
      asio_error_code aec;
      e->acceptor.non_blocking(true, aec);  // accept() below must never block the strand
      if (aec)
        return fail_check(to_std_error(aec), "cannot make " + l.name + " non-blocking: " + aec.message(), ec,
                          why);
      acceptors<Protocol>().push_back(std::move(e));
      return true;
    }
    // Accept=yes: the one connection the manager accepted; on its own strand.
    auto socket = adopt_fd<typename Protocol::socket>(asio_ns::make_strand(executor_), l.fd, l.name, ec, why);
    if (ec) return false;
    connections<Protocol>().push_back({std::move(socket), i});
    single_ = true;
    return true;
  }

  template <class Socket>
  void deliver(Socket&& socket, std::size_t index) {
    const server_socket& from = act_.sockets()[index];
    if constexpr (std::is_invocable<OnConnection&, Socket&&, const server_socket&>::value)
      on_connection_(std::move(socket), from);
    else if constexpr (std::is_invocable<OnConnection&, Socket&&>::value)
      on_connection_(std::move(socket));
    // else: never reached, adopt_sockets() refused sockets of this kind
  }

  template <class Protocol>
  void hand_over(std::vector<pending_connection<Protocol>>& pending) {
    for (pending_connection<Protocol>& p : pending) deliver(std::move(p.socket), p.index);
    pending.clear();
  }

  // Waits until a listener is readable, then accepts on the driver's strand,
  // and only while accepting: async_accept would take a connection from the
  // kernel in the reactor, and one that completed just as the drain began
  // would be closed unanswered. A client not accepted waits in the backlog
  // for the next activation. The accepts themselves are the shared accept
  // path's, on the native fd (non-blocking).
  template <class Protocol>
  void accept(const std::shared_ptr<acceptor_entry<Protocol>>& e) {
    e->acceptor.async_wait(
        asio_ns::socket_base::wait_read, [self = this->shared_from_this(), e](const asio_error_code& ec) {
          if (!self->accepting_ || ec == asio_ns::error::operation_aborted) return;
          const std::string& name = self->act_.sockets()[e->index].name;
          const auto log = [&](const std::string& line) { self->act_.log(line); };
          sockact::detail::accept_outcome r;
          if (ec)
            r.next = self->accept_.failed(
                ec.category() == asio_ns::error::get_system_category() ? ec.value() : EINVAL, name, log);
          else
            r = self->accept_.burst(
                e->acceptor.native_handle(),
                [&](unique_fd c) { self->template deliver_fd<Protocol>(std::move(c), e->index); },
                [&] { return self->accepting_; }, name, log,
                SOCK_CLOEXEC);  // blocking, as Asio's accept() makes it
          if (r.next == sockact::detail::accept_next::stop || !self->accepting_) return;
          if (r.next == sockact::detail::accept_next::back_off) return self->pause(e);
          self->arm();  // the request deadlines of the new connections need the timer
          self->accept(e);
        });
  }

  // A connection accepted on the native fd, as the Asio socket the handler takes.
  template <class Protocol>
  void deliver_fd(unique_fd fd, std::size_t index) {
    const server_socket& from = act_.sockets()[index];
    typename Protocol::socket socket(asio_ns::make_strand(executor_));
    asio_error_code aec;
    if constexpr (std::is_same<Protocol, tcp>::value)
      socket.assign(from.info.family == AF_INET6 ? tcp::v6() : tcp::v4(), fd.get(), aec);
    else
      socket.assign(Protocol(), fd.get(), aec);
    if (aec) return act_.log("accept on " + from.name + ": cannot adopt the connection: " + aec.message());
    (void)fd.release();  // the socket owns it now
    deliver(std::move(socket), index);
  }

  // Out of fds (or worse): leave this acceptor alone for a while rather than
  // spin; the queued clients wait in the kernel until fds free up.
  template <class Protocol>
  void pause(const std::shared_ptr<acceptor_entry<Protocol>>& e) {
    e->pause.expires_after(sockact::detail::accept_back_off);
    e->pause.async_wait([self = this->shared_from_this(), e](const asio_error_code& wec) {
      if (!wec && self->accepting_) self->accept(e);
    });
  }

  template <class Protocol>
  void close_all(entries<Protocol>& es) {
    for (auto& e : es) {
      asio_error_code ignored;
      e->acceptor.close(ignored);  // close, never shutdown(2): the manager keeps its copy
      e->pause.cancel();
    }
    es.clear();
  }

  void stop_accepting() {
    accepting_ = false;
    close_all(tcp_);
    close_all(unix_);
    act_.close_listeners();
  }

  bool accepting() const noexcept { return !tcp_.empty() || !unix_.empty(); }

  void wait_for_signal() {
    signals_.async_wait([self = this->shared_from_this()](const asio_error_code& ec, int signo) {
      if (ec || self->finishing_) return;
      if (self->absorb_signal_)
        self->absorb_signal_ = false;  // stopped_from_outside() began this drain, for this signal
      else
        self->apply(self->act_.on_signal(signo));
      self->signalled_ = true;
      if (!self->finishing_) self->wait_for_signal();
    });
  }

  void tick() {
    if (halted_) return;
    const clock::time_point now = clock::now();
    if (finishing_) {
      // The last closes were posted to the connections' strands: give them
      // a moment to run before the final linger wait.
      if (act_.connections() == 0 || now >= finish_by_) return done();
      return arm();
    }
    apply(act_.on_timer(now));
    // Accept=yes: the one connection is served; nothing more to do.
    if (!finishing_ && single_ && !accepting() && act_.connections() == 0) begin_finish();
  }

  void apply(const activation::step_result& r) {
    if (r.stop_accepting && accepting_) stop_accepting();
    if (r.finished) begin_finish();
    arm();
  }

  void begin_finish() {
    if (finishing_) return;
    finishing_ = true;
    stop_accepting();
    asio_error_code ignored;
    signals_.cancel(ignored);  // still registered: later signals are ignored
    // The closes the activation just posted run on the connections' strands.
    finish_by_ = clock::now() + std::min<clock::duration>(act_.config().lifecycle.linger, finish_wait);
    arm();
  }

  void done() {
    halt();
    act_.finish();  // bounded wait for the clients of closed connections to close
    finished.store(true, std::memory_order_release);
    // What is left (a session's timer on a closed connection, ...) must not
    // hold the process: run() returns in every thread.
    auto& context = asio_ns::query(executor_, asio_ns::execution::context);
    if (auto* io = dynamic_cast<asio_ns::io_context*>(&context)) io->stop();
  }

  // Stops everything the driver waits on, so io_context::run() can return.
  void halt() {
    if (halted_) return;
    halted_ = finishing_ = true;
    halted.store(true, std::memory_order_release);
    stop_accepting();
    ++generation_;
    timer_.cancel();
    asio_error_code ignored;
    signals_.cancel(ignored);
  }

  void arm() {
    if (halted_) return;
    const clock::time_point now = clock::now();
    clock::time_point due = act_.next_deadline(now);
    // Asio has no hook for "before the loop waits", where an epoll loop looks
    // at the idle tracker again: while serving, look every check_interval().
    idle_tracker& tracker = act_.state().tracker();
    if (act_.state().current() == lifecycle::phase::serving && tracker.enabled())
      due = std::min(due, now + tracker.check_interval());
    if (finishing_ || single_) due = std::min(due, now + std::chrono::milliseconds(finishing_ ? 20 : 250));
    if (armed_ ? armed_for_ <= due : due == clock::time_point::max()) return;
    ++generation_;  // a pending wait is stale from now on
    timer_.expires_at(due);
    armed_for_ = due;
    armed_ = true;
    timer_.async_wait([self = this->shared_from_this(), g = generation_](const asio_error_code&) {
      if (g != self->generation_) return;
      self->armed_ = false;
      self->tick();
    });
  }

  Executor executor_;
  strand_type strand_;
  activation& act_;
  OnConnection on_connection_;
  asio_ns::basic_waitable_timer<clock> timer_;
  asio_ns::signal_set signals_;
  entries<tcp> tcp_;
  entries<local_stream> unix_;
  std::vector<pending_connection<tcp>> tcp_connections_;
  std::vector<pending_connection<local_stream>> unix_connections_;
  clock::time_point armed_for_{}, finish_by_{};
  unsigned long generation_ = 0;
  bool accepting_ = true, armed_ = false, single_ = false, finishing_ = false, halted_ = false;
  sockact::detail::accept_core accept_;
  bool signalled_ = false;      // a stop signal (or an outside stop) began a drain
  bool absorb_signal_ = false;  // an outside stop stands for the next signal
};

}  // namespace asio_detail

/// Runs an activation on an io_context, which any number of threads may run:
///   - accepts on every listening socket of act.sockets() (TCP, IPv4 or
///     IPv6, and unix stream; ownership moves from the listeners into its
///     acceptors) and calls `on_connection(socket&&, const server_socket& from)`
///     (or `on_connection(socket&&)`) with each new connection, whose
///     executor is a strand of its own. Accept=yes connections passed by the
///     manager come through it too. Out of fds, it pauses accepting for
///     100 ms instead of spinning or dropping the queued clients;
///   - runs the idle, watchdog, request and drain deadlines on a timer and
///     catches SIGTERM and SIGINT (a second signal closes everything);
///   - when the drain begins, closes its acceptors (close, never shutdown(2));
///     the activation closes the idle connections through their handles;
///   - sends READY=1 when constructed, STOPPING=1 when the drain begins;
///   - when done (idle exit, or the drain is over), waits briefly for the
///     last closes, lingers (act.finish()) and stops the io_context:
///     run() returns in every thread, even while a session still waits on a
///     timer of its own. Run other work on another io_context.
/// Leave SIGTERM and SIGINT to the driver: an application's own signal_set
/// for them is notified too, and an io_context::stop() there would cut the
/// drain. Run the io_context with driver.run(), which runs it on after such
/// a stop until the drain is over; with io.run(), the driver says at its
/// destruction that requests were cut.
/// Its own handlers run on a strand of its own. The connection handler runs
/// there too: start the session's work on the socket's strand (its first
/// async call is fine). `on_connection` is invoked with tcp::socket or
/// local::stream_protocol::socket, whichever it accepts (a generic lambda
/// takes both); a socket whose kind it does not accept is an error at
/// construction. The sessions' streams are sockact::tracked_stream: they
/// register with this driver's activation by themselves. While the driver
/// lives, SIGTERM and SIGINT no longer kill the process. The activation must
/// outlive the io_context's handlers (declare it first).
/// @code
///   sockact::activation act = sockact::activate(sockact::activation_config::http());
///   asio::io_context io{4};
///   sockact::asio_driver driver(io, act, [](asio::ip::tcp::socket s, const sockact::server_socket& from) {
///     std::make_shared<session>(std::move(s))->start();
///   });
///   for (int i = 0; i < 3; ++i) threads.emplace_back([&driver] { driver.run(); });
///   driver.run();  // or io.run()
/// @endcode
class asio_driver {
 public:
  /// Takes the sockets, catches the signals, sends READY=1 and starts (from
  /// io_context::run()). On error nothing has started: the sockets not yet
  /// adopted stay in act.sockets().
  /// @param context io_context or executor the driver and the connections use.
  /// @param act the activation; it must outlive the driver's handlers.
  /// @param on_connection called with each new connection (see above).
  /// @param ec errc::wrong_type for a socket the handler cannot take, what
  ///        adopt() reports, or why the signal handlers could not be installed.
  /// @param why when not null, receives a message naming the fd and what it is.
  template <class Context, class OnConnection, asio_detail::enable_if_context_t<Context> = 0>
  asio_driver(Context&& context, activation& act, OnConnection on_connection, std::error_code& ec,
              std::string* why = nullptr) {
    start(asio_detail::executor_of(context), act, std::move(on_connection), ec, why);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// The constructor that throws.
  /// @throws std::system_error with the error code and the message of `why`.
  template <class Context, class OnConnection, asio_detail::enable_if_context_t<Context> = 0>
  asio_driver(Context&& context, activation& act, OnConnection on_connection) {
    std::error_code ec;
    std::string why;
    start(asio_detail::executor_of(context), act, std::move(on_connection), ec, &why);
    if (ec) sockact::detail::throw_error(ec, "sockact::asio_driver: " + why);
  }
#endif
  asio_driver(const asio_driver&) = delete;
  asio_driver& operator=(const asio_driver&) = delete;
  /// Stops accepting and waiting (posted to the driver's strand). Logs an
  /// error when connections are still open before the activation was done
  /// (the io_context was stopped by something else, and their requests are cut).
  ~asio_driver() {
    if (state_ && !finished() && act_->connections() > 0)
      act_->log(
          "error: the driver ends before the drain is over, " + std::to_string(act_->connections()) +
          " connection(s) open: their requests are cut. Was the io_context stopped from outside "
          "(io_context::stop() in the application's own signal_set)? The driver catches SIGTERM and "
          "SIGINT itself; run the io_context with driver.run(), which runs it on until the drain is over");
    if (state_) state_->stop();
    activation* mine = act_;
    if (service_ != nullptr) service_->act.compare_exchange_strong(mine, nullptr);
  }

  /// The activation is done (idle exit or drain over, lingered).
  bool finished() const noexcept {
    return state_ && state_->finished.load(std::memory_order_acquire);
  }

  /// Runs the io_context the driver was made with, on the calling thread,
  /// until the activation is done: io_context::run(), and run again when
  /// something else stopped it first (io_context::stop() in the application's
  /// own signal_set, or anywhere): such a stop begins the drain as SIGTERM
  /// would (and stands for the signal that caused it), so the requests in
  /// flight are answered, not cut. Call it in place of io.run() from every
  /// thread that runs the io_context (a thread in io.run() leaves at such a
  /// stop, and the others serve on).
  /// @return true when the activation is done; false when the driver did not
  ///         start, or its context is not an io_context.
  /// @code
  ///   sockact::asio_driver driver(io, act, on_connection);
  ///   driver.run();  // returns after the idle exit or the drain
  /// @endcode
  bool run() {
    if (!state_ || io_ == nullptr) return false;
    std::unique_lock<std::mutex> lock(run_mutex_);
    ++running_;
    for (;;) {
      lock.unlock();
      io_->run();
      lock.lock();
      if (finished() || state_->halted.load(std::memory_order_acquire)) break;
      // Stopped from outside: the last of run()'s threads to return restarts
      // it (restart() must not overlap run()), the others wait for that.
      const unsigned long seen = restarts_;
      if (--running_ == 0) {
        io_->restart();
        ++restarts_;
        state_->stopped_from_outside();
        run_cv_.notify_all();
      } else {
        run_cv_.wait(lock, [&] { return restarts_ != seen || finished(); });
      }
      ++running_;
    }
    --running_;
    run_cv_.notify_all();
    return finished();
  }

 private:
  template <class Executor, class OnConnection>
  void start(const Executor& executor, activation& act, OnConnection on_connection, std::error_code& ec,
             std::string* why) {
    using state = asio_detail::driver_state<Executor, OnConnection>;
    auto s = std::make_shared<state>(executor, act, std::move(on_connection));
    if (!s->adopt_sockets(ec, why)) return;
    asio_ns::execution_context& context = asio_ns::query(executor, asio_ns::execution::context);
    service_ = &asio_ns::use_service<asio_detail::activation_service>(context);
    service_->act.store(&act, std::memory_order_release);
    act_ = &act;
    auto& ctx = asio_ns::query(executor, asio_ns::execution::context);
    using context_type = std::remove_reference_t<decltype(ctx)>;
    if constexpr (std::is_convertible<context_type*, asio_ns::io_context*>::value)
      io_ = &ctx;
    else if constexpr (std::is_polymorphic<context_type>::value)
      io_ = dynamic_cast<asio_ns::io_context*>(&ctx);
    s->start();
    state_ = std::move(s);
  }

  asio_detail::activation_service* service_ = nullptr;
  activation* act_ = nullptr;
  asio_ns::io_context* io_ = nullptr;
  // run(): its threads, and the restarts after an outside stop.
  std::mutex run_mutex_;
  std::condition_variable run_cv_;
  int running_ = 0;
  unsigned long restarts_ = 0;

  std::shared_ptr<asio_detail::driver_base> state_;
};

}  // namespace asio_boost / asio_standalone
}  // namespace sockact

#endif  // SOCKACT_ASIO_HPP
