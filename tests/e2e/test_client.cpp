// A minimal client for the e2e tests where curl does not fit: sends one
// datagram (UDP or unix datagram) and prints the one reply.
//   sockact-test-client udp HOST PORT MESSAGE
//   sockact-test-client unix-dgram PATH MESSAGE
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
int fail(const char* what) {
  std::perror(what);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s udp HOST PORT MESSAGE | unix-dgram PATH MESSAGE\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  int fd = -1;
  const char* message = nullptr;
  if (mode == "udp" && argc == 5) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(argv[2], argv[3], &hints, &res) != 0 || res == nullptr) return fail("getaddrinfo");
    fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) return fail("connect");
    freeaddrinfo(res);
    message = argv[4];
  } else if (mode == "unix-dgram" && argc == 4) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un self{};
    self.sun_family = AF_UNIX;  // autobind an abstract name so the server can reply
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) < 0) return fail("bind");
    sockaddr_un peer{};
    peer.sun_family = AF_UNIX;
    std::snprintf(peer.sun_path, sizeof peer.sun_path, "%s", argv[2]);
    if (connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) < 0) return fail("connect");
    message = argv[3];
  } else {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  if (send(fd, message, std::strlen(message), 0) < 0) return fail("send");
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) {
    std::fprintf(stderr, "no reply within 10 s\n");
    return 1;
  }
  char buf[65536];
  const ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) return fail("recv");
  std::fwrite(buf, 1, static_cast<std::size_t>(n), stdout);
  close(fd);
  return 0;
}
