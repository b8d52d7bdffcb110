// Runs a server in a forked child as a service manager starts one: the
// listening (or Accept=yes) socket at fd 3, real LISTEN_* and *_TIMEOUT
// variables, the library's log lines sent back through a pipe.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_TEST_DRIVER_CHILD_HPP
#define SOCKACT_TEST_DRIVER_CHILD_HPP

#include "test_support.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sockact_test {

/// The write end of the log pipe, in the child.
inline int& child_log_fd() {
  static int fd = -1;
  return fd;
}

/// A log function for activation_config::log: one line to the parent.
inline void log_to_parent(const std::string& line) {
  const std::string l = line + "\n";
  (void)!::write(child_log_fd(), l.data(), l.size());
}

/// A forked child given `passed` at fd 3 and `env`; `body()` is its main.
class driver_child {
 public:
  driver_child(int passed, const std::map<std::string, std::string>& env, const std::function<int()>& body) {
    int p[2];
    check(::pipe2(p, O_CLOEXEC), "pipe2");
    pid_ = check(::fork(), "fork");
    if (pid_ == 0) {
      ::close(p[0]);
      const int log = ::fcntl(p[1], F_DUPFD_CLOEXEC, 100);
      const int fd = ::fcntl(passed, F_DUPFD_CLOEXEC, 100);
      for (int i = 3; i < 100; ++i) ::close(i);
      ::dup2(fd, 3);  // without FD_CLOEXEC, as a manager passes it
      ::close(fd);
      child_log_fd() = log;
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
      ::setenv("LISTEN_FDS", "1", 1);
      ::unsetenv("LISTEN_FDNAMES");
      ::unsetenv("NOTIFY_SOCKET");
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      int status = 3;
      try {
        status = body();
      } catch (const std::exception& e) {
        log_to_parent(std::string("child: exception: ") + e.what());
      }
      ::_exit(status);
    }
    ::close(p[1]);
    log_ = owned_fd(p[0]);
  }
  driver_child(const driver_child&) = delete;
  driver_child& operator=(const driver_child&) = delete;
  ~driver_child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  pid_t pid() const { return pid_; }
  void signal(int signo) { ::kill(pid_, signo); }

  /// Reads log lines until one contains `part` or `within` passes.
  bool wait_for_log(const std::string& part, std::chrono::milliseconds within = std::chrono::seconds(8)) {
    const auto until = std::chrono::steady_clock::now() + within;
    for (;;) {
      if (lines_.find(part) != std::string::npos) return true;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count())))
        return lines_.find(part) != std::string::npos;
    }
  }
  /// Waits at most `within` for the exit: its status as waitpid() gives it, or -1.
  int wait_exit(std::chrono::milliseconds within = std::chrono::seconds(8)) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        while (read_some(0)) {
        }
        return status;
      }
      read_some(20);  // also the wait between looks
    }
    return -1;
  }
  /// Still running (not yet exited)?
  bool running() {
    int status = 0;
    if (reaped_) return false;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    reaped_ = true;
    return false;
  }
  const std::string& log() const { return lines_; }

 private:
  bool read_some(int timeout_ms) {
    pollfd p{log_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[512];
    const ssize_t n = ::read(log_.get(), buf, sizeof buf);
    if (n <= 0) return false;
    lines_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  bool reaped_ = false;
  owned_fd log_;
  std::string lines_;
};

/// CPU time (user + system) of this process so far.
inline std::chrono::microseconds cpu_time() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace sockact_test

#endif  // SOCKACT_TEST_DRIVER_CHILD_HPP
