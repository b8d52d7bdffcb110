// SPDX-License-Identifier: MIT
// libsockact-adopt.so: makes an unmodified server take the sockets a service
// manager passed (LISTEN_FDS), by turning its bind() into a dup3() of the
// matching passed fd, and exit when idle (IDLE_TIMEOUT). Used as LD_PRELOAD.
// The README's section "Servers that cannot take an fd" is the user's guide.
//
// Rules of this file: no exceptions (built with -fno-exceptions), no static
// objects with constructors, nothing but atomics and syscalls on the paths
// that close() and accept() take (they may run in signal handlers or right
// after fork()), errno as the real call left it.

#include <sockact/diagnose.hpp>
#include <sockact/idle.hpp>
#include <sockact/listen_fds.hpp>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#define SOCKACT_ADOPT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// ---------------------------------------------------------------- limits
constexpr int max_passed = 64;                                 // passed fds looked at; more are left alone
constexpr std::size_t max_name = 256;                          // FileDescriptorName= is at most 255 bytes
constexpr int max_map = 32;                                    // SOCKACT_ADOPT entries
constexpr std::int64_t warn_after_ms = 3000;                   // "nothing adopted" warning
constexpr std::size_t max_tracked_fds = std::size_t{1} << 20;  // connection bitmap: 128 KiB

// ---------------------------------------------------------------- real calls
template <typename F>
F next(const char* name, std::atomic<void*>& slot) noexcept {
  void* p = slot.load(std::memory_order_acquire);
  if (p == nullptr) {
    p = ::dlsym(RTLD_NEXT, name);
    slot.store(p, std::memory_order_release);
  }
  return reinterpret_cast<F>(p);
}

#define SOCKACT_ADOPT_REAL(name, type)       \
  type real_##name() noexcept {              \
    static std::atomic<void*> slot{nullptr}; \
    return next<type>(#name, slot);          \
  }

using bind_fn = int (*)(int, const sockaddr*, socklen_t);
using listen_fn = int (*)(int, int);
using accept_fn = int (*)(int, sockaddr*, socklen_t*);
using accept4_fn = int (*)(int, sockaddr*, socklen_t*, int);
using close_fn = int (*)(int);
using shutdown_fn = int (*)(int, int);
using dup2_fn = int (*)(int, int);
using dup3_fn = int (*)(int, int, int);
using close_range_fn = int (*)(unsigned, unsigned, int);
using unlink_fn = int (*)(const char*);
using unlinkat_fn = int (*)(int, const char*, int);
using syscall_fn = long (*)(long, long, long, long, long, long, long);
SOCKACT_ADOPT_REAL(bind, bind_fn)
SOCKACT_ADOPT_REAL(listen, listen_fn)
SOCKACT_ADOPT_REAL(accept, accept_fn)
SOCKACT_ADOPT_REAL(accept4, accept4_fn)
SOCKACT_ADOPT_REAL(close, close_fn)
SOCKACT_ADOPT_REAL(shutdown, shutdown_fn)
SOCKACT_ADOPT_REAL(dup2, dup2_fn)
SOCKACT_ADOPT_REAL(dup3, dup3_fn)
SOCKACT_ADOPT_REAL(close_range, close_range_fn)
SOCKACT_ADOPT_REAL(unlink, unlink_fn)
SOCKACT_ADOPT_REAL(unlinkat, unlinkat_fn)
SOCKACT_ADOPT_REAL(remove, unlink_fn)
SOCKACT_ADOPT_REAL(syscall, syscall_fn)

// ---------------------------------------------------------------- log lines
// Formatted into a stack buffer and written with one write(2): usable from
// any context, no allocation, no stdio lock.
bool debug_on = false;

class line {
 public:
  explicit line(const char* level) { add("sockact-adopt[").num(::getpid()).add("]: ").add(level); }
  line& add(const char* s) {
    while (*s != '\0' && n_ < sizeof buf_ - 1) buf_[n_++] = *s++;
    return *this;
  }
  line& add(const char* s, std::size_t len) {
    for (std::size_t i = 0; i < len && n_ < sizeof buf_ - 1; ++i) buf_[n_++] = s[i];
    return *this;
  }
  line& num(long long v) {
    char tmp[24];
    int k = 0;
    unsigned long long u =
        v < 0 ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do {
      tmp[k++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) add("-");
    while (k > 0 && n_ < sizeof buf_ - 1) buf_[n_++] = tmp[--k];
    return *this;
  }
  /// An address as the user writes it: 1.2.3.4:80, [::1]:80, /path, @abstract.
  line& addr(const sockaddr* sa, socklen_t len);
  ~line() {
    const int saved = errno;
    buf_[n_++] = '\n';
    ssize_t r = ::write(STDERR_FILENO, buf_, n_);
    (void)r;
    errno = saved;
  }
  line(const line&) = delete;
  line& operator=(const line&) = delete;

 private:
  char buf_[768];
  std::size_t n_ = 0;
};

line& line::addr(const sockaddr* sa, socklen_t len) {
  char text[INET6_ADDRSTRLEN];
  if (sa == nullptr || len < sizeof(sa_family_t)) return add("(none)");
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return add(text).add(":").num(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return add("[").add(text).add("]:").num(ntohs(in6->sin6_port));
  }
  if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (len <= off) return add("(unnamed unix socket)");
    std::size_t plen = len - off;
    if (un->sun_path[0] == '\0') return add("@").add(un->sun_path + 1, plen - 1);
    return add(un->sun_path, ::strnlen(un->sun_path, plen));
  }
  return add("(family ").num(sa->sa_family).add(")");
}

#define SOCKACT_ADOPT_DEBUG(...) \
  do {                           \
    if (debug_on) {              \
      line l("");                \
      l __VA_ARGS__;             \
    }                            \
  } while (0)

// ---------------------------------------------------------------- addresses
/// What a program binds, or a passed socket is bound to, in one comparable
/// form. IPv4 addresses are kept v4-mapped and 0.0.0.0 as ::, so that an IPv6
/// program binding [::]:80 or [::ffff:127.0.0.1]:80 finds the IPv4 socket.
struct address {
  int family = AF_UNSPEC;  // AF_INET, AF_INET6, AF_UNIX
  unsigned char ip[16] = {};
  bool any_host = false;  // from SOCKACT_ADOPT's *:PORT
  std::uint16_t port = 0;
  char path[sizeof(sockaddr_un::sun_path)] = {};  // abstract: leading '\0'
  std::size_t path_len = 0;

  bool is_inet() const { return family == AF_INET || family == AF_INET6; }
  bool is_unix() const { return family == AF_UNIX; }
};

void set_v4(address& a, const in_addr& v4) {
  std::memset(a.ip, 0, sizeof a.ip);
  if (v4.s_addr == htonl(INADDR_ANY)) return;
  a.ip[10] = 0xff;
  a.ip[11] = 0xff;
  std::memcpy(a.ip + 12, &v4, 4);
}

bool from_sockaddr(const sockaddr* sa, socklen_t len, address& out) {
  out = address{};
  if (sa == nullptr || len < sizeof(sa_family_t)) return false;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    out.family = AF_INET;
    set_v4(out, in->sin_addr);
    out.port = ntohs(in->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    out.family = AF_INET6;
    std::memcpy(out.ip, &in6->sin6_addr, 16);
    static const unsigned char any_v4_mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    if (std::memcmp(out.ip, any_v4_mapped, 16) == 0) std::memset(out.ip, 0, 16);
    out.port = ntohs(in6->sin6_port);
    return true;
  }
  if (sa->sa_family == AF_UNIX) {
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (len <= off) return false;  // unnamed: nothing to match
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    std::size_t plen = std::min<std::size_t>(len - off, sizeof out.path);
    if (un->sun_path[0] != '\0') plen = ::strnlen(un->sun_path, plen);  // a path ends at its NUL
    if (plen == 0) return false;
    out.family = AF_UNIX;
    std::memcpy(out.path, un->sun_path, plen);
    out.path_len = plen;
    return true;
  }
  return false;
}

bool same_address(const address& a, const address& b) {
  if (a.is_inet() && b.is_inet()) return a.port == b.port && std::memcmp(a.ip, b.ip, 16) == 0;
  if (a.is_unix() && b.is_unix())
    return a.path_len == b.path_len && std::memcmp(a.path, b.path, a.path_len) == 0;
  return false;
}

/// SOCKACT_ADOPT's address grammar: 1.2.3.4:80, [::1]:80, *:80, /path, @abstract.
bool parse_address(const std::string& s, address& out) {
  out = address{};
  if (s.empty()) return false;
  if (s[0] == '/' || s[0] == '@') {
    if (s.size() > sizeof out.path || (s[0] == '/' && s.size() >= sizeof out.path)) return false;
    if (s[0] == '@' && s.size() < 2) return false;
    out.family = AF_UNIX;
    std::memcpy(out.path, s.data(), s.size());
    if (s[0] == '@') out.path[0] = '\0';
    out.path_len = s.size();
    return true;
  }
  const std::size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 >= s.size() || colon + 6 < s.size()) return false;
  unsigned long port = 0;
  for (std::size_t i = colon + 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    port = port * 10 + static_cast<unsigned long>(s[i] - '0');
  }
  if (port == 0 || port > 65535) return false;
  out.port = static_cast<std::uint16_t>(port);
  const std::string host = s.substr(0, colon);
  if (host == "*") {
    out.family = AF_INET6;
    out.any_host = true;
    return true;
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    in6_addr v6{};
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) != 1) return false;
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = v6;
    sa.sin6_port = htons(out.port);
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&sa), sizeof sa, out);
  }
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) != 1) return false;
  out.family = AF_INET;
  set_v4(out, v4);
  return true;
}

// ---------------------------------------------------------------- state
// Written once by the constructor before main(); afterwards only the atomics change.
struct passed_socket {
  int fd = -1;
  char name[max_name] = {};
  int type = 0;
  int protocol = 0;
  address bound;
  sockaddr_storage raw{};
  socklen_t raw_len = 0;
  std::atomic<int> owner{-1};  // the program's fd it is adopted onto, -1 = free
  std::atomic<bool> open{true};
};

struct map_entry {
  char name[max_name] = {};
  address addr;
};

passed_socket passed[max_passed];
int passed_count = 0;
int passed_total = 0;  // LISTEN_FDS, for the single-fd rule
map_entry adopt_map[max_map];
int map_count = 0;

std::int64_t idle_ms = 0;            // 0 = no idle exit
std::uint64_t* conn_bits = nullptr;  // one bit per fd accepted from an adopted socket
std::size_t conn_bits_fds = 0;
std::atomic<long> open_conns{0};
std::atomic<std::int64_t> last_activity_ms{0};
std::atomic<int> adoptions{0};
std::atomic<bool> inet_bind_seen{false};  // the single-fd rule takes the first bind only
std::atomic<bool> unix_bind_seen{false};
std::atomic<bool> untracked_logged{false};
std::atomic<pid_t> watcher_pid{0};
std::int64_t start_ms = 0;

std::int64_t now_us(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t now_ms() {
  return now_us(CLOCK_MONOTONIC) / 1000;
}

/// The passed socket adopted onto `fd`, or a passed fd itself; nullptr otherwise.
passed_socket* adopted(int fd) {
  if (fd < 0) return nullptr;
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].owner.load(std::memory_order_acquire) == fd || passed[i].fd == fd) return &passed[i];
  return nullptr;
}

// ---------------------------------------------------------------- connections
void track(int fd) {
  if (conn_bits == nullptr) return;
  if (fd < 0 || static_cast<std::size_t>(fd) >= conn_bits_fds) {
    if (!untracked_logged.exchange(true))
      line("warning: ")
          .add("fd ")
          .num(fd)
          .add(" is above the fds tracked for IDLE_TIMEOUT; such connections do not count");
    return;
  }
  const std::uint64_t bit = std::uint64_t{1} << (fd % 64);
  const std::uint64_t before = __atomic_fetch_or(&conn_bits[fd / 64], bit, __ATOMIC_ACQ_REL);
  if ((before & bit) == 0) open_conns.fetch_add(1, std::memory_order_acq_rel);
}

void untrack(int fd) {
  if (conn_bits == nullptr || fd < 0 || static_cast<std::size_t>(fd) >= conn_bits_fds) return;
  const std::uint64_t bit = std::uint64_t{1} << (fd % 64);
  const std::uint64_t before = __atomic_fetch_and(&conn_bits[fd / 64], ~bit, __ATOMIC_ACQ_REL);
  if ((before & bit) != 0 && open_conns.fetch_sub(1, std::memory_order_acq_rel) == 1)
    last_activity_ms.store(now_ms(), std::memory_order_release);
}

/// Everything close() of `fd` changes here; called before the real close, so
/// that a new fd with the same number is never mistaken for this one.
void forget(int fd) {
  untrack(fd);
  for (int i = 0; i < passed_count; ++i) {
    int expected = fd;
    if (passed[i].owner.compare_exchange_strong(expected, -1, std::memory_order_acq_rel))
      SOCKACT_ADOPT_DEBUG(.add("close(")
                              .num(fd)
                              .add("): the program closed its copy of passed fd ")
                              .num(passed[i].fd)
                              .add("; the manager's socket stays open"));
    if (passed[i].fd == fd) passed[i].open.store(false, std::memory_order_release);
  }
}

/// A connection waits in the backlog of an adopted socket.
bool backlog_waiting() {
  pollfd fds[max_passed];
  nfds_t n = 0;
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].open.load(std::memory_order_acquire) && passed[i].type != SOCK_DGRAM)
      fds[n++] = pollfd{passed[i].fd, POLLIN, 0};
  return n > 0 && ::poll(fds, n, 0) > 0;
}

void sleep_ms(std::int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

// ---------------------------------------------------------------- watcher thread
// Warns once when nothing was adopted 3 s after start; sends SIGTERM when idle.
void* watch(void*) {
  if (adoptions.load() == 0) {
    for (std::int64_t left; adoptions.load() == 0 && (left = start_ms + warn_after_ms - now_ms()) > 0;)
      sleep_ms(std::min<std::int64_t>(left, 50));
    if (adoptions.load() == 0) {
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
  }
  if (idle_ms <= 0) return nullptr;
  while (adoptions.load() == 0) sleep_ms(200);
  for (;;) {
    if (open_conns.load(std::memory_order_acquire) > 0) {
      sleep_ms(idle_ms);
      continue;
    }
    const std::int64_t left = last_activity_ms.load(std::memory_order_acquire) + idle_ms - now_ms();
    if (left > 0) {
      sleep_ms(left);
      continue;
    }
    if (backlog_waiting()) {
      last_activity_ms.store(now_ms(), std::memory_order_release);
      sleep_ms(std::min<std::int64_t>(idle_ms, 50));
      continue;
    }
    SOCKACT_ADOPT_DEBUG(.add("idle for IDLE_TIMEOUT=")
                            .num(idle_ms)
                            .add(" ms: no open connection, none "
                                 "waiting; sending SIGTERM"));
    ::kill(::getpid(), SIGTERM);
    return nullptr;
  }
}

/// Starts the watcher in this process, unless it runs here already. All
/// signals are blocked in it, so a signal meant for the program (signalfd,
/// sigwait) is never delivered to this thread.
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
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  const int r = pthread_create(&t, &attr, watch, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) line("error: ").add("cannot start the watcher thread: ").add(std::strerror(r));
}

// ---------------------------------------------------------------- matching
bool family_fits(int program, int passed_family) {
  // An IPv6 program may take an IPv4 socket: its buffers are large enough for
  // IPv4 addresses. Never the other way round.
  return program == passed_family || (program == AF_INET6 && passed_family == AF_INET);
}

bool usable(const passed_socket& p, int family, int type, int protocol) {
  return p.open.load(std::memory_order_acquire) && p.owner.load(std::memory_order_acquire) == -1 &&
         family_fits(family, p.bound.family) && p.type == type && p.protocol == protocol;
}

struct choice {
  passed_socket* socket = nullptr;
  const char* rule = "";
};

choice pick(const address& want, int type, int protocol, bool first_bind) {
  const int family = want.family;
  // 1. SOCKACT_ADOPT=name=address
  for (int m = 0; m < map_count; ++m) {
    const address& a = adopt_map[m].addr;
    const bool hit = a.any_host ? (want.is_inet() && a.port == want.port) : same_address(a, want);
    if (!hit) continue;
    for (int i = 0; i < passed_count; ++i) {
      if (std::strcmp(passed[i].name, adopt_map[m].name) != 0) continue;
      if (usable(passed[i], family, type, protocol)) return {&passed[i], "SOCKACT_ADOPT"};
      SOCKACT_ADOPT_DEBUG(.add("SOCKACT_ADOPT names ")
                              .add(adopt_map[m].name)
                              .add(" (fd ")
                              .num(passed[i].fd)
                              .add(") for this address, but it is in use, closed, or of another family, "
                                   "type or protocol"));
    }
  }
  // 2. the exact address, the same family first
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < passed_count; ++i)
      if ((pass == 1 || passed[i].bound.family == family) && usable(passed[i], family, type, protocol) &&
          same_address(passed[i].bound, want))
        return {&passed[i], "the same address"};
  // 3. the port alone
  if (want.is_inet())
    for (int pass = 0; pass < 2; ++pass)
      for (int i = 0; i < passed_count; ++i)
        if ((pass == 1 || passed[i].bound.family == family) && usable(passed[i], family, type, protocol) &&
            passed[i].bound.is_inet() && passed[i].bound.port == want.port)
          return {&passed[i], "the same port"};
  // 4. one fd passed: the first bind() of a socket of its kind, whatever the
  //    address. Port 0 asks for an ephemeral port, as clients do: not a server.
  if (passed_total == 1 && passed_count == 1 && first_bind && !(want.is_inet() && want.port == 0) &&
      usable(passed[0], family, type, protocol))
    return {&passed[0], "the only passed fd, first bind() of its kind; the address differs"};
  return {};
}

int sock_int(int fd, int option) {
  int v = -1;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, option, &v, &len) < 0) return -1;
  return v;
}

/// dup3()s the passed socket onto `fd` with the program's FD_CLOEXEC and
/// O_NONBLOCK. O_NONBLOCK belongs to the open file, which the manager shares:
/// it is set to what this program asked for, as each start does anew.
bool take(passed_socket& p, int fd) {
  const int fd_flags = ::fcntl(fd, F_GETFD);
  const int fl = ::fcntl(fd, F_GETFL);
  if (fd_flags < 0 || fl < 0) return false;
  if (real_dup3()(p.fd, fd, (fd_flags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0) < 0) return false;
  const int now = ::fcntl(fd, F_GETFL);
  if (now >= 0 && (now & O_NONBLOCK) != (fl & O_NONBLOCK))
    ::fcntl(fd, F_SETFL, (now & ~O_NONBLOCK) | (fl & O_NONBLOCK));
  return true;
}

// ---------------------------------------------------------------- start-up
void parse_map(const char* value) {
  // name=address[,name=address...]; a malformed list is ignored whole.
  const std::string all = value;
  int count = 0;
  std::size_t start = 0;
  while (start <= all.size()) {
    std::size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    const std::string item = all.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const char* why = nullptr;
    address a;
    if (eq == std::string::npos || eq == 0)
      why = "is not NAME=ADDRESS";
    else if (eq >= max_name)
      why = "has a name longer than 255 bytes";
    else if (!parse_address(item.substr(eq + 1), a))
      why = "has an address that is not IPv4:PORT, [IPv6]:PORT, *:PORT, /path or @abstract";
    else if (count == max_map)
      why = "is one entry too many (at most 32)";
    if (why != nullptr) {
      line("error: ")
          .add("SOCKACT_ADOPT=\"")
          .add(value)
          .add("\": entry \"")
          .add(item.c_str())
          .add("\" ")
          .add(why)
          .add("; SOCKACT_ADOPT is ignored");
      map_count = 0;
      return;
    }
    std::memcpy(adopt_map[count].name, item.data(), eq);
    adopt_map[count].name[eq] = '\0';
    adopt_map[count].addr = a;
    ++count;
  }
  map_count = count;
}

/// Removes this library from LD_PRELOAD (by file name), so that the programs
/// this one starts do not load it.
void clean_ld_preload() {
  const char* value = std::getenv("LD_PRELOAD");
  Dl_info info{};
  if (value == nullptr || ::dladdr(reinterpret_cast<void*>(&clean_ld_preload), &info) == 0 ||
      info.dli_fname == nullptr)
    return;
  const char* slash = std::strrchr(info.dli_fname, '/');
  const std::string self = slash != nullptr ? slash + 1 : info.dli_fname;
  const std::string in = value;
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    const std::size_t end = std::min(in.find_first_of(": ", i), in.size());
    const std::string entry = in.substr(i, end - i);
    i = end + 1;
    const std::size_t s = entry.rfind('/');
    if (entry.empty() || (s == std::string::npos ? entry : entry.substr(s + 1)) == self) continue;
    if (!out.empty()) out += ':';
    out += entry;
  }
  if (out.empty())
    ::unsetenv("LD_PRELOAD");
  else
    ::setenv("LD_PRELOAD", out.c_str(), 1);
}

void describe(passed_socket& p) {
  p.type = sock_int(p.fd, SO_TYPE);
  p.protocol = sock_int(p.fd, SO_PROTOCOL);
  p.raw_len = sizeof p.raw;
  if (p.type < 0 || ::getsockname(p.fd, reinterpret_cast<sockaddr*>(&p.raw), &p.raw_len) < 0 ||
      !from_sockaddr(reinterpret_cast<const sockaddr*>(&p.raw), p.raw_len, p.bound)) {
    p.open.store(false);  // not a bound socket of a family we handle: never adopted
    p.raw_len = 0;
  }
}

__attribute__((constructor)) void init() {
  const std::int64_t t0 = now_us(CLOCK_MONOTONIC), cpu0 = now_us(CLOCK_THREAD_CPUTIME_ID);
  start_ms = t0 / 1000;
  const char* dbg = std::getenv("SOCKACT_ADOPT_DEBUG");
  debug_on = dbg != nullptr && *dbg != '\0' && std::strcmp(dbg, "0") != 0;
  // For the messages only: listen_fds() unsets the variables.
  const sockact::activation_environment before = sockact::activation_environment::current();
  const bool activated = before.listen_pid || before.listen_fds;

  sockact::listen_options options;
  options.unset_environment = true;  // children must not see them
  std::error_code ec;
  std::string why;
  // As sockact::activate(): 1 also takes fds meant for our parent (a wrapper
  // such as tini, or a shell without exec, between the manager and us).
  if (!sockact::detail::pid_check_from_environment(options.pid_check, ec, &why))
    line("error: ").add(why.c_str()).add("; ignored");
  const std::vector<sockact::passed_fd> fds = sockact::listen_fds(options, ec);
  if (ec)
    line("error: ")
        .add("cannot take the passed fds (LISTEN_PID=\"")
        .add(before.listen_pid.value_or("").c_str())
        .add("\" LISTEN_FDS=\"")
        .add(before.listen_fds.value_or("").c_str())
        .add("\" LISTEN_FDNAMES=\"")
        .add(before.listen_fdnames.value_or("").c_str())
        .add("\"): ")
        .add(ec.message().c_str())
        .add("; nothing will be adopted");
  else if (activated && fds.empty()) {
    // Fds meant for another process: the program will bind its own address,
    // where no client connects. Say so, and how to fix it.
    const sockact::diagnosis d = sockact::diagnose(before, options);
    line("error: ").add(d.summary.c_str()).add("; nothing will be adopted");
    if (!d.hint.empty()) line("hint: ").add(d.hint.c_str());
  }
  passed_total = static_cast<int>(fds.size());
  for (const sockact::passed_fd& f : fds) {
    if (passed_count == max_passed) break;
    passed_socket& p = passed[passed_count++];
    p.fd = f.fd;
    std::strncpy(p.name, f.name.c_str(), max_name - 1);
    describe(p);
    SOCKACT_ADOPT_DEBUG(.add("passed fd ")
                            .num(p.fd)
                            .add(" \"")
                            .add(p.name)
                            .add("\" ")
                            .addr(reinterpret_cast<const sockaddr*>(&p.raw), p.raw_len)
                            .add(p.type == SOCK_STREAM  ? " stream"
                                 : p.type == SOCK_DGRAM ? " datagram"
                                                        : " other")
                            .add(p.raw_len == 0 ? " (not a bound socket: never adopted)" : ""));
  }

  if (const char* m = std::getenv("SOCKACT_ADOPT")) parse_map(m);

  sockact::lifecycle_config config;
  if (!sockact::lifecycle_from_environment(config, ec, &why))
    line("error: ").add(why.c_str()).add("; idle exit is off");
  else
    idle_ms = config.idle_timeout.count();
  if (idle_ms > 0 && passed_count > 0) {
    rlimit rl{};
    std::size_t want = max_tracked_fds;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
      want = static_cast<std::size_t>(rl.rlim_max);
    want = (want + 63) / 64 * 64;
    void* mem = ::mmap(nullptr, want / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      line("error: ").add("cannot map the connection table; idle exit is off");
      idle_ms = 0;
    } else {
      conn_bits = static_cast<std::uint64_t*>(mem);
      conn_bits_fds = want;
    }
  }
  clean_ld_preload();
  if (passed_count > 0) start_watcher();
  SOCKACT_ADOPT_DEBUG(.add("ready: ")
                          .num(passed_count)
                          .add(" passed fd(s), ")
                          .num(map_count)
                          .add(" SOCKACT_ADOPT entr(ies), IDLE_TIMEOUT ")
                          .num(idle_ms)
                          .add(" ms; start-up took ")
                          .num(now_us(CLOCK_MONOTONIC) - t0)
                          .add(" us (")
                          .num(now_us(CLOCK_THREAD_CPUTIME_ID) - cpu0)
                          .add(" us CPU)"));
}

int adopt_or_bind(int fd, const sockaddr* addr, socklen_t len) {
  address want;
  if (passed_count == 0 || !from_sockaddr(addr, len, want)) return real_bind()(fd, addr, len);
  const int type = sock_int(fd, SO_TYPE), protocol = sock_int(fd, SO_PROTOCOL);
  std::atomic<bool>& seen = want.is_unix() ? unix_bind_seen : inet_bind_seen;
  const bool first = !(want.is_inet() && want.port == 0) && type == passed[0].type && !seen.exchange(true);
  for (int attempt = 0; attempt < 4 && type >= 0; ++attempt) {
    const choice c = pick(want, type, protocol, first);
    if (c.socket == nullptr) break;
    int expected = -1;
    if (!c.socket->owner.compare_exchange_strong(expected, fd)) continue;  // another thread took it
    const int saved = errno;
    if (!take(*c.socket, fd)) {
      const int err = errno;
      c.socket->owner.store(-1);
      line("error: ")
          .add("bind(")
          .num(fd)
          .add(", ")
          .addr(addr, len)
          .add("): cannot take passed fd ")
          .num(c.socket->fd)
          .add(": ")
          .add(std::strerror(err))
          .add("; binding it as asked");
      errno = saved;
      return real_bind()(fd, addr, len);
    }
    errno = saved;
    last_activity_ms.store(now_ms());
    adoptions.fetch_add(1);
    SOCKACT_ADOPT_DEBUG(.add("bind(")
                            .num(fd)
                            .add(", ")
                            .addr(addr, len)
                            .add("): adopted passed fd ")
                            .num(c.socket->fd)
                            .add(" \"")
                            .add(c.socket->name)
                            .add("\" ")
                            .addr(reinterpret_cast<const sockaddr*>(&c.socket->raw), c.socket->raw_len)
                            .add(" (rule: ")
                            .add(c.rule)
                            .add(")"));
    if (idle_ms > 0) start_watcher();  // a no-op unless this is a forked child
    return 0;
  }
  SOCKACT_ADOPT_DEBUG(.add("bind(").num(fd).add(", ").addr(addr, len).add(
      "): no passed fd matches; "
      "binding it as asked"));
  return real_bind()(fd, addr, len);
}

}  // namespace

// ---------------------------------------------------------------- the interposed calls
SOCKACT_ADOPT_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  return adopt_or_bind(fd, addr, len);
}

SOCKACT_ADOPT_EXPORT int listen(int fd, int backlog) noexcept {
  if (passed_socket* p = adopted(fd)) {
    SOCKACT_ADOPT_DEBUG(.add("listen(")
                            .num(fd)
                            .add(", ")
                            .num(backlog)
                            .add("): passed fd ")
                            .num(p->fd)
                            .add(" listens already; the manager's backlog is kept"));
    return 0;
  }
  return real_listen()(fd, backlog);
}

SOCKACT_ADOPT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  const int c = real_accept()(fd, addr, len);
  if (c >= 0 && conn_bits != nullptr && adopted(fd) != nullptr) track(c);
  return c;
}

SOCKACT_ADOPT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int c = real_accept4()(fd, addr, len, flags);
  if (c >= 0 && conn_bits != nullptr && adopted(fd) != nullptr) track(c);
  return c;
}

SOCKACT_ADOPT_EXPORT int close(int fd) {
  if (passed_count > 0) forget(fd);
  return real_close()(fd);
}

namespace {
/// A program that accepts on a blocking socket calls shutdown() to wake the
/// thread blocked in accept() (cpp-httplib's stop() does). The manager's
/// socket must not be shut down, so the thread is woken by a connection of
/// our own, closed at once: the program accepts it, reads EOF and closes it.
void wake_blocked_accept(const passed_socket& p) {
  const int c = ::socket(p.raw.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c < 0) return;
  if (::connect(c, reinterpret_cast<const sockaddr*>(&p.raw), p.raw_len) < 0 && errno == EINPROGRESS) {
    pollfd w{c, POLLOUT, 0};
    ::poll(&w, 1, 100);
  }
  real_close()(c);
}
}  // namespace

SOCKACT_ADOPT_EXPORT int shutdown(int fd, int how) noexcept {
  if (passed_socket* p = adopted(fd)) {
    const int saved = errno;
    const int fl = ::fcntl(fd, F_GETFL);
    const bool wake = p->type == SOCK_STREAM && fl >= 0 && (fl & O_NONBLOCK) == 0;
    SOCKACT_ADOPT_DEBUG(.add("shutdown(")
                            .num(fd)
                            .add(", ")
                            .num(how)
                            .add("): suppressed: fd is the manager's socket (passed fd ")
                            .num(p->fd)
                            .add("), which later starts need")
                            .add(wake ? "; a connection of our own wakes a thread blocked in accept()" : ""));
    if (wake) wake_blocked_accept(*p);
    errno = saved;
    return 0;
  }
  return real_shutdown()(fd, how);
}

SOCKACT_ADOPT_EXPORT int dup2(int oldfd, int newfd) noexcept {
  if (passed_count > 0 && oldfd != newfd) forget(newfd);
  return real_dup2()(oldfd, newfd);
}

SOCKACT_ADOPT_EXPORT int dup3(int oldfd, int newfd, int flags) noexcept {
  if (passed_count > 0 && oldfd != newfd) forget(newfd);
  return real_dup3()(oldfd, newfd, flags);
}

SOCKACT_ADOPT_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  const auto fn = real_close_range();
  if (fn == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (passed_count > 0 && (static_cast<unsigned>(flags) & CLOSE_RANGE_CLOEXEC) == 0) {
    // Only the fds this library knows of: passed, adopted onto, or tracked.
    const unsigned top = conn_bits_fds > 0 ? static_cast<unsigned>(conn_bits_fds - 1) : 0;
    for (int i = 0; i < passed_count; ++i) {
      const int owner = passed[i].owner.load();
      if (owner >= 0 && static_cast<unsigned>(owner) >= first && static_cast<unsigned>(owner) <= last)
        forget(owner);
      if (static_cast<unsigned>(passed[i].fd) >= first && static_cast<unsigned>(passed[i].fd) <= last)
        forget(passed[i].fd);
    }
    for (unsigned fd = first; conn_bits != nullptr && fd <= last && fd <= top; ++fd) {
      if (fd % 64 == 0 && conn_bits[fd / 64] == 0) {
        fd += 63;  // skip an empty word
        continue;
      }
      untrack(static_cast<int>(fd));
    }
  }
  return fn(first, last, flags);
}

// libuv (Node) closes with syscall(SYS_close, fd), to avoid close()'s
// cancellation point; without this, its connections would never end here.
SOCKACT_ADOPT_EXPORT long syscall(long number, ...) noexcept {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);  // as glibc's own syscall(): six, used or not
  va_end(ap);
  if (passed_count > 0 && number == SYS_close) forget(static_cast<int>(a[0]));
  return real_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

namespace {
/// `path` names a unix socket the manager passed: removing it would leave
/// the socket unreachable for every later start.
bool managers_path(const char* path) {
  if (path == nullptr) return false;
  const std::size_t len = std::strlen(path);
  for (int i = 0; i < passed_count; ++i) {
    const address& a = passed[i].bound;
    if (a.is_unix() && a.path[0] != '\0' && a.path_len == len && std::memcmp(a.path, path, len) == 0) {
      SOCKACT_ADOPT_DEBUG(.add("unlink(")
                              .add(path)
                              .add("): not removed: the manager's socket (passed fd ")
                              .num(passed[i].fd)
                              .add(")"));
      return true;
    }
  }
  return false;
}
}  // namespace

SOCKACT_ADOPT_EXPORT int unlink(const char* path) noexcept {
  if (managers_path(path)) return 0;
  return real_unlink()(path);
}

SOCKACT_ADOPT_EXPORT int unlinkat(int dirfd, const char* path, int flags) noexcept {
  if ((flags & AT_REMOVEDIR) == 0 && path[0] == '/' && managers_path(path)) return 0;
  return real_unlinkat()(dirfd, path, flags);
}

SOCKACT_ADOPT_EXPORT int remove(const char* path) noexcept {
  if (managers_path(path)) return 0;
  return real_remove()(path);
}
