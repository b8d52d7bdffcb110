// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_DRIVER_HPP
#define SOCKACT_ASIO_DRIVER_HPP

// sockact::asio_driver: an activation on an io_context. Part of
// <sockact/asio.hpp>, which describes the adapter.

#include <sockact/activation.hpp>
#include <sockact/asio_adopt.hpp>
#include <sockact/asio_stream.hpp>
#include <sockact/detail/accept_core.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/listen.hpp>
#include <sockact/unique_fd.hpp>

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
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sockact {
inline namespace SOCKACT_ASIO_NAMESPACE {

namespace asio_detail {

inline bool is_inet(int family) noexcept {
  return family == AF_INET || family == AF_INET6;
}

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
                          sockact::detail::fd_label(l.fd.get(), l.name) + " is " +
                              sockact::detail::what_it_is(l.info) +
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
        if (self->stop_signalled()) return;
        self->absorb_signal_ = true;
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
          if (!self->accepting() || ec == asio_ns::error::operation_aborted) return;
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
                [&] { return self->accepting(); }, name, log,
                SOCK_CLOEXEC);  // blocking, as Asio's accept() makes it
          if (r.next == sockact::detail::accept_next::stop || !self->accepting()) return;
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
    socket.assign(protocol_traits<Protocol>::make(from.info), fd.get(), aec);
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
      if (!wec && self->accepting()) self->accept(e);
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

  // Idempotent. The acceptors (none with Accept=yes) are the driver's only
  // record of accepting; whether the server drains is the lifecycle's.
  void stop_accepting() {
    close_all(tcp_);
    close_all(unix_);
    act_.close_listeners();
  }

  bool accepting() const noexcept { return !tcp_.empty() || !unix_.empty(); }

  // Whether SIGTERM/SIGINT (or an outside stop, standing for one) has begun
  // or continued a drain: the lifecycle's reason says so.
  bool stop_signalled() const noexcept {
    const std::optional<stop_reason> why = act_.state().reason();
    return why && *why != stop_reason::idle;
  }

  void wait_for_signal() {
    signals_.async_wait([self = this->shared_from_this()](const asio_error_code& ec, int signo) {
      if (ec || self->finishing_) return;
      if (self->absorb_signal_)
        self->absorb_signal_ = false;  // stopped_from_outside() began this drain, for this signal
      else
        self->apply(self->act_.on_signal(signo));
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
    if (r.stop_accepting) stop_accepting();
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
  bool armed_ = false, single_ = false, finishing_ = false, halted_ = false;
  sockact::detail::accept_core accept_;
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
    auto& ctx = asio_ns::query(executor, asio_ns::execution::context);
    asio_ns::execution_context& context = ctx;
    service_ = &asio_ns::use_service<asio_detail::activation_service>(context);
    service_->act.store(&act, std::memory_order_release);
    act_ = &act;
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

}  // namespace SOCKACT_ASIO_NAMESPACE
}  // namespace sockact

#endif  // SOCKACT_ASIO_DRIVER_HPP
