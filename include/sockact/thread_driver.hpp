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
// Or let the driver accept: serve() polls every listening socket, tracks
// each connection as it accepts it, and runs the server's function for it on
// a thread of its own, with a thread_socket (the fd and its registration):
//   if (!driver.serve([](sockact::thread_socket s, const sockact::server_socket& from) {
//         n = s.read(buf, size); ... s.write(out, len); s.connection()->response_sent(); s.close();
//       }))
//     std::_Exit(0);                      // the drain was cut: see serve()
// A thread blocked in accept() is not woken when the drain closes its
// listener (and would hang the exit): with serve(), nothing blocks in accept().
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
// Connections: what track() and serve() register, and how the library closes
// them, is told in <sockact/thread_connection.hpp>.

#include <sockact/activation.hpp>
#include <sockact/detail/accept_core.hpp>
#include <sockact/posix.hpp>
#include <sockact/thread_connection.hpp>
#include <sockact/unique_fd.hpp>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace sockact {

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

  /// The configuration of the activation it drives.
  const activation_config& config() const noexcept {
    return act_->config();
  }

  /// The server is draining: answer what was received, with `Connection: close`.
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
  /// shutdown(SHUT_WR)); then conn.read() returns 0, and the read side is
  /// shut once the linger is over (<sockact/thread_connection.hpp>), which wakes a
  /// blocked read. `fd` may be -1 for a framework that hides its
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
    c.conn_ = act_->track(fd, detail::thread_closer<Close>{c.guard_.get(), fd, std::move(close)},
                          detail::guarded_post{c.guard_});
    wake();  // look at the connections (and the idle deadline) again
    return c;
  }

  /// Accepts on every listening socket of the activation and serves each
  /// connection on a thread of its own, until the drain is over:
  ///   - polls the listeners (and nothing blocks in accept(), so the drain
  ///     never waits for a thread it cannot wake); keeps accepting through an
  ///     idle drain, whose listeners stay open (a connection then resumes
  ///     serving), and stops once listeners_closed();
  ///   - tracks each connection as it accepts it, in step with the driver's
  ///     decisions: a connection accepted is never lost to a drain that
  ///     decided to end without it;
  ///   - calls `on_connection(thread_socket&&, const server_socket& from)` (or
  ///     `on_connection(thread_socket&&)`) on a new thread per connection
  ///     (the threads inherit the signal mask: make the driver first);
  ///     several run at once. The parameter may be any type made from a
  ///     thread_socket&& (sockact::sync_stream for Beast and Asio's sync
  ///     calls). An exception that leaves it ends the program, as with std::thread;
  ///   - backs off for 100 ms when out of fds (EMFILE...): the clients wait
  ///     in the kernel's queue;
  ///   - Accept=yes connections passed by the manager are served the same
  ///     way; with no listening socket, the drain begins once they are done.
  /// Call it once, on a thread of the server's (main()).
  /// @return true when the drain is over and every connection's thread has
  ///         returned. False as wait(): the drain was cut with connections
  ///         still open (their threads may still run): end the program at once
  ///         (std::_Exit(0)).
  /// @code
  ///   sockact::thread_driver driver(act);
  ///   if (!driver.serve([](sockact::thread_socket s, const sockact::server_socket& from) { session(s); }))
  ///     std::_Exit(0);
  /// @endcode
  template <class OnConnection>
  bool serve(OnConnection on_connection);

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
    stopped_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!signals_ || !wake_ || !placeholder_ || !stopped_fd_) {
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
    post(wake_);
  }
  static void post(const unique_fd& event) noexcept {  // makes an eventfd readable
    if (!event) return;
    const std::uint64_t one = 1;
    (void)!::write(event.get(), &one, sizeof one);
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
          step([&] { return act_->on_signal(static_cast<int>(info.ssi_signo)); });
      }
      if (n > 0 && (fds[1].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
      }
      for (int s = stops_.exchange(0, std::memory_order_acq_rel); s > 0 && !finished_; --s)
        step([&] { return act_->on_signal(SIGTERM); });
      if (!finished_) step([&] { return act_->on_timer(); });
    }
    // Every linger ends: the read sides are shut, which wakes the threads still blocked in read().
    if (finished_)
      act_->finish();
    else
      detail::end_lingering(*act_);
    const bool cut = act_->connections() > 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      cut_ = cut;
    }
    done_cv_.notify_all();
  }

  // One decision of the activation. Under listen_mutex_, which serve() holds
  // from accept() to track(): a connection accepted is either registered
  // before the decision (and counted by it) or finds the listener closed.
  template <class Decide>
  void step(Decide decide) {
    bool stop_now = false;
    {
      const std::lock_guard<std::mutex> lock(listen_mutex_);
      const activation::step_result r = decide();
      if (r.stop_accepting && !stopped_) {
        stopped_ = stop_now = true;
        // Close the listeners in place: dup3 drops this process's reference to
        // each listening socket (the manager keeps its own; no shutdown(2)) and
        // keeps the number taken until the activation closes it.
        for (const int fd : listening_)
          if (fd >= 0) ::dup3(placeholder_.get(), fd, O_CLOEXEC);
        listeners_closed_.store(true, std::memory_order_release);  // after the dup3s: see listeners_closed()
      }
      if (r.finished) finished_ = true;
    }
    if (!stop_now) return;
    post(stopped_fd_);  // serve() returns from its poll
    if (on_stop_) on_stop_();
  }

  // serve(): its connections' threads, and what they share with it.
  template <class OnConnection>
  struct serve_state {
    explicit serve_state(OnConnection f) : on_connection(std::move(f)) {}
    OnConnection on_connection;
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t running = 0;
  };

  template <class State>
  void start_thread(const std::shared_ptr<State>& state, thread_socket&& socket, const server_socket& from) {
    {
      const std::lock_guard<std::mutex> lock(state->mutex);
      ++state->running;
    }
    auto body = [state, socket = std::move(socket), from = &from]() mutable {
      {
        thread_socket s = std::move(socket);
        using handler = decltype(state->on_connection);
        if constexpr (std::is_invocable<handler&, thread_socket&&, const server_socket&>::value) {
          state->on_connection(std::move(s), *from);
        } else {
          (void)from;
          state->on_connection(std::move(s));
        }
      }  // unregistered and closed here, if the handler kept it
      const std::lock_guard<std::mutex> lock(state->mutex);
      --state->running;
      state->cv.notify_all();
    };
#if SOCKACT_HAS_EXCEPTIONS
    try {
      std::thread(std::move(body)).detach();
    } catch (const std::system_error& e) {
      {
        const std::lock_guard<std::mutex> lock(state->mutex);
        --state->running;
      }
      act_->log(std::string("cannot start a thread for a connection: ") + e.what() + "; closing it");
    }
#else
    std::thread(std::move(body)).detach();
#endif
  }

  activation* act_;
  std::function<void()> on_stop_;
  unique_fd signals_, wake_, placeholder_;
  unique_fd stopped_fd_;  // readable once the listeners are closed (serve()'s poll)
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

template <class OnConnection>
bool thread_driver::serve(OnConnection on_connection) {
  static_assert(std::is_invocable<OnConnection&, thread_socket&&, const server_socket&>::value ||
                    std::is_invocable<OnConnection&, thread_socket&&>::value,
                "thread_driver::serve(): the connection handler must take (thread_socket&&[, const "
                "sockact::server_socket&]), or a type made from a thread_socket&& (sockact::sync_stream)");
  auto state = std::make_shared<serve_state<OnConnection>>(std::move(on_connection));
  std::vector<pollfd> fds{{stopped_fd_.get(), POLLIN, 0}};
  std::vector<const server_socket*> from{nullptr};
  std::vector<clock::time_point> paused{clock::time_point()};
  for (server_socket& l : act_->sockets()) {
    if (!l.fd) continue;
    if (l.info.listening) {
      std::error_code ec;  // accept() must not block: poll() said ready, the client may be gone since
      if (!set_nonblocking(l.fd.get(), true, ec))
        act_->log("cannot make " + l.name + " non-blocking: " + ec.message());
      fds.push_back({l.fd.get(), POLLIN, 0});
      from.push_back(&l);
      paused.push_back(clock::time_point());
    } else {  // Accept=yes: the one connection the manager accepted
      unique_fd fd = std::move(l.fd);
      thread_connection conn = track(fd.get());
      start_thread(state, thread_socket(std::move(fd), std::move(conn)), l);
    }
  }
  detail::accept_core accept;
  while (fds.size() > 1 && !listeners_closed()) {
    clock::time_point resume = clock::time_point::max();
    const clock::time_point now = clock::now();
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].events == 0 && now >= paused[i]) fds[i].events = POLLIN;
      if (fds[i].events == 0) resume = std::min(resume, paused[i]);
    }
    int timeout = -1;
    if (resume != clock::time_point::max())
      timeout = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(resume - now).count()) + 1;
    if (::poll(fds.data(), fds.size(), timeout) < 0) continue;  // EINTR
    for (std::size_t i = 1; i < fds.size() && !listeners_closed(); ++i) {
      if (fds[i].events == 0 || (fds[i].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) == 0) continue;
      const detail::accept_outcome r = accept.burst(
          [&]() -> std::optional<accept_result> {
            accept_result a;
            thread_connection conn;
            {
              const std::lock_guard<std::mutex> lock(listen_mutex_);
              if (listeners_closed()) return std::nullopt;  // the fd is the placeholder now
              a = accept_connection(fds[i].fd);
              if (a.status == accept_status::accepted) conn = track(a.fd.get());
            }
            if (a.status == accept_status::accepted)
              start_thread(state, thread_socket(std::move(a.fd), std::move(conn)), *from[i]);
            return std::optional<accept_result>(std::move(a));
          },
          from[i]->name, [&](const std::string& line) { act_->log(line); });
      if (r.next == detail::accept_next::back_off) {  // the clients wait in the kernel's queue
        fds[i].events = 0;
        paused[i] = clock::now() + detail::accept_back_off;
      }
    }
  }
  const auto threads_returned = [&] {
    std::unique_lock<std::mutex> lock(state->mutex);
    state->cv.wait(lock, [&] { return state->running == 0; });
  };
  if (fds.size() == 1) {  // Accept=yes only: done when its connections are
    threads_returned();
    if (!draining()) stop();
  }
  if (!wait()) return false;
  threads_returned();
  return true;
}

}  // namespace sockact

#endif  // SOCKACT_THREAD_DRIVER_HPP
