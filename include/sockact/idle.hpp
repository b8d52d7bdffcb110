// SPDX-License-Identifier: MIT
#ifndef SOCKACT_IDLE_HPP
#define SOCKACT_IDLE_HPP

// Knowing when a socket-activated server has been idle long enough to exit,
// and reading IDLE_TIMEOUT / SHUTDOWN_TIMEOUT. Loop-agnostic: the event-loop
// integrations (POSIX here, Asio and libuv in their headers) drive it.

#include <sockact/detail/config.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

/// Why a server stops.
enum class stop_reason {
  idle,     ///< no activity for the idle timeout
  sigterm,  ///< SIGTERM (systemctl stop)
  sigint,   ///< SIGINT (Ctrl-C)
};

SOCKACT_DECL const char* to_string(stop_reason r) noexcept;

/// Counts activity (requests or connections, as the server chooses) and tells
/// the event loop when there has been none for the timeout.
///
/// The hot path, begin() and the guard's end, is one relaxed atomic add each:
/// no clock read, no allocation, no lock. The loop calls check() from a timer;
/// it compares a counter that every begin and end changes, so it can tell that
/// nothing happened between two checks without timing each request. A process
/// exits between `timeout` and `timeout + check_interval()` after its last
/// activity ended, never earlier. The first deadline counts from construction,
/// so a process that never gets a request still exits.
class idle_tracker {
 public:
  using clock = std::chrono::steady_clock;

  /// RAII guard for one unit of activity; ends it when destroyed.
  class activity {
   public:
    activity() noexcept = default;
    activity(activity&& o) noexcept : tracker_(std::exchange(o.tracker_, nullptr)) {}
    activity& operator=(activity&& o) noexcept {
      if (this != &o) {
        end();
        tracker_ = std::exchange(o.tracker_, nullptr);
      }
      return *this;
    }
    activity(const activity&) = delete;
    activity& operator=(const activity&) = delete;
    ~activity() { end(); }
    /// Ends the activity now (idempotent).
    void end() noexcept {
      if (tracker_ != nullptr) std::exchange(tracker_, nullptr)->end_one();
    }
    explicit operator bool() const noexcept { return tracker_ != nullptr; }

   private:
    friend class idle_tracker;
    explicit activity(idle_tracker* t) noexcept : tracker_(t) {}
    idle_tracker* tracker_ = nullptr;
  };

  /// @param timeout zero turns idle detection off (check() never fires).
  explicit idle_tracker(std::chrono::milliseconds timeout = std::chrono::milliseconds::zero(),
                        clock::time_point start = clock::now()) noexcept;

  idle_tracker(const idle_tracker&) = delete;
  idle_tracker& operator=(const idle_tracker&) = delete;

  bool enabled() const noexcept { return timeout_.count() > 0; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  /// Starts one unit of activity; it lasts until the guard is destroyed.
  [[nodiscard]] activity begin() noexcept {
    state_.fetch_add(begin_step, std::memory_order_relaxed);
    return activity(this);
  }

  /// Units of activity under way now.
  std::uint32_t active() const noexcept {
    return static_cast<std::uint32_t>(state_.load(std::memory_order_relaxed) & count_mask);
  }

  /// How often the loop should call check() while busy: a tenth of the
  /// timeout, between 10 ms and 1 s. The exit comes at most this much late.
  std::chrono::milliseconds check_interval() const noexcept;

  /// Called by the loop's timer (one thread). True once nothing has been
  /// active for the whole timeout. Activity seen since the previous call
  /// restarts the idle period at `now` (an upper bound of when it ended).
  bool check(clock::time_point now = clock::now()) noexcept;

  /// When the loop's timer should call check() next: the idle deadline when
  /// nothing happened since the last check, else a check_interval() after it.
  /// `now` only bounds the result from below when the check is already late.
  clock::time_point next_check(clock::time_point now = clock::now()) const noexcept;

  /// Forgets the idle period so far (e.g. after finding a connection in the
  /// backlog at the deadline): the timeout counts again from `now`.
  void restart(clock::time_point now = clock::now()) noexcept;

 private:
  // Low 32 bits: activity under way. High 32 bits: a generation that every
  // begin and end advances. begin adds 2^32 + 1; end adds 2^32 - 1, which
  // takes one from the count and carries one into the generation.
  static constexpr std::uint64_t count_mask = 0xffffffffu;
  static constexpr std::uint64_t begin_step = (std::uint64_t{1} << 32) + 1;
  static constexpr std::uint64_t end_step = (std::uint64_t{1} << 32) - 1;

  void end_one() noexcept { state_.fetch_add(end_step, std::memory_order_relaxed); }

  std::chrono::milliseconds timeout_;
  std::atomic<std::uint64_t> state_{0};
  std::uint64_t seen_ = 0;        // loop thread only
  clock::time_point idle_since_;  // loop thread only
  clock::time_point last_check_;  // loop thread only
};

/// True when a connection (or datagram) already waits on one of these
/// listening sockets: at the idle deadline, serve it instead of exiting, so a
/// client that arrived just now does not cost a restart (and many such
/// restarts do not trip the socket unit's trigger limit).
SOCKACT_DECL bool connection_waiting(const std::vector<int>& fds) noexcept;

/// IDLE_TIMEOUT and SHUTDOWN_TIMEOUT, as SvelteKit's adapter-node names them.
struct lifecycle_config {
  /// Exit after this long without activity; zero = never. Default off.
  std::chrono::milliseconds idle_timeout{0};
  /// On SIGTERM/SIGINT (and idle exit): how long in-flight work may take
  /// before the remaining connections are closed. Default 30 s.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(30)};
  /// While draining, how long a connection that has sent nothing yet may take
  /// to send its first request before it is closed (capped by the shutdown
  /// timeout). It closes the race between accepting a connection and deciding
  /// to stop, in which its request would be lost.
  std::chrono::milliseconds new_connection_grace{std::chrono::seconds(2)};
  /// Apply the idle timeout only when socket-activated (as adapter-node):
  /// a server started by hand has nobody to start it again.
  bool idle_only_when_activated = true;
  /// A request that has begun (its first byte arrived) must complete its
  /// head within this (HEADERS_TIMEOUT); zero = no limit. Default 10 s: an
  /// idle-exiting server must not be pinned by a client that sends one byte.
  std::chrono::milliseconds headers_timeout{std::chrono::seconds(10)};
  /// ... and arrive whole, body included, within this (REQUEST_TIMEOUT);
  /// zero = no limit. Default 60 s.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(60)};
  /// After the last response on a connection the library closes: how long it
  /// reads and discards what the client still sends, so that the client gets
  /// a FIN rather than a reset that could destroy responses it has not read.
  std::chrono::milliseconds linger{std::chrono::seconds(2)};
  /// A connection whose unsent output (the kernel's send queue) has not moved
  /// for this long (SEND_TIMEOUT) is reset: a client that stops reading
  /// cannot pin the process. Zero = no limit. Default 30 s.
  std::chrono::milliseconds send_timeout{std::chrono::seconds(30)};
};

namespace detail {

/// Seconds as a person writes them: "30", "2.5", "0". Not negative, not
/// empty, no sign, no exponent, no trailing junk, at most a year.
SOCKACT_DECL bool parse_seconds(std::string_view s, std::chrono::milliseconds& out);

}  // namespace detail

/// Reads IDLE_TIMEOUT, SHUTDOWN_TIMEOUT, HEADERS_TIMEOUT, REQUEST_TIMEOUT and
/// SEND_TIMEOUT (seconds; fractions allowed, a value under a millisecond
/// rounds up to one; unset: the default kept; 0: no limit, or for
/// SHUTDOWN_TIMEOUT, do not wait) into `config`.
/// @param ec std::errc::invalid_argument when a value is malformed.
/// @param why when not null, receives e.g. `IDLE_TIMEOUT="-5" is not a number
///        of seconds (...)`.
SOCKACT_DECL bool lifecycle_from_environment(lifecycle_config& config, std::error_code& ec,
                                             std::string* why = nullptr);

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error naming the variable and its value.
SOCKACT_DECL lifecycle_config lifecycle_from_environment();
#endif

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/idle.ipp>
#endif

#endif  // SOCKACT_IDLE_HPP
