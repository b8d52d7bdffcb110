// SPDX-License-Identifier: MIT
// libsockact-adopt.so, internal: what the files of the preload library share.
//   adopt.cpp        start-up, bind() matching and the socket calls it interposes
//   address.cpp      addresses as the program binds them and as SOCKACT_ADOPT writes them
//   exec.cpp         exec*(): the fds go on to the program a wrapper execs
//   watcher.cpp      the "nothing adopted" warning and the idle exit
//   connections.cpp  the kernel's view of this program's connections (sock_diag)
//
// Rules of these files: no exceptions (built with -fno-exceptions), no static
// objects with constructors, nothing but atomics and syscalls on the paths
// that close(), accept() and exec*() take (they may run in signal handlers,
// right after fork() or in a vfork() child), errno as the real call left it.
#ifndef SOCKACT_TOOLS_ADOPT_ADOPT_HPP
#define SOCKACT_TOOLS_ADOPT_ADOPT_HPP

#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

#define SOCKACT_ADOPT_EXPORT extern "C" __attribute__((visibility("default")))

namespace sockact_adopt {

// ---------------------------------------------------------------- limits
constexpr int max_passed = 64;                                 // passed fds looked at; more are left alone
constexpr std::size_t max_name = 256;                          // FileDescriptorName= is at most 255 bytes
constexpr int max_map = 32;                                    // SOCKACT_ADOPT entries
constexpr std::int64_t warn_after_ms = 3000;                   // "nothing adopted" warning
constexpr std::size_t max_tracked_fds = std::size_t{1} << 20;  // connection bitmap: 128 KiB
constexpr int max_listeners = 64;                              // the program's own listening sockets

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
  inline type real_##name() noexcept {       \
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
using getsockname_fn = int (*)(int, sockaddr*, socklen_t*);
using setenv_fn = int (*)(const char*, const char*, int);
using unsetenv_fn = int (*)(const char*);
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
SOCKACT_ADOPT_REAL(getsockname, getsockname_fn)
// libc's own: a shell (bash) exports a getenv/setenv/unsetenv of its own that
// does nothing before its main(), so the environment is edited with these.
SOCKACT_ADOPT_REAL(setenv, setenv_fn)
SOCKACT_ADOPT_REAL(unsetenv, unsetenv_fn)

// ---------------------------------------------------------------- log lines
// Formatted into a stack buffer and written with one write(2): usable from
// any context, no allocation, no stdio lock.
extern bool debug_on;

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
  char buf_[1024];
  std::size_t n_ = 0;
};

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
  /// 0.0.0.0 or ::, the address of a socket bound to every host address.
  bool any_ip() const;
};

bool from_sockaddr(const sockaddr* sa, socklen_t len, address& out);
bool same_address(const address& a, const address& b);
/// An address of SOCKACT_ADOPT: the library's (sockact::parse_endpoints():
/// 1.2.3.4:80, [::1]:80, 80, /path, @abstract), but not sd-listen or port 0,
/// plus *:80 (any host). On failure `problem` says why.
bool parse_address(const std::string& s, address& out, std::string& problem);

// ---------------------------------------------------------------- state
// Written once by the constructor before main(); afterwards only the atomics
// change (and `asked`, by the thread that holds `owner`).
struct passed_socket {
  int fd = -1;
  char name[max_name] = {};
  int type = 0;
  int protocol = 0;
  address bound;
  sockaddr_storage raw{};
  socklen_t raw_len = 0;
  dev_t dev = 0;  // which open file fd is, to tell it from a later one with the same number
  ino_t ino = 0;
  std::atomic<int> owner{-1};  // the program's fd it is adopted onto, -1 = free
  std::atomic<bool> open{true};
  std::atomic<bool> closed_unadopted{false};  // the program closed fd before any bind() took it
  // What the program asked bind() for when it last took this socket: what
  // getsockname() reports, and the address that takes it again after a close.
  sockaddr_storage asked{};
  socklen_t asked_len = 0;
  std::atomic<bool> was_adopted{false};
};

extern passed_socket passed[max_passed];
extern int passed_count;
extern int passed_total;  // LISTEN_FDS, for the single-fd rule and the exec hand-over
extern std::atomic<int> adoptions;
extern std::atomic<int> unmatched_binds;  // bind()s of the program that no rule took
extern std::int64_t idle_ms;              // 0 = no idle exit
extern std::int64_t start_ms;
extern std::atomic<long> open_conns;         // accepted from adopted sockets here, not yet closed
extern std::atomic<unsigned long> accepted;  // accepted from adopted sockets here, ever
/// The idle exit's last look: while closed (the pid of the process whose
/// watcher closed it; 0 = open), accept() on an adopted socket in that process
/// waits instead of taking a connection that the SIGTERM would cut; the
/// connection stays in the manager's backlog for the next start. A child forked
/// meanwhile has another pid and is not held.
extern std::atomic<pid_t> accept_gate_closed;
extern std::atomic<int> accepts_in_flight;    // accept() calls past the gate, not yet counted
extern std::atomic<bool> gate_after_sigterm;  // the gate is closed after the SIGTERM was sent
extern std::atomic<std::int64_t> last_activity_ms;

std::int64_t now_us(clockid_t clock);
std::int64_t now_ms();
void sleep_ms(std::int64_t ms);
/// last_activity_ms = max(last_activity_ms, t).
void note_activity(std::int64_t t);
/// A connection waits in the backlog of an adopted socket.
bool backlog_waiting();
/// The last bind() no rule took, for the "nothing adopted" warning.
bool last_unmatched_bind(sockaddr_storage& out, socklen_t& len);

/// Starts the watcher in this process, unless it runs here already.
void start_watcher();

/// The program's own listening sockets (a real listen() that succeeded):
/// their connections count for idleness too.
void note_listener(int fd);
struct listener_ref {
  int fd;
  dev_t dev;
  ino_t ino;
};
int own_listeners(listener_ref* out, int max);

// exec.cpp: what is needed to hand the fds on at exec; from the constructor.
void remember_for_exec(const char* listen_fdnames, const char* listen_pidfdid, const char* preload_entry);

// connections.cpp
/// Connections of this process's listening sockets (passed or its own) that
/// the kernel knows of: established, half-closed but still held, or waiting
/// in a backlog. -1 when the kernel cannot be asked (no sock_diag, seccomp).
long kernel_connections();

}  // namespace sockact_adopt

#endif  // SOCKACT_TOOLS_ADOPT_ADOPT_HPP
