// SPDX-License-Identifier: MIT
#ifndef SOCKACT_POLL_DRIVER_HPP
#define SOCKACT_POLL_DRIVER_HPP

// The lifecycle for a poll/epoll/select loop, as one fd and one call: watch
// fd() for input, call on_ready() when it has some. The driver accepts new
// connections itself (backing off when out of fds instead of spinning),
// catches SIGTERM and SIGINT, runs the idle, request and drain deadlines on
// a timerfd, closes the listeners when the drain begins and sends READY=1,
// STOPPING=1 and watchdog pings. Linux (epoll, signalfd, timerfd).
//
//   sockact::activation act = sockact::activate();
//   sockact::poll_driver driver(act, [&](sockact::unique_fd c, const sockact::server_socket& from) { add(c);
//   }); watch(driver.fd()); while (!driver.finished())
//     for (each ready fd)
//       if (fd == driver.fd()) driver.on_ready(); else ...

#include <sockact/activation.hpp>
#include <sockact/detail/accept_core.hpp>
#include <sockact/posix.hpp>

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

namespace sockact {

/// @tparam OnConnection called as `on_connection(unique_fd, const server_socket&)`
///         with each new connection (non-blocking, close-on-exec).
template <class OnConnection>
class poll_driver {
 public:
  using clock = activation::clock;

  /// Sets up; blocks SIGTERM and SIGINT in the calling thread (make it
  /// before starting threads, so that they inherit the mask) and sends READY=1.
  poll_driver(activation& act, OnConnection on_connection, std::error_code& ec)
      : act_(&act), on_connection_(std::move(on_connection)) {
    start(ec);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error when epoll, signalfd or timerfd fail.
  poll_driver(activation& act, OnConnection on_connection)
      : act_(&act), on_connection_(std::move(on_connection)) {
    std::error_code ec;
    start(ec);
    if (ec) detail::throw_error(ec, "sockact::poll_driver");
  }
#endif
  poll_driver(const poll_driver&) = delete;
  poll_driver& operator=(const poll_driver&) = delete;

  /// Readable when the driver has something to do: watch it with EPOLLIN/POLLIN.
  int fd() const noexcept {
    return epoll_.get();
  }
  /// The drain is over: leave the loop (on_ready() already lingered).
  bool finished() const noexcept {
    return finished_;
  }

  /// Handles what is due: signals, deadlines, and new connections, each
  /// handed to on_connection. Accept=yes connections passed by the manager
  /// come through it on the first call. Never blocks.
  void on_ready() {
    OnConnection& on_connection = on_connection_;
    if (finished_) return;
    // Accept=yes: the connections passed, each served once (the first call).
    detail::hand_over_passed(act_->sockets(), [&](unique_fd c, const server_socket& l) {
      on_connection(std::move(c), l);
      single_ = true;
      return true;
    });
    epoll_event events[16];
    const int n = ::epoll_wait(epoll_.get(), events, 16, 0);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == signals_.get()) {
        signalfd_siginfo info;
        while (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
          apply(act_->on_signal(static_cast<int>(info.ssi_signo)));
      } else if (fd == timer_.get()) {
        std::uint64_t expirations = 0;
        (void)!::read(fd, &expirations, sizeof expirations);
      } else if (server_socket* l = listener_for(fd)) {
        accept_all(*l, on_connection);
      }
    }
    resume_paused();
    if (!finished_) apply(act_->on_timer());
    // Accept=yes: one connection served, nothing more to do.
    if (single_ && !finished_ && act_->connections() == 0 && !accepting()) finish();
    if (!finished_) arm();
  }

 private:
  void start(std::error_code& ec) {
    ec.clear();
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (epoll_ && timer_ && ::pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0)
      signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!epoll_ || !timer_ || !signals_ || !watch(timer_.get()) || !watch(signals_.get())) {
      ec.assign(errno, std::generic_category());
      return;
    }
    for (const server_socket& l : act_->sockets())
      if (l.info.listening && !watch(l.fd.get())) {
        ec.assign(errno, std::generic_category());
        return;
      }
    act_->ready();
    arm();
  }

  bool watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  server_socket* listener_for(int fd) {
    for (server_socket& l : act_->sockets())
      if (l.fd.get() == fd && l.info.listening) return &l;
    return nullptr;
  }

  bool accepting() const {
    for (const server_socket& l : act_->sockets())
      if (l.info.listening && l.fd) return true;
    return false;
  }

  void accept_all(server_socket& l, OnConnection& on_connection) {
    const detail::accept_outcome r = accept_.burst(
        l.fd.get(), [&](unique_fd c) { on_connection(std::move(c), static_cast<const server_socket&>(l)); },
        [&] { return static_cast<bool>(l.fd); },  // an idle drain accepts (and ends) too
        l.name, [&](const std::string& line) { act_->log(line); });
    if (r.next == detail::accept_next::back_off) {
      // The listener stays readable: stop watching it for a while.
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
      paused_.push_back({l.fd.get(), clock::now() + detail::accept_back_off});
    }
  }

  void resume_paused() {
    const clock::time_point now = clock::now();
    for (std::size_t i = 0; i < paused_.size();) {
      if (paused_[i].until <= now) {
        if (listener_for(paused_[i].fd) != nullptr) watch(paused_[i].fd);
        paused_[i] = paused_.back();
        paused_.pop_back();
      } else {
        ++i;
      }
    }
  }

  void apply(const activation::step_result& r) {
    if (r.stop_accepting && accepting()) {
      // epoll keys on the open file, which the manager's copy keeps open:
      // remove them before closing, or epoll would go on reporting them.
      for (const server_socket& l : act_->sockets())
        if (l.info.listening && l.fd) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
      paused_.clear();
      act_->close_listeners();
    }
    if (r.finished) finish();
  }

  void finish() {
    finished_ = true;
    act_->finish();
  }

  void arm() {
    const clock::time_point now = clock::now();
    clock::time_point due = act_->next_deadline(now);
    for (const paused& p : paused_) due = std::min(due, p.until);
    for (const server_socket& l : act_->sockets())
      if (l.info.connected && l.fd) due = now;  // an Accept=yes connection waits to be handed over
    itimerspec spec{};
    if (due != clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(due - now).count();
      if (left < 1) left = 1;  // zero would disarm it
      spec.it_value.tv_sec = static_cast<time_t>(left / 1000000000);
      spec.it_value.tv_nsec = static_cast<long>(left % 1000000000);
    }
    ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
  }

  struct paused {
    int fd;
    clock::time_point until;
  };

  activation* act_;
  OnConnection on_connection_;
  unique_fd epoll_, timer_, signals_;
  std::vector<paused> paused_;
  detail::accept_core accept_;
  bool finished_ = false, single_ = false;
};

}  // namespace sockact

#endif  // SOCKACT_POLL_DRIVER_HPP
