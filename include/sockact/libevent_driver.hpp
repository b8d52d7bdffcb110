// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBEVENT_DRIVER_HPP
#define SOCKACT_LIBEVENT_DRIVER_HPP

// sockact::libevent_driver: an activation on a libevent event_base, its timer
// and signal events and the decisions taken on them, for evhttp servers
// (serve) and servers of their own on evconnlistener (listen). Part of
// <sockact/libevent.hpp>, which describes the adapter.

#include <sockact/activation.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/detail/libevent_evhttp.hpp>
#include <sockact/detail/libevent_listeners.hpp>
#include <sockact/error.hpp>
#include <sockact/posix.hpp>
#include <sockact/unique_fd.hpp>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace sockact {

namespace detail {
class libevent_core;
}

/// Runs an activation on a libevent event_base; see <sockact/libevent.hpp>.
/// Movable; destroy it before evhttp_free() and event_base_free().
class libevent_driver {
 public:
  /// Adds the driver's timer and signal events to `base`. READY=1 goes out
  /// when the loop runs. Then call serve() or listen().
  /// @param ec set when an event cannot be made or added.
  libevent_driver(event_base* base, activation& act, std::error_code& ec);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload.
  libevent_driver(event_base* base, activation& act);
#endif
  libevent_driver(libevent_driver&&) noexcept = default;
  libevent_driver& operator=(libevent_driver&&) noexcept = default;
  libevent_driver(const libevent_driver&) = delete;
  libevent_driver& operator=(const libevent_driver&) = delete;
  /// Removes the driver's events and listeners; the connections still open
  /// stay with evhttp (or the server), unregistered.
  ~libevent_driver();

  /// Serves every listening socket of the activation on `http`, each through
  /// an evconnlistener the driver owns, and tracks each connection from its
  /// accept. Takes `http`'s evhttp_set_bevcb(). Once per driver.
  /// @param ec ENOTSUP for an Accept=yes connection (evhttp in libevent 2.1
  ///        cannot be given a connected socket), EALREADY when already
  ///        serving, or why an evconnlistener could not be made; then
  ///        nothing is bound.
  /// @param why receives a message naming the socket.
  /// @code
  ///   if (!driver.serve(http, ec, &why)) return fail(why);
  /// @endcode
  bool serve(evhttp* http, std::error_code& ec, std::string* why = nullptr);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload, with the message.
  void serve(evhttp* http);
#endif

  /// For servers of their own on evconnlistener: accepts on every listening
  /// socket (pausing 100 ms when out of fds) and hands each connection, and
  /// each Accept=yes connection, to `on_connection(unique_fd, const
  /// server_socket&)` (non-blocking, close-on-exec), which registers it with
  /// act.track(fd, close) at once. Once per driver.
  /// @param ec EALREADY when already serving, or why an evconnlistener could
  ///        not be made; then nothing listens.
  template <class OnConnection>
  bool listen(OnConnection on_connection, std::error_code& ec, std::string* why = nullptr) {
    return listen_erased(std::function<void(unique_fd, const server_socket&)>(std::move(on_connection)), ec,
                         why);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload, with the message.
  template <class OnConnection>
  void listen(OnConnection on_connection) {
    or_throw(
        [&](std::error_code& ec, std::string* why) { return listen(std::move(on_connection), ec, why); });
  }
#endif

  /// For the response to `req` (an evhttp request on a served connection):
  /// whether it may keep the connection open. False while the server drains,
  /// unless the next request is already here (in evhttp's buffer or in the
  /// socket): then send `Connection: close`, and evhttp closes after it.
  bool keep_alive(evhttp_request* req) const;
  /// The socket `req`'s connection came in on (its name: from(req)->name);
  /// nullptr for a request the driver does not know.
  const server_socket* from(evhttp_request* req) const;
  /// The drain is over; the loop was told to exit.
  bool finished() const noexcept;

 private:
  bool listen_erased(std::function<void(unique_fd, const server_socket&)> on_connection, std::error_code& ec,
                     std::string* why);
  // The core, or nullptr with EINVAL when the driver did not start.
  detail::libevent_core* core(std::error_code& ec, std::string* why) const;
#if SOCKACT_HAS_EXCEPTIONS
  template <class Call>
  static void or_throw(Call&& call) {
    std::error_code ec;
    std::string why;
    if (!call(ec, &why)) detail::throw_error(ec, "sockact::libevent_driver: " + why);
  }
#endif
  std::unique_ptr<detail::libevent_core> core_;
};

namespace detail {

// The driver's side of the loop: READY=1, the timer on the activation's
// deadlines, SIGTERM and SIGINT, the decisions taken on them, and the
// connections handed to listen()'s callback.
class libevent_core {
 public:
  using clock = activation::clock;
  using on_connection_fn = std::function<void(unique_fd, const server_socket&)>;

  libevent_core(event_base* base, activation& act)
      : base_(base),
        act_(&act),
        listeners_(base, act, [this] { arm(); }),
        conns_(act, listeners_, [this] { arm(); }) {}
  libevent_core(const libevent_core&) = delete;
  libevent_core& operator=(const libevent_core&) = delete;
  ~libevent_core() {
    for (event* e : {timer_, sigterm_, sigint_})
      if (e != nullptr) event_free(e);
  }

  std::error_code start() {
    if (base_ == nullptr) return std::error_code(EINVAL, std::generic_category());
    timer_ = event_new(base_, -1, 0, &libevent_core::on_timer_event, this);
    sigterm_ = event_new(base_, SIGTERM, EV_SIGNAL | EV_PERSIST, &libevent_core::on_signal_event, this);
    sigint_ = event_new(base_, SIGINT, EV_SIGNAL | EV_PERSIST, &libevent_core::on_signal_event, this);
    if (timer_ == nullptr || sigterm_ == nullptr || sigint_ == nullptr)
      return std::error_code(ENOMEM, std::generic_category());
    if (std::error_code ec = conns_.start(base_)) return ec;
    if (event_add(sigterm_, nullptr) != 0 || event_add(sigint_, nullptr) != 0)
      return std::error_code(errno != 0 ? errno : EINVAL, std::generic_category());
    const timeval now{0, 0};  // the first tick sends READY=1 and hands over Accept=yes connections
    if (event_add(timer_, &now) != 0) return std::error_code(ENOMEM, std::generic_category());
    armed_ = clock::now();
    return {};
  }

  bool serve(evhttp* http, std::error_code& ec, std::string* why) {
    ec.clear();
    if (serving_) return libevent_fail(ec, why, EALREADY, "already serving");
    if (http == nullptr) return libevent_fail(ec, why, EINVAL, "no evhttp");
    for (const server_socket& l : act_->sockets())
      if (l.fd && l.info.connected)
        return libevent_fail(ec, why, ENOTSUP,
                             "fd " + std::to_string(l.fd.get()) + " (\"" + l.name +
                                 "\") is an Accept=yes connection: evhttp (libevent 2.1) cannot be given a "
                                 "connected socket; use listening sockets (Accept=no)");
    if (!listeners_.open(http, nullptr, nullptr, ec, why)) return false;
    conns_.attach(http);
    serving_ = true;
    return true;
  }

  bool listen(on_connection_fn f, std::error_code& ec, std::string* why) {
    ec.clear();
    if (serving_) return libevent_fail(ec, why, EALREADY, "already serving");
    if (!listeners_.open(nullptr, &libevent_core::on_accepted, this, ec, why)) return false;
    on_connection_ = std::move(f);  // only now: a failed listen() hands nothing over
    serving_ = true;
    if (ready_) hand_over_passed();
    return true;
  }

  bool keep_alive(evhttp_request* req) { return conns_.keep_alive(req); }
  const server_socket* from(evhttp_request* req) { return conns_.from(req); }
  bool finished() const noexcept { return finished_; }

 private:
  // listen(): a connection accepted.
  static void on_accepted(evconnlistener* lev, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    unique_fd c(fd);
    if (const server_socket* from = self->listeners_.socket_of(lev))
      self->on_connection_(std::move(c), *from);
    self->arm();  // with a connection open, the request deadlines are looked at
  }

  // listen(): the connections passed (Accept=yes), at the first tick.
  void hand_over_passed() {
    detail::hand_over_passed(act_->sockets(), [&](unique_fd fd, const server_socket& l) {
      single_ = true;
      on_connection_(std::move(fd), l);
      return true;
    });
  }

  static void on_timer_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    self->armed_ = clock::time_point::max();
    self->tick();
  }

  static void on_signal_event(evutil_socket_t signo, short, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    if (self->finished_) return;
    self->conns_.sweep(true);
    self->apply(self->act_->on_signal(signo));
    self->arm();
  }

  void tick() {
    if (finished_) return;
    if (!ready_) {
      ready_ = true;
      act_->ready();
      if (on_connection_) hand_over_passed();
    }
    listeners_.resume(clock::now());
    conns_.sweep(true);
    apply(act_->on_timer());
    // Accept=yes only: the connection was served; nothing more to do.
    if (single_ && !finished_ && !listeners_.accepting() && act_->connections() == 0) finish();
    arm();
  }

  void apply(const activation::step_result& r) {
    if (r.stop_accepting && listeners_.accepting()) {
      listeners_.close();
      act_->close_listeners();  // close, never shutdown(2)
    }
    if (r.finished) finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    for (event* e : {timer_, sigterm_, sigint_}) event_del(e);
    conns_.stop();
    act_->finish();  // bounded: the connections closed by the library linger at most this long
    event_base_loopexit(base_, nullptr);
  }

  // Points the timer at the next deadline, if that is earlier than the one it
  // is set for. Never later: deadlines such as "look again in 250 ms" move
  // with every call, and must still come.
  void arm() {
    if (finished_) return;
    const clock::time_point now = clock::now();
    clock::time_point due = std::min(act_->next_deadline(now), listeners_.next_resume());
    if (single_ && act_->connections() > 0) due = std::min(due, now + std::chrono::milliseconds(250));
    if (due == clock::time_point::max() || due >= armed_) return;
    long long us = std::chrono::duration_cast<std::chrono::microseconds>(due - now).count() + 1;
    if (us < 0) us = 0;
    const timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    if (event_add(timer_, &tv) == 0) armed_ = due;
  }

  event_base* base_;
  activation* act_;
  event* timer_ = nullptr;
  event* sigterm_ = nullptr;
  event* sigint_ = nullptr;
  libevent_listeners listeners_;
  evhttp_connections conns_;  // after listeners_, which it reads
  on_connection_fn on_connection_;
  clock::time_point armed_ = clock::time_point::max();
  bool serving_ = false, ready_ = false, finished_ = false, single_ = false;
};

}  // namespace detail

inline libevent_driver::libevent_driver(event_base* base, activation& act, std::error_code& ec)
    : core_(std::make_unique<detail::libevent_core>(base, act)) {
  ec = core_->start();
  if (ec) core_.reset();
}

#if SOCKACT_HAS_EXCEPTIONS
inline libevent_driver::libevent_driver(event_base* base, activation& act) {
  std::error_code ec;
  *this = libevent_driver(base, act, ec);
  if (ec) detail::throw_error(ec, "sockact::libevent_driver");
}
#endif

inline libevent_driver::~libevent_driver() = default;

inline detail::libevent_core* libevent_driver::core(std::error_code& ec, std::string* why) const {
  if (!core_) detail::libevent_fail(ec, why, EINVAL, "the driver did not start");
  return core_.get();
}

inline bool libevent_driver::serve(evhttp* http, std::error_code& ec, std::string* why) {
  detail::libevent_core* c = core(ec, why);
  return c != nullptr && c->serve(http, ec, why);
}

#if SOCKACT_HAS_EXCEPTIONS
inline void libevent_driver::serve(evhttp* http) {
  or_throw([&](std::error_code& ec, std::string* why) { return serve(http, ec, why); });
}
#endif

inline bool libevent_driver::listen_erased(std::function<void(unique_fd, const server_socket&)> on_connection,
                                           std::error_code& ec, std::string* why) {
  detail::libevent_core* c = core(ec, why);
  return c != nullptr && c->listen(std::move(on_connection), ec, why);
}

inline bool libevent_driver::keep_alive(evhttp_request* req) const {
  return core_ ? core_->keep_alive(req) : true;
}

inline const server_socket* libevent_driver::from(evhttp_request* req) const {
  return core_ ? core_->from(req) : nullptr;
}

inline bool libevent_driver::finished() const noexcept {
  return !core_ || core_->finished();
}

}  // namespace sockact

#endif  // SOCKACT_LIBEVENT_DRIVER_HPP
