// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ACTIVATION_HPP
#define SOCKACT_ACTIVATION_HPP

// One object per server: the sockets to serve (passed by the service manager,
// else bound from HOST/PORT/SOCKET_PATH), the lifecycle (idle exit, graceful
// drain, watchdog, READY=1/STOPPING=1) and the connections being served.
//
//   sockact::activation act = sockact::activate();   // reads the environment
//   for (sockact::server_socket& l : act.sockets()) ...   // serve them
//   auto conn = act.track(fd, [&] { close_it(); });  // on accept
//   conn.received(n);  conn.request_received();  conn.response_sent();
//   conn.parsed(buffered, complete);                 // or one call at the parser
//   bool keep = conn.keep_alive();                   // false while draining
//
// A driver (<sockact/poll_driver.hpp>, the Asio, libuv and thread drivers)
// runs the timers and signals and tells the activation when they fire; the
// activation itself closes the connections the drain closes, through the
// close function each connection registered. Users never walk connections.

#include <sockact/detail/config.hpp>
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/listen.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sockact {

/// Why a connection is closed by the library.
enum class close_reason {
  app,               ///< connection::close(): the application asked, after its last response
  idle,              ///< draining: it finished its requests and waits for the next one
  unused,            ///< draining: it sent nothing within the new-connection grace period
  headers_timeout,   ///< its request head did not arrive within HEADERS_TIMEOUT
  request_timeout,   ///< its request did not arrive whole within REQUEST_TIMEOUT
  shutdown_timeout,  ///< the drain took SHUTDOWN_TIMEOUT (or a second signal came)
  send_timeout,      ///< its unsent output did not move for SEND_TIMEOUT: reset
};

SOCKACT_DECL const char* to_string(close_reason r) noexcept;

/// What activate() does.
struct activation_config {
  /// Where to listen when not socket-activated, and how (address, backlog,
  /// O_NONBLOCK, ...). By default LISTEN_* are removed from the environment.
  listen_config listen;
  /// Timeouts; with read_environment, IDLE_TIMEOUT, SHUTDOWN_TIMEOUT,
  /// HEADERS_TIMEOUT, REQUEST_TIMEOUT and SEND_TIMEOUT override these.
  lifecycle_config lifecycle;
  /// Read the timeouts above, and SOCKACT_ALLOW_PARENT_PID, from the
  /// environment. SOCKACT_ALLOW_PARENT_PID=1 sets listen.activation.pid_check
  /// to allow_parent (take the fds when LISTEN_PID is our parent's: podman run
  /// --init with tini or dumb-init) unless it is allow_any; =0 or empty keeps
  /// it as configured. Other values are refused.
  bool read_environment = true;
  /// Serve Accept=yes connections (connected stream sockets) as well as
  /// listening ones. Every other kind of passed fd (datagram, unbound,
  /// not a socket) is refused by activate(), before anything is served.
  bool accept_connections = true;
  /// Bytes sent on a connection whose request timed out, before it is closed
  /// (HTTP servers: sockact::http_timeout_reply). Empty: close only.
  std::string timeout_reply;
  /// Receives every line the library logs (sockets served, warnings, why it
  /// stops). nullptr: standard error, prefixed with `program`.
  void (*log)(const std::string& line) = nullptr;
  /// Prefix of the log lines; empty: the program's short name.
  std::string program;

  /// The defaults for an HTTP/1.x server: a request that times out gets a
  /// 408. `address`: listen.address (where to bind when not activated).
  static activation_config http(std::string address = {});
};

/// An HTTP/1.1 408 that closes the connection, for activation_config::timeout_reply.
inline constexpr const char* http_timeout_reply =
    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

class activation;

namespace detail {

struct activation_state;
struct connection_node;
// Ends every lingering close now (a driver that leaves without finish()).
SOCKACT_DECL void end_lingering(activation& act);

// How one connection is closed, and on which thread: type-erased so that a
// connection registered from Asio posts to its strand, one from a
// single-threaded loop closes inline.
struct connection_closer {
  virtual ~connection_closer() = default;
  virtual void dispatch(const std::shared_ptr<connection_node>& node, close_reason why) = 0;
  // Cancels the read in flight, so that its completion says whether it took
  // bytes (false: the close function cannot do that).
  virtual bool interrupt();
  // Runs the close function (in the connection's own context).
  virtual void close_now() = 0;
  // Whether the close function wants to hear when the lingering close after
  // the library's FIN is over (linger_over()).
  virtual bool lingers() const noexcept { return false; }
  // Dispatches the close function's lingered() to the connection's context.
  virtual void linger_over(const std::shared_ptr<connection_node>& node) { (void)node; }
};

}  // namespace detail

/// One connection being served: created by activation::track() when the
/// connection is accepted, destroyed when it is closed. Move-only. Its calls
/// are cheap (an atomic each) and may be made from the connection's own
/// thread or strand while other connections are served on other threads.
class connection {
 public:
  connection() noexcept = default;
  connection(connection&& o) noexcept : node_(std::move(o.node_)) {}
  connection& operator=(connection&& o) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  /// `n` bytes arrived. The first byte of a request starts it: from then on
  /// the server is busy, and the request deadlines run.
  void received(std::size_t n = 1) noexcept;
  /// The current request's head is complete (stops the HEADERS_TIMEOUT clock).
  void headers_received() noexcept;
  /// The current request arrived whole, body included (stops both clocks).
  /// Frameworks that hand over whole requests call only this and response_sent().
  void request_received() noexcept;
  /// The response to the current request was written. With `buffered` bytes
  /// of the next (pipelined) request already in the application's buffer,
  /// that request begins now; else the connection is idle until its next byte.
  void response_sent(std::size_t buffered = 0) noexcept;
  /// For a server that parses requests out of a buffer of its own (read,
  /// append, parse in a loop): one call after each parse, in place of
  /// received() at every read and request_received() at the parse.
  /// `buffered`: the bytes the buffer holds, not yet consumed; `complete`:
  /// they start with a whole request (as request_received()); else
  /// `head_complete`: its head is whole and its body still arriving (as
  /// headers_received(): HEADERS_TIMEOUT stops, REQUEST_TIMEOUT runs on).
  /// Otherwise a byte buffered is a request begun (as received(buffered):
  /// the server is busy, both clocks run); none changes nothing.
  /// @code
  /// const auto r = parser.parse(in, req);
  /// conn.parsed(in.size(), r.complete(), r.head_complete());
  /// @endcode
  void parsed(std::size_t buffered, bool complete, bool head_complete = false) noexcept;

  /// Whether the response being written may keep the connection open. False
  /// while the server drains, unless the next request is already here:
  /// `buffered` bytes in the application's own buffer, or unread bytes in
  /// the socket. HTTP: write `Connection: close` and then close() when false.
  bool keep_alive(std::size_t buffered = 0) const noexcept;
  /// The server is draining (no new connections; finish and close).
  bool draining() const noexcept;

  /// Closes the connection gracefully: shutdown(SHUT_WR) after what was
  /// written, the close function the connection registered, and a short
  /// linger that reads and discards until the client closes its side.
  void close();

  /// For adapters whose reads complete later than the bytes are taken from
  /// the socket (Asio: the reactor reads, the handler runs afterwards on the
  /// strand): a read is in flight. An idle close that comes meanwhile
  /// cancels it (the close function's interrupt()) instead of closing, so
  /// that a request whose bytes the read already took is served.
  void read_started() noexcept;
  /// What an adapter does with a read that completed (read_finished()).
  enum class read_outcome {
    complete,    ///< complete the read as it came
    closed,      ///< the library cancelled it to close the idle connection, and
                 ///< closed it: complete with operation_aborted
    read_again,  ///< the library cancelled it, then found the connection busy
                 ///< again: read again, the caller never sees the cancel
  };
  /// The read completed with `n` bytes (reported as received(n));
  /// `aborted`: it completed because it was cancelled.
  read_outcome read_finished(std::size_t n, bool aborted);

  explicit operator bool() const noexcept { return node_ != nullptr; }
  int fd() const noexcept;

 private:
  friend class activation;
  explicit connection(std::shared_ptr<detail::connection_node> node) noexcept : node_(std::move(node)) {}
  void reset() noexcept;
  std::shared_ptr<detail::connection_node> node_;
};

namespace detail {

struct inline_post {
  template <class F>
  void operator()(F&& f) const {
    f();
  }
};

template <class T, class = void>
struct has_interrupt : std::false_type {};
template <class T>
struct has_interrupt<T, std::void_t<decltype(std::declval<T&>().interrupt())>> : std::true_type {};
template <class T, class = void>
struct has_lingered : std::false_type {};
template <class T>
struct has_lingered<T, std::void_t<decltype(std::declval<T&>().lingered())>> : std::true_type {};

// What closer_impl needs from a connection_node (defined with the activation).
SOCKACT_DECL connection_closer* closer_of(connection_node& node) noexcept;
// connection_registry::close_prepare() of the node's owner.
SOCKACT_DECL bool close_prepare(connection_node& node, close_reason why);

template <class Close, class Post>
struct closer_impl final : connection_closer {
  closer_impl(Close c, Post p) : close(std::move(c)), post(std::move(p)) {}
  void dispatch(const std::shared_ptr<connection_node>& node, close_reason why) override;
  bool interrupt() override {
    if constexpr (has_interrupt<Close>::value) {
      close.interrupt();
      return true;
    } else {
      return false;
    }
  }
  void close_now() override { close(); }
  bool lingers() const noexcept override { return has_lingered<Close>::value; }
  void linger_over(const std::shared_ptr<connection_node>& node) override {
    if constexpr (has_lingered<Close>::value)
      post([node] { static_cast<closer_impl*>(closer_of(*node))->close.lingered(); });
  }
  Close close;
  Post post;
};

template <class Close, class Post>
void closer_impl<Close, Post>::dispatch(const std::shared_ptr<connection_node>& node, close_reason why) {
  post([node, why] {
    auto* self = static_cast<closer_impl*>(closer_of(*node));
    if (close_prepare(*node, why)) self->close();
  });
}

}  // namespace detail

/// The server's sockets, lifecycle and connections; made by activate().
/// Move-only; connections refer to it, so it must outlive them (declare it
/// first in main()).
class activation {
 public:
  using clock = lifecycle::clock;

  // What a driver does with the outcome of an event.
  struct step_result {
    bool stop_accepting = false;  ///< close the listeners now (never shutdown(2))
    bool finished = false;        ///< leave the loop
  };

  activation() noexcept;
  activation(activation&&) noexcept;
  activation& operator=(activation&&) noexcept;
  ~activation();

  /// The sockets to serve, in the order the manager passed them (or of the
  /// address list). Move them into acceptors or handles as you like: the
  /// idle rule keeps the fd numbers it was given, and a driver that owns
  /// them closes them when the drain begins.
  std::vector<server_socket>& sockets() noexcept;
  /// Whether the sockets came from the service manager (the idle timeout
  /// applies only then, unless lifecycle_config says otherwise).
  bool activated() const noexcept;
  /// The server is draining: answer what was received, accept nothing new.
  bool draining() const noexcept;
  const activation_config& config() const noexcept;
  /// The state machine underneath (phase, reason, the idle tracker).
  lifecycle& state() noexcept;

  /// Registers a connection just accepted. `close` closes it (the socket
  /// object, the handle, the session); it runs where `post` puts it:
  /// inline by default (single-threaded loops), on the connection's strand
  /// with Asio (see asio.hpp's track()). The activation calls it when the
  /// drain or a request deadline closes the connection, after shutdown(SHUT_WR).
  /// A `close` object with a lingered() member hears, through `post` too,
  /// when the lingering close that follows is over (the thread drivers shut
  /// the read side then, which wakes a blocked read).
  template <class Close, class Post = detail::inline_post>
  connection track(int fd, Close close, Post post = {}) {
    using impl = detail::closer_impl<Close, Post>;
    return track_closer(fd, std::make_unique<impl>(std::move(close), std::move(post)));
  }

  /// Connections registered and not yet destroyed.
  std::size_t connections() const;

  /// READY=1 with STATUS=serving NAME...; drivers call it once they serve.
  void ready();
  /// Closes the listening sockets still in sockets() (drivers, once they
  /// stopped watching them): close, never shutdown(2).
  void close_listeners() noexcept;
  /// Writes a line through activation_config::log.
  void log(const std::string& line) const;

  // Driver interface: when to call on_timer() next, and the two events.
  clock::time_point next_deadline(clock::time_point now = clock::now()) const;
  step_result on_timer(clock::time_point now = clock::now());
  step_result on_signal(int signo, clock::time_point now = clock::now());
  /// After the loop: waits (at most the linger time) until the connections
  /// closed by the library have been closed by their clients too.
  void finish();

 private:
  friend bool activate(activation& out, const activation_config& config, std::error_code& ec,
                       std::string* why);
  friend void detail::end_lingering(activation& act);
  // The drain's step after a lifecycle event.
  step_result apply(lifecycle_actions a, clock::time_point now);
  // A connection tracked during an idle drain makes the lifecycle serve again.
  void take_resume(clock::time_point now);
  // track() for a type-erased close function.
  connection track_closer(int fd, std::unique_ptr<detail::connection_closer> closer);
  std::unique_ptr<detail::activation_state> state_;
};

/// Receives or binds the sockets (listen_or_bind), reads the timeouts from
/// the environment, refuses kinds of fd a stream server cannot serve, and
/// warns once about an unusable NOTIFY_SOCKET. Logs one line per socket.
/// @param why receives a message naming the variable, value, fd or address at fault.
SOCKACT_DECL bool activate(activation& out, const activation_config& config, std::error_code& ec,
                           std::string* why = nullptr);

/// activate() for main(): on failure it logs the message (through
/// config.log, which names the variable, value or fd at fault) and exits
/// with status 1, which the service manager records as a failed start.
SOCKACT_DECL activation activate_or_exit(const activation_config& config = {});

#if SOCKACT_HAS_EXCEPTIONS
/// activate() that throws std::system_error with the same message.
SOCKACT_DECL activation activate(const activation_config& config = {});
#endif

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/activation.ipp>
#endif

#endif  // SOCKACT_ACTIVATION_HPP
