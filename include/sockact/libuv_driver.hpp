// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_DRIVER_HPP
#define SOCKACT_LIBUV_DRIVER_HPP

// sockact::libuv_driver: an activation on a uv loop, and libuv_accepted, the
// connection it hands to the program. Part of <sockact/libuv.hpp>, which
// describes the adapter.

#include <sockact/detail/accept_core.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/libuv_adopt.hpp>
#include <sockact/posix.hpp>
#include <sockact/unique_fd.hpp>

#include <uv.h>

#include <signal.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

class activation;
class libuv_connection;
struct server_socket;

namespace detail {

// Registers an open stream handle with the activation and returns its
// connection; the activation's closes uv_close() it with `on_closed`.
template <class Activation, class Handle>
auto libuv_track(Activation& act, Handle* handle, uv_close_cb on_closed) {
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

class libuv_driver_core;
template <class Activation, class OnConnection>
class libuv_driver_impl;

}  // namespace detail

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

  /// adopt(), then registers the handle with the activation: opens `handle`
  /// (uv_tcp_t, uv_pipe_t or libuv_stream) on the connection and returns its
  /// sockact::connection. When the drain or a request deadline closes the
  /// connection, or its close() is called, the handle is uv_close()d with
  /// `on_closed`. Keep the connection in the object that holds the handle and
  /// destroy both in `on_closed` (or later); the activation never touches a
  /// handle that is closing (uv_close() called by the program itself).
  /// After the last response, close with the connection's close() (FIN, then
  /// the library lingers so that the client sees no reset) rather than uv_close().
  /// @param ec as adopt(); then the returned connection is empty and the
  ///        handle not initialized.
  template <class Handle, class Activation = activation>
  auto open(Handle* handle, uv_close_cb on_closed, std::error_code& ec) {
    Activation& act = *static_cast<Activation*>(act_);
    decltype(detail::libuv_track(act, handle, on_closed)) conn;
    if (!adopt(loop_, handle, std::move(fd_), ec)) return conn;
    conn = detail::libuv_track(act, handle, on_closed);
    return conn;
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as adopt().
  template <class Handle, class Activation = activation>
  auto open(Handle* handle, uv_close_cb on_closed = nullptr) {
    std::error_code ec;
    auto conn = open<Handle, Activation>(handle, on_closed, ec);
    if (ec) detail::throw_error(ec, "sockact::libuv_accepted::open: fd " + std::to_string(fd_.get()));
    return conn;
  }
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
  detail::libuv_driver_core* core_ = nullptr;
};

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
      const int n = detail::hand_over_passed(act_->sockets(), [&](unique_fd fd, const server_socket& l) {
        single_ = true;
        deliver(std::move(fd), l);
        return !closing;
      });
      if (n > 0 && closing) return;
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

#endif  // SOCKACT_LIBUV_DRIVER_HPP
