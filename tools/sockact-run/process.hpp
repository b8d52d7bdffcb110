// sockact-run: starting PROGRAM (its environment, fds, process group and
// parent-death signal) and ending what is left of it.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_PROCESS_HPP
#define SOCKACT_RUN_PROCESS_HPP

#include "options.hpp"
#include "sockets.hpp"

#include <sockact/unique_fd.hpp>

#include <signal.h>
#include <sys/types.h>
#include <string>
#include <vector>

namespace sockact_run {

// The environment for PROGRAM, built before fork(). LISTEN_PID and
// WATCHDOG_PID are written into their slots in the child, after fork().
class child_environment {
 public:
  child_environment(const options& o, const std::vector<held_socket>& sockets, const std::string& notify_path,
                    const std::string& adopt);

  // For one connection (--accept): REMOTE_ADDR/REMOTE_PORT as systemd sets them.
  void set_remote(const std::string& addr, const std::string& port);

  // For one start: LISTEN_FDS and LISTEN_FDNAMES with the fd store's fds
  // after the sockets. No-op with --inetd (no LISTEN_* variables).
  void set_listen(std::size_t count, const std::string& names);

  // Pointers for execve(); stable until the next set_remote().
  char** envp();

  // In the child: writes getpid() into the LISTEN_PID= and WATCHDOG_PID= slots.
  // Async-signal-safe: no allocation.
  void fill_pids() noexcept;

 private:
  static constexpr std::size_t pid_width = 12;
  // "NAME=" and pid_width spaces, which fill_pids() overwrites (a NUL ends the value).
  void add_pid_slot(const char* name);
  std::vector<std::string> strings_;
  std::vector<std::size_t> pid_slots_;
  bool has_listen_ = false;                          // LISTEN_FDS and LISTEN_FDNAMES are set (not --inetd)...
  std::size_t listen_fds_ = 0, listen_fdnames_ = 0;  // ...at these indexes of strings_
  std::vector<char*> pointers_;
};

// The pipes a start needs, opened before --accept takes a connection, so
// that a full fd table holds the connection back in the queue instead of
// failing its start.
struct spawn_pipes {
  sockact::unique_fd report_read, report_write;  // an exec failure's errno; a successful exec closes it
  sockact::unique_fd stderr_read, stderr_write;  // PROGRAM's stderr, relayed by sockact-run
  // False with errno set (EMFILE...).
  bool open() noexcept;
};

struct spawn_request {
  const std::string* path = nullptr;
  char* const* argv = nullptr;
  child_environment* env = nullptr;
  const sigset_t* mask = nullptr;  // the signal mask PROGRAM gets
  std::vector<int> fds;            // passed as 3, 4, ... (or as stdin/stdout with inetd)
  bool inetd = false;
};

struct spawned {
  pid_t pid = -1;      // also its process group; -1: fork failed
  int fork_error = 0;  // fork's errno, when it failed
  int exec_error = 0;  // execve's errno, when exec failed
  sockact::unique_fd stderr_read;
};

// fork() and execve() PROGRAM in a process group of its own, with
// PR_SET_PDEATHSIG=SIGKILL, its stderr into the pipe, the fds in place.
spawned spawn(const spawn_request& request, spawn_pipes pipes);

// kill(2) for a process (target > 0) or a process group (target < 0).
// Is anything (even a zombie) there?
bool alive(pid_t target) noexcept;

// sockact-run's own children now (PROGRAMs, and orphans it took as
// subreaper or PID 1), from /proc; empty without /proc.
std::vector<pid_t> children_of_self();

}  // namespace sockact_run

#endif  // SOCKACT_RUN_PROCESS_HPP
