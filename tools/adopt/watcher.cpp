// SPDX-License-Identifier: MIT
// libsockact-adopt.so: the watcher thread. It warns once when nothing was
// adopted 3 s after start, naming the causes it can see, and with
// IDLE_TIMEOUT it sends SIGTERM to the process when idle.

#include "adopt.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sockact_adopt {
namespace {

std::atomic<pid_t> watcher_pid{0};

/// Reads up to `size - 1` bytes of a small /proc file; 0 on failure.
std::size_t read_small(const char* path, char* buf, std::size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t n = 0;
  for (ssize_t r; n + 1 < size && (r = ::read(fd, buf + n, size - 1 - n)) > 0;)
    n += static_cast<std::size_t>(r);
  real_close()(fd);
  buf[n] = '\0';
  return n;
}

/// The live children of this process (of any of its threads), at most `max`.
int children(pid_t* out, int max) {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320], buf[512];
    std::snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    read_small(path, buf, sizeof buf);
    for (char* s = buf; *s != '\0' && n < max;) {
      char* end = nullptr;
      const long pid = std::strtol(s, &end, 10);
      if (end == s) break;
      if (pid > 0) out[n++] = static_cast<pid_t>(pid);
      s = end;
    }
  }
  ::closedir(d);
  return n;
}

/// "warning: ..." and then one "likely cause: ..." line per cause seen.
void warn_nothing_adopted() {
  {
    line l("warning: ");
    l.add("LISTEN_FDS passed ").num(passed_total).add(" fd(s) (");
    for (int i = 0; i < passed_count; ++i)
      l.add(i ? ", " : "")
          .add(passed[i].name)
          .add(" ")
          .addr(reinterpret_cast<const sockaddr*>(&passed[i].raw), passed[i].raw_len);
    l.add("), but the program has bound none of them ")
        .num(warn_after_ms / 1000)
        .add(
            " s after start: connections to them wait unanswered. Set SOCKACT_ADOPT=NAME=ADDRESS, or "
            "SOCKACT_ADOPT_DEBUG=1 to see each bind()");
  }
  bool said = false;
  pid_t kids[8];
  const int nkids = children(kids, 8);
  for (int i = 0; i < nkids && i < 3; ++i) {
    char path[64], cmd[160];
    std::snprintf(path, sizeof path, "/proc/%d/cmdline", static_cast<int>(kids[i]));
    const std::size_t n = read_small(path, cmd, sizeof cmd);
    for (std::size_t k = 0; k + 1 < n; ++k)
      if (cmd[k] == '\0') cmd[k] = ' ';
    line("likely cause: ")
        .add("this process started process ")
        .num(kids[i])
        .add(" (")
        .add(n > 0 ? cmd : "?")
        .add(
            ") as a child and adopted nothing itself: a wrapper that starts the server as a child instead "
            "of exec'ing it. The fds are this process's, and a child does not get them. Make the wrapper "
            "exec the server (\"exec server ...\" in a script, sh -c 'exec server ...'), so that the server "
            "takes its place and its pid");
    said = true;
  }
  for (int i = 0; i < passed_count; ++i) {
    struct stat st {};
    const bool closed =
        passed[i].closed_unadopted.load() ||
        (passed[i].raw_len > 0 && passed[i].open.load() &&
         (::fstat(passed[i].fd, &st) < 0 || st.st_ino != passed[i].ino || st.st_dev != passed[i].dev));
    if (!closed) continue;
    line("likely cause: ")
        .add("the program closed passed fd ")
        .num(passed[i].fd)
        .add(
            " before a bind() took it (daemonising code that closes every fd does this): there is "
            "nothing left to adopt. Keep fds 3 and up open, or start the program without that step");
    said = true;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (const int n = unmatched_binds.load(); n > 0 && last_unmatched_bind(ss, len)) {
    line l("likely cause: ");
    l.add("the program bound ").addr(reinterpret_cast<const sockaddr*>(&ss), len);
    if (n > 1) l.add(" (and ").num(n - 1).add(" other bind() call(s))");
    l.add(", which no rule gave a passed socket; SOCKACT_ADOPT=")
        .add(passed_count == 1 ? passed[0].name : "NAME")
        .add("=")
        .addr(reinterpret_cast<const sockaddr*>(&ss), len)
        .add(" gives it one (the socket types must match too)");
    said = true;
  }
  if (!said)
    line("likely cause: ")
        .add(
            "no bind() reached this library: the program has not started its server yet, binds with raw "
            "system calls (Go) or io_uring, or gets its listener some other way");
}

/// Whether any connection of this program is open or waiting: the kernel's
/// view when it can be asked, else the connections accepted here.
bool busy(bool& kernel_known) {
  const long k = kernel_connections();
  kernel_known = k >= 0;
  if (kernel_known) return k > 0;
  return open_conns.load(std::memory_order_acquire) > 0 || backlog_waiting();
}

/// Whether the program still holds a passed socket it adopted.
bool any_adopted_open() {
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].owner.load(std::memory_order_acquire) >= 0) return true;
  return false;
}

/// SIGTERM to this process, as a service manager would send it. PID 1 of a
/// PID namespace (a container's entry point, as Podman runs it) with SIGTERM
/// at its default action never gets it: the kernel protects a namespace's
/// init from its own signals. Such a process is ended with _exit(0), what the
/// signal would have done for it, and a clean exit.
void terminate_self() {
  struct sigaction current {};
  if (::getpid() == 1 && ::sigaction(SIGTERM, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    SOCKACT_ADOPT_DEBUG(.add("PID 1 with SIGTERM at its default action would ignore it: exiting"));
    ::_exit(0);
  }
  ::kill(::getpid(), SIGTERM);
}

void* watch(void*) {
  if (adoptions.load() == 0) {
    for (std::int64_t left; adoptions.load() == 0 && (left = start_ms + warn_after_ms - now_ms()) > 0;)
      sleep_ms(std::min<std::int64_t>(left, 50));
    if (adoptions.load() == 0) warn_nothing_adopted();
  }
  if (idle_ms <= 0) return nullptr;
  while (adoptions.load() == 0) sleep_ms(200);
  // While busy, look again every quarter of IDLE_TIMEOUT (50 ms to 1 s). A
  // connection seen at one look may have lasted until the next, so the idle
  // time counts from the first look that finds none: the exit comes at least
  // IDLE_TIMEOUT after the last connection closed, at most a quarter later.
  const std::int64_t period = std::clamp<std::int64_t>(idle_ms / 4, 50, 1000);
  bool was_busy = false, logged_view = false;
  for (;;) {
    const std::int64_t left = last_activity_ms.load(std::memory_order_acquire) + idle_ms - now_ms();
    if (left > 0) {
      sleep_ms(left);
      continue;
    }
    bool kernel_known = false;
    const unsigned long accepted_before = accepted.load(std::memory_order_acquire);
    if (busy(kernel_known)) {
      was_busy = true;
      sleep_ms(period);
      continue;
    }
    // Asking the kernel takes a while (up to three netlink dumps). A
    // connection accepted meanwhile, here or waiting now, would be cut by the
    // SIGTERM (a cluster's primary hands it to a worker at once): look again.
    if (accepted.load(std::memory_order_acquire) != accepted_before || backlog_waiting()) {
      note_activity(now_ms());
      continue;
    }
    if (!logged_view) {
      logged_view = true;
      SOCKACT_ADOPT_DEBUG(.add(kernel_known ? "idle: the kernel's view (sock_diag) counts the connections"
                                            : "idle: sock_diag cannot be asked here; only the connections "
                                              "accepted in this process count"));
    }
    if (was_busy) {
      was_busy = false;
      note_activity(now_ms());
      continue;
    }
    // The last look, with the gate closed: a connection that arrives from
    // here on waits in the backlog instead of being accepted and then cut.
    // Calls already past the gate return at once on a non-blocking socket; one
    // parked in a blocking accept() is not waited for (as without the gate).
    SOCKACT_ADOPT_DEBUG(.add("idle for IDLE_TIMEOUT=")
                            .num(idle_ms)
                            .add(" ms: no open connection, none waiting; sending SIGTERM"));
    accept_gate_closed.store(::getpid());
    for (int i = 0; i < 50 && accepts_in_flight.load() > 0; ++i) {
      timespec ts{0, 100000};
      ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
    }
    if (accepted.load() != accepted_before || backlog_waiting()) {
      accept_gate_closed.store(0);
      SOCKACT_ADOPT_DEBUG(.add("idle: a connection came at the last look; serving on"));
      note_activity(now_ms());
      continue;
    }
    gate_after_sigterm.store(true);
    terminate_self();
    // Still here: the program handles SIGTERM. The gate stays closed while it
    // shuts down (a handler that exits at once must not take a client with
    // it), until it has closed the adopted sockets or for at most a second;
    // then what it accepts it serves.
    for (int i = 0; i < 100 && any_adopted_open(); ++i) sleep_ms(10);
    accept_gate_closed.store(0);
    gate_after_sigterm.store(false);
    return nullptr;
  }
}

}  // namespace

/// All signals are blocked in the watcher, so a signal meant for the program
/// (signalfd, sigwait) is never delivered to this thread.
void start_watcher() {
  const pid_t self = ::getpid();
  pid_t prev = watcher_pid.load();
  if (prev == self || !watcher_pid.compare_exchange_strong(prev, self)) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  pthread_t t;
  const int r = pthread_create(&t, &attr, watch, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) line("error: ").add("cannot start the watcher thread: ").add(std::strerror(r));
}

}  // namespace sockact_adopt
