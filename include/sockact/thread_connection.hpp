// SPDX-License-Identifier: MIT
#ifndef SOCKACT_THREAD_CONNECTION_HPP
#define SOCKACT_THREAD_CONNECTION_HPP

// A connection that a thread serves with blocking calls, for thread_driver
// (<sockact/thread_driver.hpp>, which includes this): thread_connection is
// its registration, thread_socket the fd and its registration in one object.
//
// Connections. track(fd) registers a connection whose thread blocks in
// conn.read() (serve() tracks the connections it accepts the same way). When
// the activation closes it (idle at the drain, a request deadline,
// SHUTDOWN_TIMEOUT), it sends its FIN (shutdown(SHUT_WR)) and lingers: what
// the client still sends is read and discarded until it closes (at most the
// linger time) while conn.read() returns 0, and only then is the read side
// shut, which wakes a read still blocked. A request that crosses the FIN of
// an idle close then gets a FIN, not a reset (HTTP clients retry a request
// that got a FIN on a reused connection), and a connection the linger holds
// keeps an idle drain open, so a new client is served by this process rather
// than a cold start. conn.read() takes bytes and reports them under the lock
// the closes take: with read(2) and then received(), a close decided between
// the two would find no unread bytes and no request, and drop the request
// just read. The close runs on the driver's thread under a lock that the
// handle's destruction takes too: destroy the handle before closing the fd,
// and the close never reaches a number another connection reused.

#include <sockact/activation.hpp>
#include <sockact/unique_fd.hpp>

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace sockact {

class thread_driver;

namespace detail {

// Serialises a connection's closes with the destruction of its handle.
struct thread_guard {
  std::mutex mutex;
  bool gone = false;       // the handle was destroyed: the fd may be closed or reused
  bool app_close = false;  // connection::close() from the server: keep the lingering close
  bool closed = false;     // closed by the library, lingering: read() returns 0
};

struct guarded_post {
  std::shared_ptr<thread_guard> guard;
  template <class F>
  void operator()(F&& f) const {
    std::lock_guard<std::mutex> lock(guard->mutex);
    if (!guard->gone) f();
  }
};

// A connection's close function, under its guard's lock. The library's
// close leaves the read side open for the linger (read() returns 0
// meanwhile); lingered() shuts it after, which wakes a thread blocked in read().
template <class Close>
struct thread_closer {
  thread_guard* guard;  // the guarded post keeps it alive while this runs
  int fd;
  Close close;
  void operator()() {
    if (!guard->app_close) guard->closed = true;
    close();
  }
  void lingered() {
    if (fd >= 0 && !guard->app_close) ::shutdown(fd, SHUT_RD);  // a connection, never a listener
  }
};

}  // namespace detail

/// A connection served by a thread of its own: activation::track() behind a
/// lock, made by thread_driver::track(). Move-only; `->` reaches the
/// connection calls (received(), request_received(), response_sent(),
/// keep_alive(), ...). Destroy it before closing the fd.
class thread_connection {
 public:
  thread_connection() noexcept = default;
  thread_connection(thread_connection&&) noexcept = default;
  thread_connection& operator=(thread_connection&& o) noexcept {
    if (this != &o) {
      reset();
      guard_ = std::move(o.guard_);
      conn_ = std::move(o.conn_);
    }
    return *this;
  }
  thread_connection(const thread_connection&) = delete;
  thread_connection& operator=(const thread_connection&) = delete;
  ~thread_connection() { reset(); }

  connection* operator->() noexcept { return &conn_; }
  const connection* operator->() const noexcept { return &conn_; }
  connection& get() noexcept { return conn_; }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

  /// The server is done with the connection (after its last response):
  /// shutdown(SHUT_WR) and the library's lingering close. Then destroy the
  /// handle and close the fd as usual.
  void close() {
    if (!guard_) return;
    {
      std::lock_guard<std::mutex> lock(guard_->mutex);
      guard_->app_close = true;
    }
    conn_.close();
  }

  /// read(2) for the connection: blocks until bytes arrive (or EOF), and
  /// reports them (received()) under the lock that the library's closes
  /// take, so a drain never closes a connection whose request a read has
  /// already taken. Returns the count, 0 at EOF or once the library closed
  /// the connection, -1 with errno on error. One reading thread at a time.
  ssize_t read(void* buf, std::size_t size) noexcept {
    const int fd = conn_.fd();
    if (!guard_ || fd < 0) {
      errno = EBADF;
      return -1;
    }
    for (;;) {
      {
        const std::lock_guard<std::mutex> lock(guard_->mutex);
        if (guard_->closed) return 0;  // the library's linger reads what still comes
        const ssize_t n = ::recv(fd, buf, size, MSG_DONTWAIT);
        if (n > 0) conn_.received(static_cast<std::size_t>(n));
        if (n >= 0) return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
      }
      pollfd p{fd, POLLIN, 0};  // wait without taking anything
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
    }
  }

  /// Unregisters the connection (idempotent); no close from the library
  /// starts after this returns, and one that runs now is waited for.
  void reset() noexcept {
    if (!guard_) return;
    {
      std::lock_guard<std::mutex> lock(guard_->mutex);
      guard_->gone = true;
    }
    conn_ = connection();
    guard_.reset();
  }

 private:
  friend class thread_driver;
  std::shared_ptr<detail::thread_guard> guard_;
  connection conn_;
};

/// A connection's socket for the thread that serves it, made by
/// thread_driver::serve(): the fd and its registration in one object, which
/// unregisters before it closes the fd. Reads and writes block. The
/// library's closes (idle at the drain, a request deadline, SHUTDOWN_TIMEOUT)
/// linger: FIN, then read() returns 0 while what the client still sends is
/// read and discarded (see the top of this file). Move-only.
class thread_socket {
 public:
  thread_socket() noexcept = default;
  thread_socket(thread_socket&&) noexcept = default;
  thread_socket& operator=(thread_socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::move(o.fd_);
      conn_ = std::move(o.conn_);
    }
    return *this;
  }
  thread_socket(const thread_socket&) = delete;
  thread_socket& operator=(const thread_socket&) = delete;
  ~thread_socket() { reset(); }

  int fd() const noexcept { return fd_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  /// The registration: `->` reaches request_received(), response_sent(), keep_alive(), ...
  thread_connection& connection() noexcept { return conn_; }

  /// Blocks until bytes arrive, and reports them (thread_connection::read()).
  /// Returns the count; 0 at EOF, or once the library closed the connection;
  /// -1 with errno on error.
  ssize_t read(void* buf, std::size_t size) noexcept { return conn_.read(buf, size); }

  /// Blocks until some of the bytes are written; never raises SIGPIPE.
  /// Returns the count written, or -1 with errno (EPIPE once the connection
  /// was closed, ECONNRESET when the client reset it).
  ssize_t write(const void* buf, std::size_t size) noexcept {
    iovec one{const_cast<void*>(buf), size};
    return write(&one, 1);
  }
  /// write() from several buffers at once (sendmsg(2)); at most IOV_MAX.
  ssize_t write(const iovec* bufs, std::size_t count) noexcept {
    if (!fd_) {
      errno = EBADF;
      return -1;
    }
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(bufs);
    m.msg_iovlen = count;
    for (;;) {
      const ssize_t n = ::sendmsg(fd_.get(), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      pollfd p{fd_.get(), POLLOUT, 0};  // SEND_TIMEOUT resets a client that never reads: this wakes
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
    }
  }

  /// The server is done with the connection (after its last response):
  /// FIN and the library's lingering close (thread_connection::close()).
  /// The fd stays open until reset() or destruction.
  void close() { conn_.close(); }

  /// Unregisters the connection, then closes the fd (idempotent).
  void reset() noexcept {
    conn_.reset();
    fd_.reset();
  }

 private:
  friend class thread_driver;
  thread_socket(unique_fd fd, thread_connection conn) noexcept : fd_(std::move(fd)), conn_(std::move(conn)) {}
  unique_fd fd_;
  thread_connection conn_;  // destroyed first: unregistered before the fd closes
};

}  // namespace sockact

#endif  // SOCKACT_THREAD_CONNECTION_HPP
