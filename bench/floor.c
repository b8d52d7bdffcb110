/* floor: the least a socket-activated HTTP responder can do, the reference for
 * the cold-start benchmark. Accepts one connection on fd 3 (the listening
 * socket systemd-socket-activate passes), reads the request, writes a fixed
 * response and exits. No LISTEN_* checks, no event loop, no C++ runtime.
 * SPDX-License-Identifier: MIT */
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  static const char response[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nfloor\n";
  char buf[4096];
  int c = accept(3, 0, 0);
  if (c < 0) return 1;
  /* Read before answering: closing with unread data would reset the connection. */
  if (read(c, buf, sizeof buf) <= 0) return 1;
  if (write(c, response, sizeof response - 1) != (ssize_t)(sizeof response - 1)) return 1;
  return 0;
}
