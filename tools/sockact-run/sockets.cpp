// sockact-run: listening sockets and the NOTIFY_SOCKET.
// SPDX-License-Identifier: MIT

#include "sockets.hpp"

#include "messages.hpp"

#include <sockact/listen.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace sockact_run {

std::vector<held_socket> open_sockets(const options& o) {
  // Our own LISTEN_* (if any) are not for PROGRAM, and listen_or_bind must not take them.
  for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(v);
  std::vector<held_socket> out;
  for (std::size_t i = 0; i < o.listen.size(); ++i) {
    const std::string& a = o.listen[i];
    std::error_code ec;
    std::string why;
    const std::vector<sockact::endpoint> e = sockact::parse_endpoints(a, ec, &why);
    if (ec) die(exit_usage, "--listen: " + why);
    if (e.size() != 1 || e[0].type == sockact::endpoint::kind::activated)
      die(exit_usage, "--listen \"" + a + "\": give one address (host:port, [v6]:port, port, /path, @name)");
    sockact::listen_config config;
    config.address = a;
    config.type = o.datagram ? SOCK_DGRAM : SOCK_STREAM;
    // PROGRAM gets blocking sockets, as from systemd without NonBlocking=yes;
    // in --accept mode only sockact-run accepts, without blocking.
    config.nonblocking = o.accept;
    std::vector<sockact::server_socket> l = sockact::listen_or_bind(config, ec, &why);
    if (ec) die(exit_listen, "cannot listen on \"" + a + "\": " + why);
    held_socket s;
    s.listening = l.at(0).info.listening;
    s.fd = std::move(l.at(0).fd);
    s.address = a;
    s.name = i < o.fdnames.size() ? o.fdnames[i] : "unknown";
    out.push_back(std::move(s));
  }
  return out;
}

bool readable(int fd) noexcept {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

unsigned close_and_reset(held_socket& s) noexcept {
  unsigned reset = 0;
  if (s.fd && s.listening) {
    // Non-blocking: a process of PROGRAM may take a connection between our
    // poll and our accept. The flag is on the shared file description, which
    // is being given up anyway. The bound is the largest backlog (somaxconn).
    ::fcntl(s.fd.get(), F_SETFL, ::fcntl(s.fd.get(), F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < 65536; ++i) {
      const int c = ::accept4(s.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;
      }
      const linger reset_on_close{1, 0};
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close);
      ::close(c);
      ++reset;
    }
  }
  s.fd.reset();
  return reset;
}

notify_socket::notify_socket() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/sockact-run.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr)
    die(exit_listen, "NOTIFY_SOCKET: mkdtemp " + dir + ": " + errno_text(errno));
  dir_ = dir;
  path_ = dir + "/notify";
  fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sa.sun_path) die(exit_listen, "NOTIFY_SOCKET: path too long: " + path_);
  std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
  const int one = 1;
  if (!fd_ || ::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0 ||
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    die(exit_listen, "NOTIFY_SOCKET " + path_ + ": " + errno_text(errno));
}

void notify_socket::remove() noexcept {
  if (path_.empty()) return;
  ::unlink(path_.c_str());
  ::rmdir(dir_.c_str());
  path_.clear();
}

bool notify_socket::receive(message& m) const {
  char buf[4096];  // systemd's NOTIFY_BUFFER_MAX
  // The kernel passes at most 253 fds in one message (SCM_MAX_FD).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{buf, sizeof buf};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd_.get(), &h, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return false;
  m = message{};
  m.text.assign(buf, static_cast<std::size_t>(n));
  m.truncated = (h.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      m.pid = cred.pid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t k = 0; k < count; ++k) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        m.fds.emplace_back(fd);
      }
    }
  }
  return true;
}

}  // namespace sockact_run
