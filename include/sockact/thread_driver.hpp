// SPDX-License-Identifier: MIT
#ifndef SOCKACT_THREAD_DRIVER_HPP
#define SOCKACT_THREAD_DRIVER_HPP

// The lifecycle for blocking, thread-per-connection servers: a thread of its
// own runs the idle, request and drain deadlines, catches SIGTERM and SIGINT,
// and sends READY=1, STOPPING=1 and watchdog pings. Linux (signalfd, eventfd).
//
//   sockact::activation act = sockact::activate();
//   sockact::thread_driver driver(act);   // before starting threads: it blocks the signals
//   ... accept loops that poll their listener (see "Stopping" below), and per connection:
//   sockact::thread_connection conn = driver.track(fd);
//   n = conn.read(buf, size);              // read(2) that the drain cannot race; 0 when closed
//   conn->request_received(); ... conn->response_sent(); if (!conn->keep_alive()) conn.close();
//   driver.wait();                        // the drain is over
//
// Stopping. When the drain begins the driver closes the listeners, never with
// shutdown(2): it puts a placeholder over each listening fd with dup3(2), an
// eventfd that never becomes readable. The manager's copy of the socket keeps
// listening and queueing clients for the next start; the fd number stays
// taken, so a thread still polling it sees nothing more (and accept() on it
// fails with ENOTSOCK) instead of finding another file that reused the
// number. A thread blocked in accept() is not woken by that (nor by close(2)
// on Linux): accept loops poll their listener with a timeout and return once
// listeners_closed() is true (or when `on_stop` tells them); then the owner
// of the fd closes it (the activation, or whoever took it from there).
//
// Connections. track(fd) registers a connection whose thread blocks in
// conn.read(): when the activation closes it (idle at the drain, a request
// deadline, SHUTDOWN_TIMEOUT), it sends its FIN (shutdown(SHUT_WR)) and then
// shuts the connection's read side, which makes the blocked read return 0.
// conn.read() takes bytes and reports them under the lock the closes take:
// with read(2) and then received(), a close decided between the two would
// find no unread bytes and no request, and drop the request just read.
// Linux answers data that arrives after both with a reset, so this happens
// only for closes the library decides (the connection had no unread bytes, or
// its time is up); conn.close() after a last response keeps the lingering
// close. The close runs on the driver's thread under a lock that the handle's
// destruction takes too: destroy the handle before closing the fd, and the
// close never reaches a number another connection reused.

#include <sockact/activation.hpp>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sockact {

namespace detail {

// Serialises a connection's closes with the destruction of its handle.
struct thread_guard {
  std::mutex mutex;
  bool gone = false;       // the handle was destroyed: the fd may be closed or reused
  bool app_close = false;  // connection::close() from the server: keep the lingering close
};

struct guarded_post {
  std::shared_ptr<thread_guard> guard;
  template <class F>
  void operator()(F&& f) const {
    std::lock_guard<std::mutex> lock(guard->mutex);
    if (!guard->gone) f();
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
      pollfd p{fd, POLLIN, 0};  // wait without taking anything
      if (::poll(&p, 1, -1) < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      const std::lock_guard<std::mutex> lock(guard_->mutex);
      const ssize_t n = ::recv(fd, buf, size, MSG_DONTWAIT);
      if (n > 0) conn_.received(static_cast<std::size_t>(n));
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
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

/// Runs an activation's lifecycle on a thread of its own; see the top of this file.
class thread_driver {
 public:
  using clock = activation::clock;

  /// Blocks SIGTERM and SIGINT in the calling thread (make the driver before
  /// starting other threads: they inherit the mask, so only the driver's
  /// signalfd receives them), starts the driver's thread, which sends READY=1.
  /// @param on_stop called once on the driver's thread when the server must
  ///        stop accepting, right after the listeners were closed: tell the
  ///        accept loops to return (never with shutdown(2) on a listener).
  /// @param ec set when signalfd, eventfd or the thread fail.
  thread_driver(activation& act, std::function<void()> on_stop, std::error_code& ec)
      : act_(&act), on_stop_(std::move(on_stop)) {
    start(ec);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error when the driver cannot start.
  explicit thread_driver(activation& act, std::function<void()> on_stop = {})
      : act_(&act), on_stop_(std::move(on_stop)) {
    std::error_code ec;
    start(ec);
    if (ec) detail::throw_error(ec, "sockact::thread_driver");
  }
#endif
  thread_driver(const thread_driver&) = delete;
  thread_driver& operator=(const thread_driver&) = delete;

  /// Leaves the driver's loop (without draining, if it had not finished) and joins its thread.
  ~thread_driver() {
    quit_.store(true, std::memory_order_release);
    wake();
    if (thread_.joinable()) thread_.join();
  }

  /// Blocks until the drain is over (every tracked connection closed, or
  /// SHUTDOWN_TIMEOUT, or a second signal) and the library's lingering
  /// closes are done. False when the drain was cut with connections still
  /// registered: those with an fd were closed under their threads, which
  /// return soon; counted() ones (and track(-1)) the library cannot close:
  /// end the program without waiting for their threads (std::_Exit(0); the
  /// kernel closes their sockets).
  bool wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return done_; });
    return !cut_;
  }
  /// wait() for at most `timeout`; true when the drain is over.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return done_cv_.wait_for(lock, timeout, [this] { return done_; });
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }

  /// The listeners are closed (the drain began): accept loops return now.
  /// What they did to the fds before happens before what they do after
  /// seeing true (they may close them).
  bool listeners_closed() const noexcept {
    return listeners_closed_.load(std::memory_order_acquire);
  }

  /// The server is draining: answer what was received, with `Connection: close`.
  /// The configuration of the activation it drives.
  const activation_config& config() const noexcept {
    return act_->config();
  }

  bool draining() const noexcept {
    return act_->draining();
  }

  /// Begins the drain as SIGTERM would (a second call: as a second signal).
  /// Any thread; returns at once.
  void stop() noexcept {
    stops_.fetch_add(1, std::memory_order_acq_rel);
    wake();
  }

  /// A listening fd was closed by the server itself before the drain (a
  /// framework's accept loop that gave up on an error): the driver leaves
  /// that number alone at the drain, since it may belong to another file by then.
  void listener_closed(int fd) {
    std::lock_guard<std::mutex> lock(listen_mutex_);
    for (int& l : listening_)
      if (l == fd) l = -1;
  }

  /// Registers a connection that a thread serves with blocking reads. When
  /// the activation closes it, `close` runs on the driver's thread (after
  /// shutdown(SHUT_WR)); the default shuts the read side so that the
  /// blocked read() returns 0. `fd` may be -1 for a framework that hides its
  /// sockets: the connection then counts for the idle timeout and the drain,
  /// but the library cannot close it (the process ends at SHUTDOWN_TIMEOUT).
  thread_connection track(int fd) {
    return track(fd, [] {});
  }
  /// For a framework that runs each connection as one task and hides its
  /// socket (cpp-httplib's TaskQueue): wraps `task` so that the connection
  /// counts, busy, from now until the task returns. The server does not go
  /// idle while it runs, and the drain waits for it; the library cannot close
  /// it, so at SHUTDOWN_TIMEOUT the program ends instead (see wait()).
  template <class Task>
  std::function<void()> counted(Task task) {
    auto conn = std::make_shared<thread_connection>(track(-1));
    (*conn)->request_received();  // no request clocks: the framework keeps its own timeouts
    wake();                       // the idle deadline computed before this is stale now
    return [task = std::move(task), conn]() mutable {
      task();
      conn->reset();
    };
  }

  /// track() with an extra close step of the server's own (a flag, a cancel).
  template <class Close>
  thread_connection track(int fd, Close close) {
    thread_connection c;
    c.guard_ = std::make_shared<detail::thread_guard>();
    detail::thread_guard* g = c.guard_.get();  // the guarded post keeps it alive while the close runs
    c.conn_ = act_->track(
        fd,
        [fd, g, close]() mutable {
          if (fd >= 0 && !g->app_close) ::shutdown(fd, SHUT_RD);  // a connection, never a listener
          close();
        },
        detail::guarded_post{c.guard_});
    wake();  // look at the connections (and the idle deadline) again
    return c;
  }

 private:
  void start(std::error_code& ec) {
    ec.clear();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (err != 0) {
      ec.assign(err, std::generic_category());
      return;
    }
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    // Made now, so that closing the listeners cannot fail for lack of fds later.
    placeholder_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!signals_ || !wake_ || !placeholder_) {
      ec.assign(errno, std::generic_category());
      return;
    }
    for (const server_socket& l : act_->sockets())
      if (l.info.listening && l.fd) listening_.push_back(l.fd.get());
#if SOCKACT_HAS_EXCEPTIONS
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      ec = e.code();
    }
#else
    thread_ = std::thread([this] { run(); });
#endif
  }

  void wake() noexcept {
    if (!wake_) return;
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }

  void run() {
    act_->ready();
    while (!quit_.load(std::memory_order_acquire) && !finished_) {
      const clock::time_point now = clock::now();
      const clock::time_point due = act_->next_deadline(now);
      int timeout = -1;
      if (due != clock::time_point::max()) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(due - now).count();
        timeout = ms < 0 ? 0 : ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
      }
      pollfd fds[2] = {{signals_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      const int n = ::poll(fds, 2, timeout);
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        signalfd_siginfo info;
        while (!finished_ && ::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info))
          apply(act_->on_signal(static_cast<int>(info.ssi_signo)));
      }
      if (n > 0 && (fds[1].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
      }
      for (int s = stops_.exchange(0, std::memory_order_acq_rel); s > 0 && !finished_; --s)
        apply(act_->on_signal(SIGTERM));
      if (!finished_) apply(act_->on_timer());
    }
    if (finished_) act_->finish();
    const bool cut = act_->connections() > 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      cut_ = cut;
    }
    done_cv_.notify_all();
  }

  void apply(const activation::step_result& r) {
    if (r.stop_accepting && !stopped_) {
      stopped_ = true;
      // Close the listeners in place: dup3 drops this process's reference to
      // each listening socket (the manager keeps its own; no shutdown(2)) and
      // keeps the number taken until the activation closes it.
      {
        std::lock_guard<std::mutex> lock(listen_mutex_);
        for (const int fd : listening_)
          if (fd >= 0) ::dup3(placeholder_.get(), fd, O_CLOEXEC);
      }
      listeners_closed_.store(true, std::memory_order_release);  // after the dup3s: see listeners_closed()
      if (on_stop_) on_stop_();
    }
    if (r.finished) finished_ = true;
  }

  activation* act_;
  std::function<void()> on_stop_;
  unique_fd signals_, wake_, placeholder_;
  std::mutex listen_mutex_;
  std::vector<int> listening_;  // the listening fd numbers, taken at construction
  std::thread thread_;
  std::atomic<bool> quit_{false};
  std::atomic<bool> listeners_closed_{false};
  std::atomic<int> stops_{0};
  bool stopped_ = false, finished_ = false;  // the driver's thread only
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false, cut_ = false;
};

}  // namespace sockact

#endif  // SOCKACT_THREAD_DRIVER_HPP
