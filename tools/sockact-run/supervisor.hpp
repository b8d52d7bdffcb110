// sockact-run: the loop that starts PROGRAM when a socket is readable,
// watches it (notify messages, watchdog, limits) and stops it.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_SUPERVISOR_HPP
#define SOCKACT_RUN_SUPERVISOR_HPP

#include "fd_store.hpp"
#include "limits.hpp"
#include "messages.hpp"
#include "options.hpp"
#include "process.hpp"
#include "sockets.hpp"
#include "stderr_relay.hpp"
#include "watch.hpp"

#include <sockact/unique_fd.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sockact_run {

// One started PROGRAM, until its process ends.
struct run {
  unsigned number = 0;
  pid_t pid = 0;  // also its process group
  std::string woken_by;
  std::string started_at;
  clock_type::time_point woken, started;
  std::optional<clock_type::duration> ready, accepted;
  bool stopping = false;  // STOPPING=1 received
  int stop_signal = 0;    // what sockact-run sent it to stop it
  bool watchdog_fired = false;
  unsigned pings = 0;
  clock_type::time_point watchdog_deadline = clock_type::time_point::max();
  clock_type::time_point kill_deadline = clock_type::time_point::max();
  const char* kill_reason = "";
  // Restarts beside a running PROGRAM (--watch, SIGUSR2):
  bool replacement = false;    // started so, not by a connection
  bool candidate = false;      // a replacement not yet ready: the one it replaces serves on
  bool expects_ready = false;  // PROGRAM has sent READY=1 before: the candidate must too
  clock_type::time_point candidate_deadline =
      clock_type::time_point::max();  // 1 s alive, or 90 s without READY=1
  bool draining = false;              // sent SIGTERM to make room: replaced, or a candidate given up
  unsigned replaced_by = 0;           // the activation that took over
};

class supervisor {
 public:
  supervisor(options o, std::string program_path, std::string child_path, std::vector<held_socket> sockets,
             const std::string& adopt, std::optional<file_watch> watch);

  // Until stopped, or until a limit or a failure ends it; the exit status.
  int loop();

 private:
  bool setup_signals();
  void on_signal(const signalfd_siginfo& info);
  void reap();
  void ended(run& r, int status);
  void count_outcome(const run& r, const std::string& why, std::vector<std::string> stderr_lines);
  void on_notify();
  run* sender(pid_t pid);
  void on_fd_store(notify_socket::message& m, bool store, bool remove, bool poll, bool barrier,
                   const std::optional<std::string>& name);
  void pump_relays(const std::vector<pollfd>& fds, std::size_t first, const std::vector<unsigned>& numbers);
  void activate(std::size_t index, clock_type::time_point woken);
  void serve_connection(sockact::unique_fd c, const std::string& what, clock_type::time_point woken,
                        spawn_pipes pipes);
  bool may_start(const std::string& woken_by);
  bool start(const std::string& woken_by, clock_type::time_point woken, int connection, spawn_pipes pipes,
             bool replacement = false);
  // Restarts beside the running PROGRAM (reload.cpp).
  void request_restart(const std::string& why);
  void start_replacement(const std::string& why);
  void replacement_ready(run& r, const std::string& how);
  void replacement_failed(const run& r, const std::string& why, const std::vector<std::string>& stderr_lines);
  void check_replacements(clock_type::time_point now);
  void drain(run& r, unsigned replaced_by);
  std::string serving_text() const;  // "pid 12 (activation 3)", or empty when none serves
  bool serving(const run& r) const noexcept {
    return !r.draining && !r.candidate && !(r.stopping && r.stop_signal == 0);
  }
  void back_off(const char* what, int err);
  void give_up(int status, const std::string& why);
  void end_leftovers(pid_t target, int sig);
  bool finished();
  void end_everything();
  void check_timers(clock_type::time_point now);
  clock_type::time_point next_deadline() const;
  bool want_listeners(clock_type::time_point now) const;
  // A system call failed: stop (everything gets SIGKILL, the notify socket goes).
  bool failed(const char* what);
  run* find(pid_t pid);

  options o_;
  std::string program_path_;
  std::string child_path_;  // PATH as PROGRAM gets it
  std::vector<held_socket> sockets_;
  notify_socket notify_;
  child_environment env_;
  sockact::unique_fd signals_;
  sigset_t old_mask_{};
  std::map<pid_t, run> runs_;
  // By activation number (a pid can come again while an old pipe lingers);
  // a relay outlives its run until the pipe's end.
  std::map<unsigned, stderr_relay> relays_;
  // What is being ended: a process group (-pgid) or a stray child (pid), with its SIGKILL time.
  std::map<pid_t, clock_type::time_point> leftovers_;
  clock_type::time_point leftover_grace_until_{};  // stopping: leftovers end by themselves until then
  rate_window failures_;                           // starts that failed in a row (--start-limit)
  rate_window starts_;                             // every start (--trigger-limit)
  std::string last_failure_;                       // "pid N exit 1 after 0.15 s, ..."
  pid_t last_failure_pid_ = 0;
  std::vector<std::string> last_failure_lines_;  // its last stderr lines
  std::set<pid_t> inherited_children_;  // children we had before we started anything: not ours to end
  fd_store store_;
  std::optional<file_watch> watch_;
  bool ready_seen_ = false;  // a PROGRAM has sent READY=1: replacements must send it too
  bool killing_all_ = false;
  clock_type::time_point paused_until_{};  // out of fds or processes
  bool paused_said_ = false;
  unsigned activations_ = 0;
  bool stopping_ = false;  // SIGTERM/SIGINT received
  int stop_requests_ = 0;
  int exit_status_ = 0;
  bool closing_ = false;  // a limit or an exec failure: no more starts
  int closing_status_ = 0;
  int fatal_ = -1;  // a system call failed: exit with this at once
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_SUPERVISOR_HPP
