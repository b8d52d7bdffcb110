// sockact-run: the start and trigger limits, counted as systemd's ratelimit
// counts (BURST within INTERVAL), over a sliding window.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_LIMITS_HPP
#define SOCKACT_RUN_LIMITS_HPP

#include "messages.hpp"
#include "options.hpp"

#include <algorithm>
#include <deque>

namespace sockact_run {

class rate_window {
 public:
  explicit rate_window(rate_limit limit) noexcept : limit_(limit) {}

  // In time order, also when added out of order (--accept's runs end in any order).
  void add(clock_type::time_point t) {
    if (!limit_.off()) times_.insert(std::upper_bound(times_.begin(), times_.end(), t), t);
  }
  void clear() noexcept { times_.clear(); }

  // Would one more event at `now` go past BURST within INTERVAL?
  bool full(clock_type::time_point now) {
    if (limit_.off()) return false;
    while (!times_.empty() && now - times_.front() >= limit_.interval) times_.pop_front();
    return times_.size() >= limit_.burst;
  }

  std::size_t count() const noexcept { return times_.size(); }
  const rate_limit& limit() const noexcept { return limit_; }

 private:
  rate_limit limit_;
  std::deque<clock_type::time_point> times_;
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_LIMITS_HPP
