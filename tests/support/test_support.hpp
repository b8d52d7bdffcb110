// Helpers for tests that put real fds at 3.. and real LISTEN_* variables in
// this process. SPDX-License-Identifier: MIT
#ifndef SOCKACT_TEST_SUPPORT_HPP
#define SOCKACT_TEST_SUPPORT_HPP

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sockact_test {

/// The test slots: fds 3 .. 3+slot_count-1.
inline constexpr int slot_count = 16;

/// Moves whatever this test process has at the slots out of the way (once),
/// so tests can dup2() into them. A test process owns its fds.
inline void clear_slots_once() {
  static const bool done = [] {
    for (int fd = 3; fd < 3 + slot_count; ++fd) {
      if (::fcntl(fd, F_GETFD) < 0) continue;
      const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 1000);
      if (moved < 0) throw std::runtime_error("cannot move fd out of the test slots");
      ::close(fd);
    }
    return true;
  }();
  (void)done;
}

/// An fd owned by a test; closed at scope exit.
class owned_fd {
 public:
  owned_fd() = default;
  /// Fds that land in the slots are moved above them, so that passed_fds
  /// can close the slots without closing a test's own fds.
  explicit owned_fd(int fd) : fd_(fd) {
    if (fd_ >= 3 && fd_ < 3 + slot_count) {
      const int moved = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3 + slot_count);
      if (moved >= 0) {
        ::close(fd_);
        fd_ = moved;
      }
    }
  }
  owned_fd(owned_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~owned_fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

inline int check(int r, const char* what) {
  if (r < 0) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
  return r;
}

/// Reads `fd` (the read end of a child's stdout pipe) to EOF and closes it,
/// then waits for the child `pid`; returns what it wrote, and sets `status`
/// as waitpid() does.
inline std::string read_to_eof_and_wait(int fd, pid_t pid, int& status) {
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  status = 0;
  ::waitpid(pid, &status, 0);
  return text;
}

/// A TCP or UDP socket on loopback with a kernel-chosen port; listening for TCP.
inline owned_fd inet_socket(int family, int type, bool listen = true) {
  owned_fd fd(check(::socket(family, type | SOCK_CLOEXEC, 0), "socket"));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
  }
  if (listen && type == SOCK_STREAM) check(::listen(fd.get(), 16), "listen");
  return fd;
}

/// True when this host can bind the IPv6 loopback (::1).
inline bool ipv6_loopback_available() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// The local port of an inet socket.
inline int local_port(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  check(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), "getsockname");
  if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(sa).sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6&>(sa).sin6_port);
}

/// A TCP client connected to 127.0.0.1:`port`, with a 10 s receive timeout
/// (no test waits for ever); -1 when the connection fails.
inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/// A unix socket bound to `path` (leading '@' = abstract), listening for stream/seqpacket.
inline owned_fd unix_socket(const std::string& path, int type = SOCK_STREAM) {
  owned_fd fd(check(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0), "socket"));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  socklen_t len = 0;
  if (!path.empty() && path[0] == '@') {
    std::memcpy(a.sun_path + 1, path.data() + 1, path.size() - 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    ::unlink(path.c_str());
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    len = static_cast<socklen_t>(sizeof a);
  }
  check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len), "bind");
  if (type != SOCK_DGRAM) check(::listen(fd.get(), 16), "listen");
  return fd;
}

/// Places copies of `fds` at 3, 4, ... with FD_CLOEXEC cleared (as a manager
/// passes them) and closes the remaining slots; closes all slots at scope exit.
class passed_fds {
 public:
  explicit passed_fds(const std::vector<int>& fds) {
    clear_slots_once();
    // Sources may sit in the slots themselves: copy them above first.
    std::vector<int> high;
    for (const int fd : fds) high.push_back(fd < 0 ? -1 : check(::fcntl(fd, F_DUPFD_CLOEXEC, 200), "dup"));
    close_slots();
    int slot = 3;
    for (const int fd : high) {
      if (fd >= 0) {
        check(::dup2(fd, slot), "dup2");  // dup2 clears FD_CLOEXEC, as a manager passes fds
        ::close(fd);
      }
      ++slot;
    }
  }
  passed_fds(const passed_fds&) = delete;
  passed_fds& operator=(const passed_fds&) = delete;
  ~passed_fds() { close_slots(); }

  static void close_slots() {
    for (int fd = 3; fd < 3 + slot_count; ++fd) ::close(fd);
  }
};

inline bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}
inline bool has_cloexec(int fd) {
  const int f = ::fcntl(fd, F_GETFD);
  return f >= 0 && (f & FD_CLOEXEC) != 0;
}

inline const char* const listen_variables[] = {"LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS",
                                               "LISTEN_FDNAMES"};

/// Sets the LISTEN_* variables for one test (nullopt = unset) and removes
/// them afterwards.
class listen_env {
 public:
  listen_env(std::optional<std::string> pid, std::optional<std::string> fds,
             std::optional<std::string> names = std::nullopt,
             std::optional<std::string> pidfdid = std::nullopt) {
    set("LISTEN_PID", pid);
    set("LISTEN_FDS", fds);
    set("LISTEN_FDNAMES", names);
    set("LISTEN_PIDFDID", pidfdid);
  }
  listen_env(const listen_env&) = delete;
  listen_env& operator=(const listen_env&) = delete;
  ~listen_env() {
    for (const char* v : listen_variables) ::unsetenv(v);
  }
  static std::string self() { return std::to_string(::getpid()); }
  static std::optional<std::string> get(const char* name) {
    if (const char* v = std::getenv(name)) return std::string(v);
    return std::nullopt;
  }
  static bool any_set() {
    for (const char* v : listen_variables)
      if (std::getenv(v) != nullptr) return true;
    return false;
  }

 private:
  static void set(const char* name, const std::optional<std::string>& v) {
    if (v)
      ::setenv(name, v->c_str(), 1);
    else
      ::unsetenv(name);
  }
};

/// True when this build delegates to libsystemd (which predates LISTEN_PIDFDID).
inline constexpr bool delegates_to_libsystemd = SOCKACT_USE_LIBSYSTEMD != 0;

}  // namespace sockact_test

#endif  // SOCKACT_TEST_SUPPORT_HPP
