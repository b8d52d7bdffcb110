// SPDX-License-Identifier: MIT
// The definitions of <sockact/idle.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_IDLE_IPP
#define SOCKACT_IMPL_IDLE_IPP

#include <sockact/idle.hpp>

#include <sockact/detail/config.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>

#include <poll.h>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

SOCKACT_DECL const char* to_string(stop_reason r) noexcept {
  switch (r) {
    case stop_reason::idle:
      return "IDLE";
    case stop_reason::sigterm:
      return "SIGTERM";
    case stop_reason::sigint:
      return "SIGINT";
  }
  return "?";
}

SOCKACT_DECL idle_tracker::idle_tracker(std::chrono::milliseconds timeout, clock::time_point start) noexcept
    : timeout_(timeout < std::chrono::milliseconds::zero() ? std::chrono::milliseconds::zero() : timeout),
      idle_since_(start),
      last_check_(start) {}

SOCKACT_DECL std::chrono::milliseconds idle_tracker::check_interval() const noexcept {
  const auto tenth = timeout_ / 10;
  if (tenth < std::chrono::milliseconds(10)) return std::chrono::milliseconds(10);
  if (tenth > std::chrono::seconds(1)) return std::chrono::seconds(1);
  return tenth;
}

SOCKACT_DECL bool idle_tracker::check(clock::time_point now) noexcept {
  if (!enabled()) return false;
  last_check_ = now;
  const std::uint64_t s = state_.load(std::memory_order_relaxed);
  if (s != seen_) {
    seen_ = s;
    idle_since_ = now;
    return false;
  }
  return (s & count_mask) == 0 && now - idle_since_ >= timeout_;
}

SOCKACT_DECL idle_tracker::clock::time_point idle_tracker::next_check(clock::time_point now) const noexcept {
  if (!enabled()) return clock::time_point::max();
  const std::uint64_t s = state_.load(std::memory_order_relaxed);
  if (s == seen_ && (s & count_mask) == 0) return idle_since_ + timeout_;
  const clock::time_point due = last_check_ + check_interval();  // stable between calls
  return due > now ? due : now;
}

SOCKACT_DECL void idle_tracker::restart(clock::time_point now) noexcept {
  seen_ = state_.load(std::memory_order_relaxed);
  idle_since_ = now;
  last_check_ = now;
}

SOCKACT_DECL bool connection_waiting(const std::vector<int>& fds) noexcept {
  constexpr std::size_t max_fds = 64;
  pollfd polls[max_fds];
  std::size_t n = 0;
  for (const int fd : fds)
    if (n < max_fds) polls[n++] = pollfd{fd, POLLIN, 0};
  return n > 0 && ::poll(polls, n, 0) > 0;
}

namespace detail {

SOCKACT_DECL bool parse_seconds(std::string_view s, std::chrono::milliseconds& out) {
  if (s.empty()) return false;
  std::uint64_t ms = 0;
  std::size_t i = 0;
  bool digits = false;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    digits = true;
    ms = ms * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (ms > 366ull * 24 * 3600) return false;
  }
  ms *= 1000;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::uint64_t scale = 100;
    bool frac_digits = false, below_ms = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      frac_digits = true;
      ms += static_cast<std::uint64_t>(s[i] - '0') * scale;
      below_ms = below_ms || (scale == 0 && s[i] != '0');
      scale /= 10;
    }
    if (!frac_digits) return false;
    // Round up, never down: 0.0009 is a short timeout, not 0 (off).
    if (below_ms) ++ms;
  }
  if (!digits || i != s.size()) return false;
  out = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
  return true;
}

}  // namespace detail

SOCKACT_DECL bool lifecycle_from_environment(lifecycle_config& config, std::error_code& ec,
                                             std::string* why) {
  ec.clear();
  lifecycle_config result = config;  // `config` changes only when both values are good
  const std::pair<const char*, std::chrono::milliseconds*> vars[] = {
      {"IDLE_TIMEOUT", &result.idle_timeout},       {"SHUTDOWN_TIMEOUT", &result.shutdown_timeout},
      {"HEADERS_TIMEOUT", &result.headers_timeout}, {"REQUEST_TIMEOUT", &result.request_timeout},
      {"SEND_TIMEOUT", &result.send_timeout},
  };
  for (const auto& [name, target] : vars) {
    const char* v = std::getenv(name);
    if (v == nullptr) continue;
    std::chrono::milliseconds value{};
    if (!detail::parse_seconds(v, value)) {
      ec = std::make_error_code(std::errc::invalid_argument);
      if (why != nullptr)
        *why = std::string(name) + "=" + detail::quote(v) +
               " is not a number of seconds (such as 30 or 2.5; at most a year; 0 = " +
               (target == &result.shutdown_timeout ? "do not wait)" : "off)");
      return false;
    }
    *target = value;
  }
  config = result;
  return true;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL lifecycle_config lifecycle_from_environment() {
  lifecycle_config config;
  std::error_code ec;
  std::string why;
  if (!lifecycle_from_environment(config, ec, &why))
    detail::throw_error(ec, "sockact::lifecycle_from_environment: " + why);
  return config;
}
#endif

}  // namespace sockact

#endif  // SOCKACT_IMPL_IDLE_IPP
