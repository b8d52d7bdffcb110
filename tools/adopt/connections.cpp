// SPDX-License-Identifier: MIT
// libsockact-adopt.so: the kernel's view of this program's connections, for
// the idle exit. Counting accept() and close() in the process misses what
// other processes hold (a Node cluster's workers, a pre-fork pool), sockets
// closed by routes that are not interposed (fclose() of an fdopen()ed socket,
// io_uring, raw system calls) and listeners the program bound itself. The
// kernel knows them all: sock_diag (NETLINK_SOCK_DIAG) lists the TCP
// connections on a listener's address, and the unix ones by the listener's
// path. Nothing here needs privileges.

#include "adopt.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <cstring>

namespace sockact_adopt {
namespace {

/// A listening socket of this process: the passed ones it still holds and
/// the ones it bound and listens on itself.
struct target {
  address addr;
  std::uint64_t ino = 0;
};

constexpr int max_targets = max_passed + max_listeners;
// netlink's NLA_* macros mix int and unsigned; these are the same numbers.
constexpr std::size_t attr_header = 4;
constexpr std::size_t align4(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}
constexpr std::size_t buffer_size = 32 * 1024;
alignas(8) char buffer[buffer_size];  // only the watcher thread asks

int sock_int(int fd, int option) {
  int v = -1;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, option, &v, &len) < 0) return -1;
  return v;
}

int collect(target* out) {
  int n = 0;
  auto add = [&](const address& a, std::uint64_t ino) {
    for (int i = 0; i < n; ++i)
      if (out[i].ino == ino) return;
    if (n < max_targets) out[n++] = target{a, ino};
  };
  for (int i = 0; i < passed_count; ++i) {
    const passed_socket& p = passed[i];
    struct stat st {};
    if (!p.open.load() || p.raw_len == 0 || p.type == SOCK_DGRAM || ::fstat(p.fd, &st) < 0 ||
        st.st_ino != p.ino || st.st_dev != p.dev)
      continue;
    add(p.bound, p.ino);
  }
  listener_ref own[max_listeners];
  const int k = own_listeners(own, max_listeners);
  for (int i = 0; i < k; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    address a;
    if (sock_int(own[i].fd, SO_TYPE) == SOCK_DGRAM ||
        real_getsockname()(own[i].fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0 ||
        !from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len, a))
      continue;
    add(a, own[i].ino);
  }
  return n;
}

/// Sends one dump request and calls `each` for every answer; false when the
/// kernel refused (no sock_diag for this family, a seccomp filter, ...).
template <typename Each>
bool dump(int nl, const void* request, std::size_t len, Each each) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl, request, len, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) < 0)
    return false;
  for (;;) {
    const ssize_t got = ::recv(nl, buffer, sizeof buffer, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (got == 0) return false;
    std::size_t left = static_cast<std::size_t>(got);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      each(h);
    }
  }
}

/// "source port is one of `ports`" as inet_diag bytecode: per port
/// S_GE p, S_LE p, a miss falling through to the next port's test and a hit
/// jumping to the end (accept); past the last test is reject. The shape of
/// iproute2's `ss sport = :a or sport = :b`, which the kernel's audit accepts.
std::size_t port_filter(const std::uint16_t* ports, int n, inet_diag_bc_op* out) {
  constexpr std::uint16_t op = sizeof(inet_diag_bc_op);  // 4
  std::size_t k = 0;
  const std::size_t total = static_cast<std::size_t>(n) * 4 * op + static_cast<std::size_t>(n - 1) * op;
  for (int i = 0; i < n; ++i) {
    out[k++] = {INET_DIAG_BC_S_GE, 2 * op, 5 * op};  // miss: past this test and its JMP
    out[k++] = {0, 0, ports[i]};
    out[k++] = {INET_DIAG_BC_S_LE, 2 * op, 3 * op};
    out[k++] = {0, 0, ports[i]};
    if (i + 1 < n) {
      const std::size_t at = k * op;  // hit: jump to the end
      out[k++] = {INET_DIAG_BC_JMP, op, static_cast<std::uint16_t>(total - at)};
    }
  }
  return total;
}

long count_tcp(int nl, const target* t, int n) {
  std::uint16_t ports[max_targets];
  int np = 0;
  for (int i = 0; i < n; ++i) {
    if (!t[i].addr.is_inet()) continue;
    bool dup = false;
    for (int j = 0; j < np; ++j) dup = dup || ports[j] == t[i].addr.port;
    if (!dup) ports[np++] = t[i].addr.port;
  }
  if (np == 0) return 0;
  struct {
    nlmsghdr h;
    inet_diag_req_v2 r;
    nlattr a;
    inet_diag_bc_op bc[max_targets * 5];
  } req{};
  const std::size_t bc_len = port_filter(ports, np, req.bc);
  req.a.nla_type = INET_DIAG_REQ_BYTECODE;
  req.a.nla_len = static_cast<std::uint16_t>(attr_header + bc_len);
  req.h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof req.r) + attr_header + bc_len);
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_protocol = IPPROTO_TCP;
  // Every state but LISTEN, TIME_WAIT, CLOSE and SYN_SENT: a connection being
  // set up, open, or half-closed.
  req.r.idiag_states = (1U << TCP_SYN_RECV) | (1U << TCP_ESTABLISHED) | (1U << TCP_CLOSE_WAIT) |
                       (1U << TCP_FIN_WAIT1) | (1U << TCP_FIN_WAIT2) | (1U << TCP_CLOSING) |
                       (1U << TCP_LAST_ACK);
  long count = 0;
  for (const int family : {AF_INET, AF_INET6}) {
    req.r.sdiag_family = static_cast<std::uint8_t>(family);
    req.h.nlmsg_seq++;
    const bool ok = dump(nl, &req, req.h.nlmsg_len, [&](const nlmsghdr* h) {
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return;
      const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      // Open, waiting in a backlog, or half-closed by a process that still
      // holds it. A socket closed by every process (orphaned: inode 0, the
      // kernel finishing its FIN) is no longer the program's.
      const bool live = m->idiag_state == TCP_SYN_RECV || m->idiag_state == TCP_ESTABLISHED ||
                        m->idiag_state == TCP_CLOSE_WAIT || m->idiag_inode != 0;
      if (!live) return;
      sockaddr_storage ss{};
      socklen_t len;
      if (m->idiag_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        in->sin_port = m->id.idiag_sport;
        std::memcpy(&in->sin_addr, m->id.idiag_src, 4);
        len = sizeof *in;
      } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = m->id.idiag_sport;
        std::memcpy(&in6->sin6_addr, m->id.idiag_src, 16);
        len = sizeof *in6;
      }
      address local;
      if (!from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len, local)) return;
      for (int i = 0; i < n; ++i)
        if (t[i].addr.is_inet() && t[i].addr.port == local.port &&
            (t[i].addr.any_ip() || std::memcmp(t[i].addr.ip, local.ip, 16) == 0)) {
          ++count;
          return;
        }
    });
    if (!ok) return -1;
  }
  return count;
}

long count_unix(int nl, const target* t, int n) {
  bool any = false;
  for (int i = 0; i < n; ++i) any = any || t[i].addr.is_unix();
  if (!any) return 0;
  struct {
    nlmsghdr h;
    unix_diag_req r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 3;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = (1U << TCP_ESTABLISHED) | (1U << TCP_LISTEN);
  req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
  long count = 0;
  const bool ok = dump(nl, &req, sizeof req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) return;
    const auto* m = static_cast<const unix_diag_msg*>(NLMSG_DATA(h));
    if (m->udiag_type == SOCK_DGRAM) return;
    sockaddr_un un{};
    socklen_t un_len = 0;
    std::uint32_t backlog = 0;
    const char* at = reinterpret_cast<const char*>(m + 1);
    const char* end = reinterpret_cast<const char*>(h) + h->nlmsg_len;
    for (nlattr a; end - at >= static_cast<std::ptrdiff_t>(attr_header); at += align4(a.nla_len)) {
      std::memcpy(&a, at, sizeof a);
      if (a.nla_len < attr_header || a.nla_len > end - at) break;
      const char* data = at + attr_header;
      const std::size_t dlen = a.nla_len - attr_header;
      if (a.nla_type == UNIX_DIAG_NAME && dlen > 0 && dlen <= sizeof un.sun_path) {
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, data, dlen);
        un_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + dlen);
      } else if (a.nla_type == UNIX_DIAG_RQLEN && dlen >= sizeof(unix_diag_rqlen)) {
        backlog = reinterpret_cast<const unix_diag_rqlen*>(data)->udiag_rqueue;
      }
    }
    if (m->udiag_state == TCP_LISTEN) {
      // Its backlog: connections not yet accepted.
      for (int i = 0; i < n; ++i)
        if (t[i].addr.is_unix() && t[i].ino == m->udiag_ino) count += backlog;
      return;
    }
    // An accepted connection carries its listener's name.
    address local;
    if (un_len == 0 || !from_sockaddr(reinterpret_cast<const sockaddr*>(&un), un_len, local)) return;
    for (int i = 0; i < n; ++i)
      if (t[i].addr.is_unix() && same_address(t[i].addr, local)) {
        ++count;
        return;
      }
  });
  return ok ? count : -1;
}

}  // namespace

long kernel_connections() {
  target t[max_targets];
  const int n = collect(t);
  if (n == 0) return 0;
  const int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  timeval tv{1, 0};
  ::setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const long tcp = count_tcp(nl, t, n);
  const long unx = tcp < 0 ? -1 : count_unix(nl, t, n);
  real_close()(nl);
  return tcp < 0 || unx < 0 ? -1 : tcp + unx;
}

}  // namespace sockact_adopt
