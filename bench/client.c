/* client: one HTTP GET to 127.0.0.1:PORT, timed from just before connect() to
 * the first byte of the response (CLOCK_MONOTONIC).
 *
 *   client PORT [RETRY_MS]
 *
 * Prints "<first_byte_us> <total_us> <status line>" and exits 0 when the answer
 * starts with "HTTP/1.1 200". RETRY_MS > 0: retries a refused connect for that
 * long (to wait for a server that binds its own socket); the time reported is
 * that of the successful attempt. The response is read to EOF (the request
 * says Connection: close), so the server never sees a reset.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT [RETRY_MS]\n", argv[0]);
    return 2;
  }
  const int port = atoi(argv[1]);
  const double retry_us = argc > 2 ? atof(argv[2]) * 1000.0 : 0.0;
  static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const double deadline = now_us() + retry_us;
  int fd;
  double t0;
  for (;;) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return perror("socket"), 1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t0 = now_us();
    if (connect(fd, (struct sockaddr*)&a, sizeof a) == 0) break;
    if (errno != ECONNREFUSED || now_us() > deadline) return perror("connect"), 1;
    close(fd);
    usleep(2000);
  }
  if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) return perror("write"), 1;
  char buf[65536];
  size_t have = 0;
  double t1 = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return perror("read"), 1;
    if (n == 0) break;
    if (t1 == 0) t1 = now_us();
    have += (size_t)n;
    if (have == sizeof buf - 1) have = 64; /* keep the status line, drop the rest */
  }
  const double t2 = now_us();
  buf[have] = 0;
  char* eol = strstr(buf, "\r\n");
  if (eol) *eol = 0;
  if (t1 == 0) {
    fprintf(stderr, "client: no response\n");
    return 1;
  }
  printf("%.1f %.1f %s\n", t1 - t0, t2 - t0, buf);
  return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : 1;
}
