// sockact-run: the sockets it holds (the listening ones PROGRAM gets, and its
// private NOTIFY_SOCKET).
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_SOCKETS_HPP
#define SOCKACT_RUN_SOCKETS_HPP

#include "options.hpp"

#include <sockact/unique_fd.hpp>

#include <sys/types.h>
#include <string>
#include <vector>

namespace sockact_run {

struct held_socket {
  sockact::unique_fd fd;
  std::string address;  // as given to --listen
  std::string name;     // LISTEN_FDNAMES entry
  bool listening = false;
};

// One per --listen, in order; exits with 2 (bad address) or 3 (cannot listen).
std::vector<held_socket> open_sockets(const options& o);

// Has the socket something waiting (a connection, a datagram)?
bool readable(int fd) noexcept;

// Closes a socket sockact-run gives up: the connections waiting in a
// listening socket's queue are accepted and reset first (SO_LINGER 0), so
// that their clients fail at once even if a process of PROGRAM still holds a
// copy of the socket. Never shutdown(2). Returns how many were reset.
unsigned close_and_reset(held_socket& s) noexcept;

// The private NOTIFY_SOCKET: a datagram socket in a fresh temporary folder,
// both removed at exit.
class notify_socket {
 public:
  notify_socket();
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;
  ~notify_socket() { remove(); }

  void remove() noexcept;
  int fd() const noexcept { return fd_.get(); }
  const std::string& path() const noexcept { return path_; }

  struct message {
    pid_t pid = 0;
    std::string text;
    std::vector<sockact::unique_fd> fds;  // SCM_RIGHTS, close-on-exec
    bool truncated = false;               // more fds were sent than fit: the kernel closed the rest
  };
  // One datagram; false when none is waiting.
  bool receive(message& m) const;

 private:
  std::string dir_, path_;
  sockact::unique_fd fd_;
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_SOCKETS_HPP
