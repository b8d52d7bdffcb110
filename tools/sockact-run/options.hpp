// sockact-run: the command line. Defaults in one block, as systemd's.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_OPTIONS_HPP
#define SOCKACT_RUN_OPTIONS_HPP

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sockact_run {

// BURST events within INTERVAL; burst or interval 0: no limit.
struct rate_limit {
  unsigned burst = 0;
  std::chrono::milliseconds interval{0};
  bool off() const noexcept { return burst == 0 || interval.count() == 0; }
};

// ---- defaults (systemd's, see --help)
// StartLimitBurst=/StartLimitIntervalSec= (DefaultStartLimit*): failed starts.
constexpr rate_limit default_start_limit{5, std::chrono::seconds(10)};
// TriggerLimitBurst=/TriggerLimitIntervalSec= for Accept=no: every start.
constexpr rate_limit default_trigger_limit{20, std::chrono::seconds(2)};
// MaxConnections=: handlers at once with --accept.
constexpr unsigned default_max_connections = 64;
// DefaultTimeoutStopSec=: from SIGTERM to SIGKILL.
constexpr std::chrono::milliseconds default_stop_timeout = std::chrono::seconds(90);
// After the watchdog's SIGABRT, SIGKILL (systemd's TimeoutAbortSec= is unset
// by default; we do not wait a whole stop timeout for a core dump).
constexpr std::chrono::milliseconds kill_after_abort = std::chrono::seconds(5);
// Out of fds or processes: how long the listeners are not polled.
constexpr std::chrono::milliseconds resource_back_off = std::chrono::milliseconds(100);
// --watch: a change counts once the watched files have been quiet this long
// (a build writes, closes, renames, chmods: one restart, not four)...
constexpr std::chrono::milliseconds watch_quiet = std::chrono::milliseconds(200);
// ...and, after a write without a close (a writer still at work), this long.
constexpr std::chrono::milliseconds watch_quiet_writing = std::chrono::seconds(2);
// A replacement (--watch, SIGUSR2) of a PROGRAM that never sent READY=1 counts
// as started once it has run this long; the old one is told to drain then.
constexpr std::chrono::milliseconds replacement_grace = std::chrono::seconds(1);
// A replacement of a PROGRAM that sends READY=1 gets this long to send it
// (systemd's DefaultTimeoutStartSec=); else it is stopped, the old one serves on.
constexpr std::chrono::milliseconds replacement_ready_timeout = std::chrono::seconds(90);
// FileDescriptorStoreMax=: 0, no fd store, as systemd's default.
constexpr unsigned default_fd_store_max = 0;
constexpr unsigned fd_store_limit = 4096;  // the largest --fd-store-max

struct options {
  std::vector<std::string> listen;
  std::vector<std::string> fdnames;
  std::vector<std::string> setenv;
  bool accept = false;
  bool inetd = false;
  bool datagram = false;
  rate_limit start_limit = default_start_limit;
  rate_limit trigger_limit = default_trigger_limit;  // off by default with --accept
  unsigned max_connections = default_max_connections;
  std::optional<std::chrono::milliseconds> stop_timeout = default_stop_timeout;  // none: never SIGKILL
  std::chrono::milliseconds watchdog{0};
  std::optional<std::string> adopt;  // "" = the default place
  bool watch_program = false;        // --watch: the PROGRAM file
  std::vector<std::string> watch;    // --watch=PATH, files or folders
  unsigned fd_store_max = default_fd_store_max;
  std::vector<char*> program;  // PROGRAM ARGS..., null-terminated
};

struct usage_error {
  std::string message;
};

// The command line; --help and --version print and exit.
// @throws usage_error naming the option and its value.
options parse_options(int argc, char** argv);

// "5/10" as --start-limit takes it, or "0".
std::string limit_text(const rate_limit& l);

}  // namespace sockact_run

#endif  // SOCKACT_RUN_OPTIONS_HPP
