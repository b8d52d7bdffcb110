/* SPDX-License-Identifier: MIT
 * A server that knows nothing about socket activation, for the
 * libsockact-adopt.so tests, and the client that talks to it.
 *
 *   adopt_probe serve ADDRESS [OPTIONS]   binds ADDRESS, listens, answers each
 *       connection with "hello pid=P fd=F\n" and waits for the peer to close.
 *       -n             SOCK_NONBLOCK on the listener
 *       -k             no SOCK_CLOEXEC on the listener
 *       -6             force an IPv6 socket for an IPv4 address (v4-mapped)
 *       -u             unlink(ADDRESS) before bind (unix paths), as many servers do
 *       -s N           after N connections, shutdown(listener, SHUT_RDWR) and go on
 *       -x N           exit 0 after N connections
 *       -e             at start, run a child shell that prints LD_PRELOAD and LISTEN_FDS
 *       -r N           after every N connections, close the listener and bind and listen
 *                      on ADDRESS again with a new socket (a reload)
 *       -m ADDRESS3    rebind (-r) on ADDRESS3 instead (a reload that moved)
 *       -f             close each connection with fclose(fdopen()): a route the preload
 *                      library does not see
 *       -p ADDRESS2    also listen on ADDRESS2 (a second port) and serve it the same way
 *       -c             close fd 3 first, as daemonising code that closes every fd does
 *   adopt_probe idle SECONDS               binds nothing; sleeps, exits 0
 *   adopt_probe connect ADDRESS [HOLD_MS]  prints the line the server sends,
 *       keeps the connection open HOLD_MS, exits 0; 1 when nothing came in 3 s.
 * ADDRESS: 1.2.3.4:PORT, [::1]:PORT, /path or @abstract. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int parse(const char* s, int force6, struct sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  if (s[0] == '/' || s[0] == '@') {
    struct sockaddr_un* un = (struct sockaddr_un*)ss;
    size_t n = strlen(s);
    if (n >= sizeof un->sun_path) return -1;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, s, n);
    if (s[0] == '@') un->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '/' ? 1 : 0));
    return 0;
  }
  const char* colon = strrchr(s, ':');
  if (colon == NULL) return -1;
  char host[64];
  size_t hl = (size_t)(colon - s);
  if (hl >= sizeof host) return -1;
  memcpy(host, s, hl);
  host[hl] = '\0';
  unsigned short port = (unsigned short)atoi(colon + 1);
  if (host[0] == '[') {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)ss;
    host[hl - 1] = '\0';
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1) return -1;
    *len = sizeof *in6;
    return 0;
  }
  if (force6) {
    char mapped[80];
    snprintf(mapped, sizeof mapped, "[::ffff:%s]:%u", host, port);
    if (strcmp(host, "0.0.0.0") == 0) snprintf(mapped, sizeof mapped, "[::]:%u", port);
    return parse(mapped, 0, ss, len);
  }
  struct sockaddr_in* in = (struct sockaddr_in*)ss;
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1) return -1;
  *len = sizeof *in;
  return 0;
}

static void describe(const struct sockaddr_storage* ss, socklen_t len, char* out, size_t size) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* in = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    snprintf(out, size, "%s:%u", text, ntohs(in->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    snprintf(out, size, "[%s]:%u", text, ntohs(in6->sin6_port));
  } else if (ss->ss_family == AF_UNIX) {
    const struct sockaddr_un* un = (const struct sockaddr_un*)ss;
    size_t n =
        len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    if (n > 0 && un->sun_path[0] == '\0')
      snprintf(out, size, "@%.*s", (int)(n - 1), un->sun_path + 1);
    else
      snprintf(out, size, "%s", un->sun_path);
  } else {
    snprintf(out, size, "family %d", ss->ss_family);
  }
}

struct listener {
  const char* where;
  int fd;
};
struct listen_options {
  int force6, nonblock, cloexec, unlink_first;
};

/* socket(), bind(), listen() on l->where; prints what it got. */
static int open_listener(struct listener* l, const struct listen_options* o) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (parse(l->where, o->force6, &ss, &len) < 0)
    return fprintf(stderr, "probe: bad address %s\n", l->where), -1;
  int type = SOCK_STREAM | (o->nonblock ? SOCK_NONBLOCK : 0) | (o->cloexec ? SOCK_CLOEXEC : 0);
  int fd = socket(ss.ss_family, type, 0);
  if (fd < 0) return perror("probe: socket"), -1;
  int one = 1;
  if (ss.ss_family != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (o->unlink_first && l->where[0] == '/')
    fprintf(stderr, "probe: unlink(%s) = %d\n", l->where, unlink(l->where));
  if (bind(fd, (struct sockaddr*)&ss, len) < 0)
    return fprintf(stderr, "probe: bind %s: %s\n", l->where, strerror(errno)), -1;
  if (listen(fd, 16) < 0) return perror("probe: listen"), -1;
  struct sockaddr_storage got;
  socklen_t glen = sizeof got;
  char text[160];
  getsockname(fd, (struct sockaddr*)&got, &glen);
  describe(&got, glen, text, sizeof text);
  fprintf(stderr, "probe: listening fd=%d on %s nonblock=%d cloexec=%d\n", fd, text,
          (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0, (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  l->fd = fd;
  return 0;
}

static int serve(int argc, char** argv) {
  int nonblock = 0, cloexec = 1, force6 = 0, unlink_first = 0, shutdown_after = 0, exit_after = 0, env = 0;
  int rebind_every = 0, use_fclose = 0;
  const char* second = NULL;
  const char* moved = NULL;
  int opt;
  int close_3 = 0;
  while ((opt = getopt(argc, argv, "nk6us:x:er:fp:m:c")) != -1) {
    switch (opt) {
      case 'n':
        nonblock = 1;
        break;
      case 'k':
        cloexec = 0;
        break;
      case '6':
        force6 = 1;
        break;
      case 'u':
        unlink_first = 1;
        break;
      case 's':
        shutdown_after = atoi(optarg);
        break;
      case 'x':
        exit_after = atoi(optarg);
        break;
      case 'e':
        env = 1;
        break;
      case 'r':
        rebind_every = atoi(optarg);
        break;
      case 'f':
        use_fclose = 1;
        break;
      case 'p':
        second = optarg;
        break;
      case 'm':
        moved = optarg;
        break;
      case 'c':
        close_3 = 1;
        break;
      default:
        return 2;
    }
  }
  if (optind >= argc) return 2;
  const char* where = argv[optind];
  if (env) {
    fflush(stderr);
    int r = system(
        "echo \"probe child: LD_PRELOAD=${LD_PRELOAD-unset} LISTEN_FDS=${LISTEN_FDS-unset} "
        "LISTEN_PID=${LISTEN_PID-unset} LISTEN_FDNAMES=${LISTEN_FDNAMES-unset}\" >&2");
    (void)r;
  }
  if (close_3) close(3);
  struct listener main_l = {where, -1}, second_l = {second, -1};
  struct listen_options o = {force6, nonblock, cloexec, unlink_first};
  if (open_listener(&main_l, &o) < 0) return 1;
  if (second != NULL && open_listener(&second_l, &o) < 0) return 1;
  for (int served = 0;;) {
    struct pollfd p[2] = {{main_l.fd, POLLIN, 0}, {second_l.fd, POLLIN, 0}};
    if (poll(p, second != NULL ? 2 : 1, -1) < 0) continue;
    const int fd = (p[0].revents & POLLIN) != 0 ? main_l.fd : second_l.fd;
    int c = accept(fd, NULL, NULL);
    if (c < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fprintf(stderr, "probe: accept: %s\n", strerror(errno)), 1;
    }
    char msg[64];
    int n = snprintf(msg, sizeof msg, "hello pid=%d fd=%d\n", (int)getpid(), fd);
    if (write(c, msg, (size_t)n) < 0) perror("probe: write");
    char buf[256];
    while (read(c, buf, sizeof buf) > 0) {
    }
    if (use_fclose) {
      FILE* f = fdopen(c, "r+"); /* fclose() closes c inside libc, past the library */
      if (f != NULL) fclose(f);
    } else {
      close(c);
    }
    ++served;
    if (served == shutdown_after) {
      int r = shutdown(main_l.fd, SHUT_RDWR);
      fprintf(stderr, "probe: shutdown(listener) = %d\n", r);
    }
    if (served == exit_after) return 0;
    if (rebind_every > 0 && served % rebind_every == 0) {
      close(main_l.fd);
      if (moved != NULL) main_l.where = moved;
      fprintf(stderr, "probe: closed the listener; binding %s again\n", main_l.where);
      if (open_listener(&main_l, &o) < 0) return 1;
    }
  }
}

static int client(const char* where, int hold_ms) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (parse(where, 0, &ss, &len) < 0) return fprintf(stderr, "probe: bad address %s\n", where), 2;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&ss, len) < 0)
    return fprintf(stderr, "probe: connect %s: %s\n", where, strerror(errno)), 1;
  struct pollfd p = {fd, POLLIN, 0};
  char buf[128];
  ssize_t n = 0;
  if (poll(&p, 1, 3000) == 1) n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) return fprintf(stderr, "probe: no answer from %s within 3 s\n", where), 1;
  buf[n] = '\0';
  fputs(buf, stdout);
  fflush(stdout);
  if (hold_ms > 0) {
    struct timespec ts = {hold_ms / 1000, (long)(hold_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "serve") == 0) return serve(argc - 1, argv + 1);
  if (argc >= 3 && strcmp(argv[1], "connect") == 0) return client(argv[2], argc > 3 ? atoi(argv[3]) : 0);
  if (argc == 3 && strcmp(argv[1], "idle") == 0) {
    sleep((unsigned)atoi(argv[2]));
    return 0;
  }
  fprintf(stderr,
          "usage: %s serve ADDRESS [-n] [-k] [-6] [-u] [-s N] [-x N] [-e] [-r N] [-m ADDRESS3] [-f] [-p "
          "ADDRESS2] [-c] | idle SECONDS | "
          "connect ADDRESS "
          "[HOLD_MS]\n",
          argv[0]);
  return 2;
}
