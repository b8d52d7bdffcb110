// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIFECYCLE_HPP
#define SOCKACT_LIFECYCLE_HPP

// Sleep when idle, lose nothing: the loop-agnostic state machine behind the
// idle timeout, graceful shutdown, the watchdog and READY=1/STOPPING=1.
//
// An event loop owns the sockets and connections; a `lifecycle` tells it what
// to do and when:
//   serving  --(idle deadline, nothing in the backlog | SIGTERM | SIGINT)-->
//   draining: close idle connections, let in-flight work finish, for at most
//             SHUTDOWN_TIMEOUT; then close the rest. A stop signal closes
//             the listeners at once. An idle drain keeps them open: a new
//             connection ends it (serving again, the idle timeout counting
//             from then), and they close only once nothing is open; a stop
//             signal during an idle drain continues it as a stop drain, and
//             only a second stop signal cuts it.
//   done:     the loop returns and main() exits 0.
// The inherited listening sockets are closed, never shut down or unlinked:
// systemd keeps its copies and starts the service again on the next connection.

#include <sockact/detail/config.hpp>
#include <sockact/idle.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sockact {

/// What the loop must do after a lifecycle event.
struct lifecycle_actions {
  /// stop watching (and close) the listening sockets: at a stop signal, or
  /// when an idle drain has nothing left open. An idle drain that begins
  /// leaves them open: a connection accepted meanwhile ends it (resume()).
  bool stop_accepting = false;
  /// close connections that have finished a request and wait for the next
  bool close_idle = false;
  /// close connections that have sent nothing yet. Not at once when draining
  /// begins: a client that connected just before may not have sent its request
  /// yet; it gets new_connection_grace (at most the shutdown timeout) to do so.
  bool close_new = false;
  bool close_all = false;  ///< close every connection now (shutdown timeout, second signal)
  bool finished = false;   ///< nothing left to do: leave the loop

  /// Whether there is anything to do at all.
  bool any() const noexcept { return stop_accepting || close_idle || close_new || close_all || finished; }

  /// Whether these actions close a connection that is `busy` (a request in
  /// progress) and `has_sent` (has sent at least one byte): close_all closes
  /// every one; otherwise only one that is not busy, by close_idle once it has
  /// sent something, by close_new while it has not.
  bool closes(bool busy, bool has_sent) const noexcept {
    return close_all || (!busy && (has_sent ? close_idle : close_new));
  }

  lifecycle_actions& operator|=(const lifecycle_actions& o) noexcept;
};

/// The state machine; one per server, driven by its loop thread.
class lifecycle {
 public:
  using clock = idle_tracker::clock;
  enum class phase { serving, draining, done };

  /// @param activated whether the listeners came from the service manager; with
  ///        config.idle_only_when_activated, the idle timeout applies only then.
  /// @param listen_fds the listening sockets, for the backlog check at the
  ///        idle deadline.
  lifecycle(const lifecycle_config& config, bool activated, std::vector<int> listen_fds,
            clock::time_point now = clock::now());

  /// Count requests (or connections) with this: `auto a = lc.tracker().begin();`
  idle_tracker& tracker() noexcept { return tracker_; }
  const idle_tracker& tracker() const noexcept { return tracker_; }
  phase current() const noexcept { return phase_; }
  bool draining() const noexcept { return phase_ == phase::draining; }
  /// Whether the listening sockets are still in use: serving, or an idle
  /// drain that a new connection can still end.
  bool listening() const noexcept { return phase_ == phase::serving || (draining() && listening_); }
  /// Why the server is stopping, once it is.
  std::optional<stop_reason> reason() const noexcept { return reason_; }
  /// Called once when the server stops for good (adapter-node's
  /// 'sveltekit:shutdown'): when a stop signal begins the drain, or when an
  /// idle drain closes the listeners.
  void on_stop(std::function<void(stop_reason)> hook);

  /// READY=1 with a STATUS= line; call once the loop is about to serve.
  void ready(const std::string& status = "serving");

  /// When the loop must call on_timer() next (time_point::max(): never).
  clock::time_point next_deadline(clock::time_point now = clock::now()) const noexcept;

  /// Timers: idle deadline (with the backlog rule), watchdog, drain deadline.
  lifecycle_actions on_timer(clock::time_point now = clock::now());

  /// SIGTERM or SIGINT. The first starts draining, or turns an idle drain
  /// into a stop drain (the listeners close; its deadline stays); a second
  /// one stops waiting: every connection is closed at once.
  lifecycle_actions on_signal(int signo, clock::time_point now = clock::now());

  /// The loop reports how many connections remain (those still closing
  /// included); while draining, none left means done. An idle drain first
  /// closes the listeners (stop_accepting), unless a connection waits in the
  /// backlog (then it serves again), and is done at the next call.
  lifecycle_actions on_connections(std::size_t open);

  /// A connection arrived during an idle drain whose listeners are still
  /// open: serve again, the idle timeout counting from `now`. False (and no
  /// change) in any other phase.
  bool resume(clock::time_point now = clock::now()) noexcept;

 private:
  lifecycle_actions begin_stop(stop_reason why, clock::time_point now);
  lifecycle_actions stop_listening(stop_reason why);

  lifecycle_config config_;
  idle_tracker tracker_;
  std::vector<int> listen_fds_;
  phase phase_ = phase::serving;
  std::optional<stop_reason> reason_;
  bool listening_ = true;  // draining: the listeners are still open (an idle drain)
  int signals_ = 0;        // stop signals seen
  std::function<void(stop_reason)> hook_;
  clock::time_point drain_deadline_ = clock::time_point::max();
  clock::time_point grace_deadline_ = clock::time_point::max();
  std::chrono::milliseconds watchdog_every_{0};
  clock::time_point next_watchdog_ = clock::time_point::max();
};

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/lifecycle.ipp>
#endif

#endif  // SOCKACT_LIFECYCLE_HPP
