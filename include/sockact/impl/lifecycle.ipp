// SPDX-License-Identifier: MIT
// The definitions of <sockact/lifecycle.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_LIFECYCLE_IPP
#define SOCKACT_IMPL_LIFECYCLE_IPP

#include <sockact/lifecycle.hpp>

#include <sockact/detail/config.hpp>
#include <sockact/idle.hpp>
#include <sockact/notify.hpp>

#include <signal.h>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

SOCKACT_DECL lifecycle_actions& lifecycle_actions::operator|=(const lifecycle_actions& o) noexcept {
  stop_accepting |= o.stop_accepting;
  close_idle |= o.close_idle;
  close_new |= o.close_new;
  close_all |= o.close_all;
  finished |= o.finished;
  return *this;
}

SOCKACT_DECL lifecycle::lifecycle(const lifecycle_config& config, bool activated, std::vector<int> listen_fds,
                                  clock::time_point now)
    : config_(config),
      tracker_(config.idle_only_when_activated && !activated ? std::chrono::milliseconds::zero()
                                                             : config.idle_timeout,
               now),
      listen_fds_(std::move(listen_fds)) {
  std::error_code ec;
  if (const auto interval = watchdog_enabled(false, ec)) {
    // Ping at half the interval, as sd_watchdog_enabled(3) advises.
    watchdog_every_ = std::chrono::duration_cast<std::chrono::milliseconds>(*interval / 2);
    if (watchdog_every_ < std::chrono::milliseconds(1)) watchdog_every_ = std::chrono::milliseconds(1);
    next_watchdog_ = now;
  }
}

SOCKACT_DECL void lifecycle::on_stop(std::function<void(stop_reason)> hook) {
  hook_ = std::move(hook);
}

SOCKACT_DECL void lifecycle::ready(const std::string& status) {
  std::error_code ec;
  notify(notify_state::ready + notify_state::status(status), ec);
}

SOCKACT_DECL lifecycle::clock::time_point lifecycle::next_deadline(clock::time_point now) const noexcept {
  clock::time_point t = clock::time_point::max();
  if (phase_ == phase::serving) t = tracker_.next_check(now);
  if (phase_ == phase::draining) t = std::min({t, drain_deadline_, grace_deadline_});
  if (watchdog_every_.count() > 0 && phase_ != phase::done) t = std::min(t, next_watchdog_);
  return t;
}

SOCKACT_DECL lifecycle_actions lifecycle::on_timer(clock::time_point now) {
  lifecycle_actions a;
  if (watchdog_every_.count() > 0 && now >= next_watchdog_ && phase_ != phase::done) {
    std::error_code ec;
    notify(notify_state::watchdog, ec);
    next_watchdog_ = now + watchdog_every_;
  }
  if (phase_ == phase::serving && tracker_.check(now)) {
    if (connection_waiting(listen_fds_)) {
      // Someone connected just now: serve them rather than exit and be started again.
      tracker_.restart(now);
    } else {
      a |= begin_stop(stop_reason::idle, now);
    }
  }
  if (phase_ == phase::draining && now >= grace_deadline_) {
    a.close_new = true;  // they had their chance to send a request
    a.close_idle = true;
    grace_deadline_ = clock::time_point::max();
  }
  if (phase_ == phase::draining && now >= drain_deadline_) {
    if (listening_) a |= stop_listening(reason_.value_or(stop_reason::idle));
    a.close_all = true;
    phase_ = phase::done;
    a.finished = true;
  }
  return a;
}

SOCKACT_DECL lifecycle_actions lifecycle::on_signal(int signo, clock::time_point now) {
  const stop_reason why = signo == SIGINT ? stop_reason::sigint : stop_reason::sigterm;
  ++signals_;
  if (phase_ == phase::serving) return begin_stop(why, now);
  lifecycle_actions a;
  if (phase_ != phase::draining) return a;
  if (signals_ == 1) {
    // The first stop signal during an idle drain: what was received is
    // still answered (the drain's deadline stays); nothing resumes it now.
    if (listening_) a |= stop_listening(why);
    reason_ = why;
    return a;
  }
  a.close_all = true;
  a.finished = true;
  phase_ = phase::done;
  return a;
}

SOCKACT_DECL lifecycle_actions lifecycle::on_connections(std::size_t open) {
  lifecycle_actions a;
  if (phase_ != phase::draining || open > 0) return a;
  if (listening_) {
    if (connection_waiting(listen_fds_)) {
      resume(clock::now());  // someone connected just now: serve them
      return a;
    }
    return stop_listening(stop_reason::idle);  // done at the next call, once they are closed
  }
  phase_ = phase::done;
  a.finished = true;
  return a;
}

SOCKACT_DECL bool lifecycle::resume(clock::time_point now) noexcept {
  if (phase_ != phase::draining || !listening_) return false;
  phase_ = phase::serving;
  reason_.reset();
  drain_deadline_ = grace_deadline_ = clock::time_point::max();
  tracker_.restart(now);
  return true;
}

SOCKACT_DECL lifecycle_actions lifecycle::stop_listening(stop_reason why) {
  lifecycle_actions a;
  listening_ = false;
  a.stop_accepting = true;
  std::error_code ec;
  notify(notify_state::stopping + notify_state::status(std::string("stopping: ") + to_string(why)), ec);
  if (hook_) hook_(why);
  return a;
}

SOCKACT_DECL lifecycle_actions lifecycle::begin_stop(stop_reason why, clock::time_point now) {
  lifecycle_actions a;
  phase_ = phase::draining;
  reason_ = why;
  drain_deadline_ = now + config_.shutdown_timeout;
  grace_deadline_ = now + std::min(config_.new_connection_grace, config_.shutdown_timeout);
  a.close_idle = true;
  a.close_new = config_.new_connection_grace.count() <= 0;
  listening_ = true;
  // STOPPING=1 and the hook come when the listeners close: an idle drain may
  // still serve again (systemd would take STOPPING=1 as the service stopping).
  if (why != stop_reason::idle) a |= stop_listening(why);
  return a;
}

}  // namespace sockact

#endif  // SOCKACT_IMPL_LIFECYCLE_IPP
