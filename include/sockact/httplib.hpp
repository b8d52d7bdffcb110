// SPDX-License-Identifier: MIT
#ifndef SOCKACT_HTTPLIB_HPP
#define SOCKACT_HTTPLIB_HPP

// cpp-httplib (tested with 0.11.4, Debian's libcpp-httplib-dev) on the
// sockets an activation serves, with the thread driver:
//
//   sockact::activation act = sockact::activate(sockact::activation_config::http());
//   sockact::thread_driver driver(act);        // first: it blocks SIGTERM/SIGINT for the threads
//   sockact::httplib_server svr(driver);       // an httplib::Server
//   svr.Get("/", ...);
//   svr.serve(act.sockets()[0]);               // blocks, as listen() does
//   if (!driver.wait()) std::_Exit(0);         // the drain was cut: end without the stuck threads
//
// What it does about cpp-httplib's traps (docs/adapters.md, "cpp-httplib", says what
// it cannot do):
//  * It takes no listening fd: serve() sets svr_sock_, the protected member
//    that bind_to_port() sets, and runs listen_after_bind(). Its accept loop
//    spins on an O_NONBLOCK socket and is not woken by a close: an idle
//    interval makes it poll, and its idle hook ends it once the driver has
//    put its placeholder over the fd. stop() calls shutdown(2) on the
//    listening socket, which breaks it in the service manager too: deleted.
//  * It hides each connection's fd but hands it to a virtual
//    process_and_close_socket(): the override tracks the connection with its
//    fd (so only a request in progress counts, and the library closes idle
//    and timed-out connections) and serves it with a keep-alive loop and a
//    stream of its own around the protected process_request(). cpp-httplib's
//    loop dropped the answer to a client that half-closed (its is_writable()
//    takes EOF for a dead socket) and pipelined requests (its read-ahead
//    buffer lived for one request); it read a body without framing to EOF and
//    accepted malformed chunked bodies. Here each body byte is checked as it
//    is taken (detail::http_body), bad framing gets 400 (413 over the body
//    limit, 431 for a large head, 408 for a stall) and a close, and so does a
//    request whose body was left unread.
//  * Its pool has 8 threads and a connection holds one between requests: the
//    pool here grows to set_thread_count(), a connection waiting for a thread
//    counts as busy, and idle keep-alive connections give their threads up
//    to waiting ones (after 100 ms; 1 s for one that has sent nothing).
//  * Responses say `Connection: close` while draining (unless the next
//    request is here), after keep_alive_max_count requests, and whenever the
//    server closes after them.
//  * Set the pre- and post-routing handlers through httplib_server (through
//    a httplib::Server& they would replace the ones that do the above) and
//    leave new_task_queue alone.
//
// Here: the server glue and each connection's stream. Its thread pool is
// detail/httplib_pool.hpp, the body's framing check detail/http_body.hpp.

#include <httplib.h>
#include <sockact/detail/http_body.hpp>
#include <sockact/detail/httplib_pool.hpp>
#include <sockact/thread_driver.hpp>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

// The limits httplib_server sets (cpp-httplib's own defaults in brackets).
// Define before including to change them everywhere; the setters change one
// server (call them before serve()).
#ifndef SOCKACT_HTTPLIB_THREADS  // set_thread_count() [8, fixed]
#define SOCKACT_HTTPLIB_THREADS 64
#endif
#ifndef SOCKACT_HTTPLIB_PAYLOAD_MAX_LENGTH  // set_payload_max_length(): 413 beyond [no limit]
#define SOCKACT_HTTPLIB_PAYLOAD_MAX_LENGTH (std::size_t{1} << 20)
#endif
#ifndef SOCKACT_HTTPLIB_KEEPALIVE_MAX_COUNT  // set_keep_alive_max_count(): requests per connection [5]
#define SOCKACT_HTTPLIB_KEEPALIVE_MAX_COUNT 1000
#endif
#ifndef SOCKACT_HTTPLIB_KEEPALIVE_TIMEOUT_SECOND  // set_keep_alive_timeout(): idle between requests [5]
#define SOCKACT_HTTPLIB_KEEPALIVE_TIMEOUT_SECOND 5
#endif
#ifndef SOCKACT_HTTPLIB_READ_TIMEOUT_SECOND  // set_read_timeout(): a request's longest pause, then 408 [5]
#define SOCKACT_HTTPLIB_READ_TIMEOUT_SECOND 5
#endif
#ifndef SOCKACT_HTTPLIB_WRITE_TIMEOUT_SECOND  // set_write_timeout(): a response's longest stall [5]
#define SOCKACT_HTTPLIB_WRITE_TIMEOUT_SECOND 5
#endif
#ifndef SOCKACT_HTTPLIB_HEAD_MAX_LENGTH  // request line and fields: 431 beyond [8 KiB per line only]
#define SOCKACT_HTTPLIB_HEAD_MAX_LENGTH 8192
#endif
#ifndef SOCKACT_HTTPLIB_HEADER_MAX_COUNT  // header fields: 431 beyond [no limit]
#define SOCKACT_HTTPLIB_HEADER_MAX_COUNT 100
#endif

namespace sockact {

/// An httplib::Server that serves activated sockets under a thread_driver.
/// Make the driver first; one server per socket, each serve() on its own thread.
class httplib_server : public httplib::Server {
 public:
  /// Sets cpp-httplib's limits to the SOCKACT_HTTPLIB_* values above.
  /// @param accept_poll how often the accept loop looks at its socket when
  ///        nothing arrives: the longest it takes to notice the drain.
  explicit httplib_server(thread_driver& driver,
                          std::chrono::milliseconds accept_poll = std::chrono::milliseconds(100));

  /// Serves `l`, a listening socket (its fd moves into the server), until
  /// the drain closes the listeners and the last connection has closed.
  /// Blocks, like listen(). False at once for an Accept=yes connection or a
  /// moved-from listener, and when the accept loop failed before the drain.
  bool serve(server_socket& l);

  /// The most connections served at once, each on a thread of its own
  /// (started as needed, kept until serve() returns). More wait in a queue,
  /// counted as busy; idle keep-alive connections make way for them.
  httplib_server& set_thread_count(std::size_t n) {
    threads_ = n > 0 ? n : 1;
    return *this;
  }

  /// As httplib::Server's; the server's own checks come first (a request
  /// refused with 400, 413 or 431 does not reach yours).
  httplib_server& set_pre_routing_handler(HandlerWithResponse handler) {
    pre_routing_ = std::move(handler);
    return *this;
  }
  /// As httplib::Server's; after yours the server decides whether the
  /// connection stays open, and adds `Connection: close` when it does not.
  httplib_server& set_post_routing_handler(Handler handler) {
    post_routing_ = std::move(handler);
    return *this;
  }

  /// shutdown(2) on the manager's socket: never. The driver stops the server.
  void stop() = delete;

 private:
  class connection_stream;

  // cpp-httplib calls this on a pool thread for each accepted connection.
  bool process_and_close_socket(socket_t sock) override;

  thread_driver* driver_;
  std::size_t threads_ = SOCKACT_HTTPLIB_THREADS;
  HandlerWithResponse pre_routing_;
  Handler post_routing_;
};

// One connection: cpp-httplib's Stream over the fd, the keep-alive loop, and
// the checks and decisions the server's routing handlers ask it for.
class httplib_server::connection_stream final : public httplib::Stream {
 public:
  connection_stream(httplib_server& server, int fd);
  ~connection_stream() override;
  connection_stream(const connection_stream&) = delete;
  connection_stream& operator=(const connection_stream&) = delete;

  /// Serves requests until the connection is to close.
  void serve();

  // httplib::Stream.
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  using httplib::Stream::write;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

  // From the routing handlers (on this connection's thread).
  static connection_stream*& current() noexcept {
    thread_local connection_stream* s = nullptr;
    return s;
  }
  int refusal() const noexcept { return refusal_; }
  void respond(const httplib::Request& req, httplib::Response& res);

 private:
  enum class phase { head, body, response };

  bool wait_for_request(bool first);
  ssize_t fill() noexcept;
  void head_received(httplib::Request& req);
  void request_received() noexcept;
  bool send_all(const char* p, std::size_t n) noexcept;
  void reply_and_close(const char* reply) noexcept;
  int wait_for(short events, long long ms) const noexcept;
  std::size_t buffered() const noexcept { return end_ - off_; }
  long long read_timeout_ms() const noexcept {
    return static_cast<long long>(server_.read_timeout_sec_) * 1000 + server_.read_timeout_usec_ / 1000;
  }
  long long write_timeout_ms() const noexcept {
    return static_cast<long long>(server_.write_timeout_sec_) * 1000 + server_.write_timeout_usec_ / 1000;
  }

  httplib_server& server_;
  const int fd_;
  thread_connection conn_;
  detail::httplib_pool* pool_;
  std::vector<char> in_;  // what arrived and cpp-httplib has not taken: lives as long as the connection
  std::size_t off_ = 0, end_ = 0;
  std::size_t left_;  // requests this connection may still make
  // The current request.
  phase phase_ = phase::head;
  std::size_t head_bytes_ = 0;
  detail::http_body body_;
  int refusal_ = 0;
  bool received_ = false;       // request_received() was said
  bool decided_ = false;        // respond() ran
  bool closing_ = false;        // the connection closes after this response
  bool dead_ = false;           // a reply of our own was sent, or a write failed: write nothing more
  bool drop_continue_ = false;  // the next write is cpp-httplib's 100 Continue, not to be sent
};

// ---------------------------------------------------------------------------
// Definitions.

namespace detail {

// "x" and "X" are the same header value to HTTP; cpp-httplib compares values exactly.
inline bool equals_nocase(const std::string& a, const char* b) noexcept {
  return ::strcasecmp(a.c_str(), b) == 0;
}

// The status a request head is refused with (0: none), and its Content-Length.
inline int httplib_refusal(const httplib::Request& req, std::uint64_t max_body, std::uint64_t& length) {
  // cpp-httplib has added REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR and LOCAL_PORT.
  const std::size_t fields = req.headers.size() > 4 ? req.headers.size() - 4 : 0;
  if (fields > SOCKACT_HTTPLIB_HEADER_MAX_COUNT) return 431;
  const std::size_t hosts = req.get_header_value_count("Host");
  if (req.version == "HTTP/1.1" ? hosts != 1 : hosts > 1) return 400;  // RFC 9112 §3.2
  const std::size_t te = req.get_header_value_count("Transfer-Encoding");
  const std::size_t cl = req.get_header_value_count("Content-Length");
  // A coding cpp-httplib cannot read, or two framings: the body's end is unknown.
  if (te > 1 || (te == 1 && (cl > 0 || !equals_nocase(req.get_header_value("Transfer-Encoding"), "chunked"))))
    return 400;
  // Every Content-Length a plain number, and all the same.
  for (std::size_t i = 0; i < cl; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (v.empty() || v.size() > 18) return 400;
    std::uint64_t n = 0;
    for (const char c : v) {
      if (c < '0' || c > '9') return 400;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (i > 0 && n != length) return 400;
    length = n;
  }
  return length > max_body ? 413 : 0;
}

inline void httplib_address(const sockaddr_storage& a, socklen_t len, std::string& ip, int& port) {
  if (a.ss_family == AF_INET)
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
  else if (a.ss_family == AF_INET6)
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
  else
    return;
  char host[NI_MAXHOST];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof host, nullptr, 0,
                    NI_NUMERICHOST) == 0)
    ip = host;
}

}  // namespace detail

inline httplib_server::httplib_server(thread_driver& driver, std::chrono::milliseconds accept_poll)
    : driver_(&driver) {
  set_idle_interval(accept_poll);
  set_payload_max_length(SOCKACT_HTTPLIB_PAYLOAD_MAX_LENGTH);
  set_keep_alive_max_count(SOCKACT_HTTPLIB_KEEPALIVE_MAX_COUNT);
  set_keep_alive_timeout(SOCKACT_HTTPLIB_KEEPALIVE_TIMEOUT_SECOND);
  set_read_timeout(SOCKACT_HTTPLIB_READ_TIMEOUT_SECOND, 0);
  set_write_timeout(SOCKACT_HTTPLIB_WRITE_TIMEOUT_SECOND, 0);
  new_task_queue = [this] {
    // Between two polls of the accept loop, which reads svr_sock_ next: this
    // ends it without closing or shutting anything.
    return new detail::httplib_pool(*driver_, threads_, [this] {
      if (driver_->listeners_closed()) svr_sock_ = INVALID_SOCKET;
    });
  };
  httplib::Server::set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const connection_stream* s = connection_stream::current();
    if (s != nullptr && s->refusal() != 0) {
      res.status = s->refusal();
      return HandlerResponse::Handled;
    }
    return pre_routing_ ? pre_routing_(req, res) : HandlerResponse::Unhandled;
  });
  httplib::Server::set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (post_routing_) post_routing_(req, res);
    if (connection_stream* s = connection_stream::current()) s->respond(req, res);
  });
}

inline bool httplib_server::serve(server_socket& l) {
  if (!l.info.listening || !l.fd) return false;
  const int fd = l.fd.release();
  svr_sock_ = fd;
  listen_after_bind();
  if (svr_sock_ == INVALID_SOCKET) {  // ended by the drain (new_task_queue)
    ::close(fd);                      // the driver's placeholder by now
    return true;
  }
  driver_->listener_closed(fd);  // cpp-httplib closed it after an accept() error
  return false;
}

inline bool httplib_server::process_and_close_socket(socket_t sock) {
  connection_stream(*this, sock).serve();  // then unregistered: no close from the library after this
  ::close(sock);
  return true;
}

// --- connection_stream

inline httplib_server::connection_stream::connection_stream(httplib_server& server, int fd)
    : server_(server),
      fd_(fd),
      conn_(server.driver_->track(fd)),
      pool_(detail::httplib_pool::current().pool),
      in_(16 * 1024),
      left_(std::max<std::size_t>(server.keep_alive_max_count_, 1)) {
  // Counted from accept until now by the queue's registration: drop it now
  // that the connection's own is in place.
  if (thread_connection* queued = detail::httplib_pool::current().queued) queued->reset();
  current() = this;
}

inline httplib_server::connection_stream::~connection_stream() {
  current() = nullptr;
  conn_.close();  // FIN after the last response, then the library's lingering close
  conn_.reset();
}

inline void httplib_server::connection_stream::serve() {
  for (bool first = true;; first = false) {
    if (!wait_for_request(first)) return;
    phase_ = phase::head;
    head_bytes_ = 0;
    body_.none();
    refusal_ = 0;
    received_ = decided_ = closing_ = drop_continue_ = false;
    bool closed = false;
    const bool ok = server_.process_request(*this, left_ == 1, closed,
                                            [this](httplib::Request& req) { head_received(req); });
    --left_;
    // Without respond() (a post-routing handler replaced through a base
    // reference) only a request read whole may keep the connection.
    if (!decided_ && !(phase_ != phase::head && body_.done() && !conn_->draining())) closing_ = true;
    if (!ok || closed || closing_ || dead_ || left_ == 0) return;
    conn_->response_sent(buffered());
  }
}

// Waits for the next request's first bytes (already here when pipelined).
inline bool httplib_server::connection_stream::wait_for_request(bool first) {
  using std::chrono::milliseconds;
  const auto start = std::chrono::steady_clock::now();
  const long long limit = static_cast<long long>(server_.keep_alive_timeout_sec_) * 1000;
  const long long grace = first ? 1000 : 100;  // before it makes way for waiting connections
  for (;;) {
    if (buffered() > 0) return true;
    const long long waited =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
    if (waited >= limit) return false;
    const int r = wait_for(POLLIN, std::min(limit - waited, 100LL));
    if (r < 0) return false;
    if (r > 0) return fill() > 0;  // 0: EOF, or the library closed it (idle at the drain)
    if (waited >= grace && pool_ != nullptr && pool_->claim_release()) return false;
  }
}

// Reads into the empty buffer; received() is reported under the close lock.
inline ssize_t httplib_server::connection_stream::fill() noexcept {
  const ssize_t n = conn_.read(in_.data(), in_.size());
  off_ = 0;
  end_ = n > 0 ? static_cast<std::size_t>(n) : 0;
  return n;
}

inline void httplib_server::connection_stream::head_received(httplib::Request& req) {
  phase_ = phase::body;
  conn_->headers_received();
  // An absolute-form target (RFC 9112 §3.2.2): cpp-httplib routes it as it
  // is; its path is what the routes are for.
  const std::size_t authority = req.path.find("://");
  if ((authority == 4 && ::strncasecmp(req.path.c_str(), "http", 4) == 0) ||
      (authority == 5 && ::strncasecmp(req.path.c_str(), "https", 5) == 0)) {
    const std::size_t slash = req.path.find('/', authority + 3);
    const std::string host = req.path.substr(authority + 3, slash - (authority + 3));
    if (host.empty() || host.find('@') != std::string::npos) refusal_ = 400;  // userinfo: RFC 9110 §4.2.4
    req.path = slash == std::string::npos ? "/" : req.path.substr(slash);
  }
  std::uint64_t length = 0;
  if (refusal_ == 0) refusal_ = detail::httplib_refusal(req, server_.payload_max_length_, length);
  const std::size_t te = req.get_header_value_count("Transfer-Encoding");
  const std::size_t cl = req.get_header_value_count("Content-Length");
  if (refusal_ != 0)
    body_.refuse(refusal_ == 413 ? detail::http_body::state::too_large : detail::http_body::state::invalid);
  else if (te > 0)
    body_.chunked(server_.payload_max_length_);
  else if (cl > 0)
    body_.length(length);
  else
    body_.none();  // RFC 9112 §6.3: no body (cpp-httplib would read to EOF)
  // cpp-httplib reads a body for these methods only (and DELETE only with a
  // Content-Length); for the others the request is complete now.
  const std::string& m = req.method;
  const bool reads_body =
      m == "POST" || m == "PUT" || m == "PATCH" || m == "PRI" || (m == "DELETE" && cl > 0);
  if (refusal_ != 0 || !reads_body || body_.done()) request_received();
  // cpp-httplib answers `Expect: 100-continue` with 100 in any case; not to
  // HTTP/1.0 (RFC 9110 §10.1.1), nor when the body (or a refusal) is here.
  drop_continue_ = req.get_header_value("Expect") == "100-continue" &&
                   (req.version == "HTTP/1.0" || buffered() > 0 || refusal_ != 0);
}

inline void httplib_server::connection_stream::request_received() noexcept {
  if (received_) return;
  received_ = true;
  conn_->request_received();
}

// The post-routing step: whether the connection stays open after this response.
inline void httplib_server::connection_stream::respond(const httplib::Request& req, httplib::Response& res) {
  const bool head_done = phase_ == phase::body;  // else cpp-httplib refused the head (400, 414)
  decided_ = true;
  phase_ = phase::response;
  request_received();
  if (body_.current() == detail::http_body::state::too_large && res.status == 400)
    res.status = 413;  // a chunked body over the limit: cpp-httplib only knows it failed
  const std::string asked = req.get_header_value("Connection");
  bool keep = head_done && !closing_ && !dead_ && refusal_ == 0 && body_.done() && left_ > 1 &&
              !detail::equals_nocase(res.get_header_value("Connection"), "close") &&
              !detail::equals_nocase(asked, "close") &&
              (req.version != "HTTP/1.0" || detail::equals_nocase(asked, "keep-alive")) &&
              conn_->keep_alive(buffered());
  // Connections wait for a thread: make way, unless the next request is here.
  if (keep && buffered() == 0 && pool_ != nullptr && pool_->claim_release()) keep = false;
  if (keep) return;
  closing_ = true;
  res.headers.erase("Connection");
  res.headers.erase("Keep-Alive");
  res.set_header("Connection", "close");
}

inline bool httplib_server::connection_stream::is_readable() const {
  return buffered() > 0 || wait_for(POLLIN, read_timeout_ms()) > 0;
}

inline bool httplib_server::connection_stream::is_writable() const {
  return !dead_ && wait_for(POLLOUT, write_timeout_ms()) > 0;  // not at EOF: a half-closed client reads on
}

inline ssize_t httplib_server::connection_stream::read(char* ptr, size_t size) {
  if (dead_) return -1;
  if (phase_ == phase::body && body_.current() != detail::http_body::state::reading)
    return body_.done() ? 0 : -1;  // past the body's end (none: RFC 9112 §6.3), or refused
  if (buffered() == 0) {
    const int r = wait_for(POLLIN, read_timeout_ms());
    if (r == 0) {
      reply_and_close(http_timeout_reply);
      return -1;
    }
    if (r < 0) return -1;
    const ssize_t n = fill();
    if (n <= 0) return n;
  }
  std::size_t n = std::min(size, buffered());
  if (phase_ == phase::head) {
    if (head_bytes_ + n > SOCKACT_HTTPLIB_HEAD_MAX_LENGTH) {
      reply_and_close(
          "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return -1;
    }
    head_bytes_ += n;
  } else if (phase_ == phase::body) {
    n = body_.take(in_.data() + off_, n);
    if (body_.done() || body_.failed()) request_received();
    if (n == 0) return -1;  // the body broke here
  }
  std::memcpy(ptr, in_.data() + off_, n);
  off_ += n;
  return static_cast<ssize_t>(n);
}

inline ssize_t httplib_server::connection_stream::write(const char* ptr, size_t size) {
  if (drop_continue_ && phase_ == phase::body) {
    drop_continue_ = false;
    if (size >= 13 && std::memcmp(ptr, "HTTP/1.1 100 ", 13) == 0) return static_cast<ssize_t>(size);
  }
  if (dead_ || !send_all(ptr, size)) {
    dead_ = true;
    return -1;
  }
  return static_cast<ssize_t>(size);
}

inline void httplib_server::connection_stream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
  if (a.ss_family == AF_UNIX) {  // cpp-httplib gives the peer's pid as the port
    ucred cred{};
    socklen_t n = sizeof cred;
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0) port = cred.pid;
    return;
  }
  detail::httplib_address(a, len, ip, port);
}

inline void httplib_server::connection_stream::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    detail::httplib_address(a, len, ip, port);
}

inline bool httplib_server::connection_stream::send_all(const char* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_for(POLLOUT, write_timeout_ms()) <= 0) return false;
    } else if (!(w < 0 && errno == EINTR)) {
      return false;
    }
  }
  return true;
}

// A reply of the server's own (408, 431): cpp-httplib's later writes are dropped.
inline void httplib_server::connection_stream::reply_and_close(const char* reply) noexcept {
  if (!dead_) (void)send_all(reply, std::strlen(reply));
  dead_ = closing_ = true;
  request_received();
}

// poll(2) for one fd, EINTR retried within `ms`: > 0 ready, 0 timed out, < 0 error.
inline int httplib_server::connection_stream::wait_for(short events, long long ms) const noexcept {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    const long long left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())
            .count();
    pollfd p{fd_, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::clamp(left, 0LL, 1LL << 30)));
    if (r >= 0 || errno != EINTR) return r;
  }
}

}  // namespace sockact

#endif  // SOCKACT_HTTPLIB_HPP
