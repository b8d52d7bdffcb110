// SPDX-License-Identifier: MIT
// libsockact-adopt.so: makes an unmodified server take the sockets a service
// manager passed (LISTEN_FDS), by turning its bind() into a dup3() of the
// matching passed fd, and exit when idle (IDLE_TIMEOUT). Used as LD_PRELOAD.
// docs/adopting.md is the user's guide;
// adopt.hpp lists the files and their rules.
//
// This file: start-up, which bind() takes which passed socket, and the socket
// calls interposed around that (listen, accept, close, shutdown, dup, unlink,
// getsockname).

#include "adopt.hpp"

#include <sockact/detail/parse.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/diagnose.hpp>
#include <sockact/idle.hpp>
#include <sockact/listen_fds.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace sockact_adopt {

// ---------------------------------------------------------------- state
bool debug_on = false;
passed_socket passed[max_passed];
int passed_count = 0;
int passed_total = 0;
std::atomic<int> adoptions{0};
std::atomic<int> unmatched_binds{0};
std::int64_t idle_ms = 0;
std::int64_t start_ms = 0;
std::atomic<long> open_conns{0};
std::atomic<unsigned long> accepted{0};
std::atomic<pid_t> accept_gate_closed{0};
std::atomic<int> accepts_in_flight{0};
std::atomic<bool> gate_after_sigterm{false};
std::atomic<std::int64_t> last_activity_ms{0};

namespace {

struct map_entry {
  char name[max_name] = {};
  address addr;
};

map_entry adopt_map[max_map];
int map_count = 0;

std::uint64_t* conn_bits = nullptr;  // one bit per fd accepted from an adopted socket
std::size_t conn_bits_fds = 0;
// The single-fd rule takes the first bind() of its kind, and again the first
// one after the program closed the socket it took (a reload).
std::atomic<bool> inet_bind_seen{false};
std::atomic<bool> unix_bind_seen{false};
std::atomic<bool> untracked_logged{false};

// The last bind() no rule took, for the warning. A seqlock: written by the
// program's threads, read by the watcher.
std::atomic<unsigned> unmatched_seq{0};
sockaddr_storage unmatched_addr{};
socklen_t unmatched_len = 0;

// The program's own listening sockets (a real listen()).
struct own_listener {
  std::atomic<int> fd{-1};
  std::atomic<std::uint64_t> dev{0};
  std::atomic<std::uint64_t> ino{0};
};
own_listener listeners[max_listeners];

}  // namespace

std::int64_t now_us(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t now_ms() {
  return now_us(CLOCK_MONOTONIC) / 1000;
}

void sleep_ms(std::int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

void note_activity(std::int64_t t) {
  std::int64_t prev = last_activity_ms.load(std::memory_order_acquire);
  while (prev < t && !last_activity_ms.compare_exchange_weak(prev, t, std::memory_order_acq_rel)) {
  }
}

bool last_unmatched_bind(sockaddr_storage& out, socklen_t& len) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    const unsigned s1 = unmatched_seq.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) continue;
    std::memcpy(&out, &unmatched_addr, sizeof out);
    len = unmatched_len;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (unmatched_seq.load(std::memory_order_relaxed) == s1) return len > 0;
  }
  return false;
}

void note_listener(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return;
  for (own_listener& l : listeners)
    if (l.fd.load() == fd && l.ino.load() == st.st_ino && l.dev.load() == st.st_dev) return;
  for (own_listener& l : listeners) {
    int expected = -1;
    if (!l.fd.compare_exchange_strong(expected, fd)) continue;
    l.dev.store(st.st_dev);
    l.ino.store(st.st_ino);
    return;
  }
}

int own_listeners(listener_ref* out, int max) {
  int n = 0;
  for (own_listener& l : listeners) {
    const int fd = l.fd.load();
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) < 0 || st.st_ino != l.ino.load() || st.st_dev != l.dev.load()) {
      int expected = fd;
      if (l.ino.load() != 0) l.fd.compare_exchange_strong(expected, -1);  // closed: free the slot
      continue;
    }
    if (n < max) out[n++] = listener_ref{fd, st.st_dev, st.st_ino};
  }
  return n;
}

namespace {

/// The passed socket adopted onto `fd`, or a passed fd itself (while the
/// program has not closed it: the number may be another socket now); nullptr
/// otherwise.
passed_socket* adopted(int fd) {
  if (fd < 0) return nullptr;
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].owner.load(std::memory_order_acquire) == fd ||
        (passed[i].fd == fd && passed[i].open.load(std::memory_order_acquire)))
      return &passed[i];
  return nullptr;
}

/// The passed socket adopted onto `fd` (the program's copy, not the passed fd).
passed_socket* adopted_onto(int fd) {
  if (fd < 0) return nullptr;
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].owner.load(std::memory_order_acquire) == fd) return &passed[i];
  return nullptr;
}

// ---------------------------------------------------------------- connections
void track(int fd) {
  accepted.fetch_add(1, std::memory_order_acq_rel);
  note_activity(now_ms());
  if (conn_bits == nullptr) return;
  if (fd < 0 || static_cast<std::size_t>(fd) >= conn_bits_fds) {
    if (!untracked_logged.exchange(true))
      line("warning: ")
          .add("fd ")
          .num(fd)
          .add(" is above the fds tracked for IDLE_TIMEOUT; such connections do not count here");
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
  if ((before & bit) != 0) {
    open_conns.fetch_sub(1, std::memory_order_acq_rel);
    note_activity(now_ms());
  }
}

/// Everything close() of `fd` changes here; called before the real close, so
/// that a new fd with the same number is never mistaken for this one.
void forget(int fd) {
  untrack(fd);
  for (int i = 0; i < passed_count; ++i) {
    int expected = fd;
    if (passed[i].owner.compare_exchange_strong(expected, -1, std::memory_order_acq_rel)) {
      // Free again: under the single-fd rule the program's next bind() of
      // this kind takes it again, as at start (a reload closes and rebinds).
      (passed[i].bound.is_unix() ? unix_bind_seen : inet_bind_seen).store(false);
      SOCKACT_ADOPT_DEBUG(
              .add("close(")
              .num(fd)
              .add("): the program closed its copy of passed fd ")
              .num(passed[i].fd)
              .add("; the manager's socket stays open, and the next bind() may take it again"));
    }
    if (passed[i].fd == fd && passed[i].open.exchange(false, std::memory_order_acq_rel) &&
        !passed[i].was_adopted.load())
      passed[i].closed_unadopted.store(true);
  }
}

}  // namespace

bool backlog_waiting() {
  pollfd fds[max_passed];
  nfds_t n = 0;
  for (int i = 0; i < passed_count; ++i)
    if (passed[i].open.load(std::memory_order_acquire) && passed[i].type != SOCK_DGRAM)
      fds[n++] = pollfd{passed[i].fd, POLLIN, 0};
  return n > 0 && ::poll(fds, n, 0) > 0;
}

namespace {

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

/// The address the program asked for when it last took `p`, if it did.
/// `asked` is written by the thread that holds `owner`; a seqlock keeps a
/// concurrent reader from acting on a half-written one.
std::atomic<unsigned> asked_seq[max_passed];

bool asked_before(const passed_socket& p, address& out) {
  const std::size_t i = static_cast<std::size_t>(&p - passed);
  if (!p.was_adopted.load(std::memory_order_acquire)) return false;
  const unsigned s1 = asked_seq[i].load(std::memory_order_acquire);
  if ((s1 & 1) != 0) return false;
  sockaddr_storage copy;
  std::memcpy(&copy, &p.asked, sizeof copy);
  const socklen_t len = p.asked_len;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (asked_seq[i].load(std::memory_order_relaxed) != s1) return false;
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&copy), len, out);
}

void set_asked(passed_socket& p, const sockaddr* addr, socklen_t len) {
  const std::size_t i = static_cast<std::size_t>(&p - passed);
  asked_seq[i].fetch_add(1, std::memory_order_acq_rel);
  const socklen_t n = std::min<socklen_t>(len, sizeof p.asked);
  std::memset(&p.asked, 0, sizeof p.asked);
  std::memcpy(&p.asked, addr, n);
  p.asked_len = n;
  asked_seq[i].fetch_add(1, std::memory_order_release);
  p.was_adopted.store(true, std::memory_order_release);
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
  //    address; after the program closed it, the first one again, or one to
  //    the address it was taken for before. Port 0 asks for an ephemeral
  //    port, as clients do: not a server.
  if (passed_total == 1 && passed_count == 1 && !(want.is_inet() && want.port == 0) &&
      usable(passed[0], family, type, protocol)) {
    address before;
    if (asked_before(passed[0], before) && same_address(before, want))
      return {&passed[0], "the only passed fd, taken for this address before; the address differs"};
    if (first_bind) return {&passed[0], "the only passed fd, first bind() of its kind; the address differs"};
  }
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
/// A variable as the process was started with it, read from environ itself:
/// a shell's own getenv() may not work before its main().
const char* env_value(const char* name) {
  const std::size_t len = std::strlen(name);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return nullptr;
}

void parse_map(const char* value) {
  // name=address[,name=address...], separated as the library's address lists
  // (commas or white space); a malformed list is ignored whole.
  const std::string all = value;
  int count = 0;
  std::size_t start = 0;
  while (start < all.size()) {
    if (sockact::detail::is_list_separator(all[start])) {
      ++start;
      continue;
    }
    std::size_t end = start;
    while (end < all.size() && !sockact::detail::is_list_separator(all[end])) ++end;
    const std::string item = all.substr(start, end - start);
    start = end;
    const std::size_t eq = item.find('=');
    std::string why, problem;
    address a;
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      why = "is not NAME=ADDRESS";
    else if (eq >= max_name)
      why = "has a name longer than 255 bytes";
    else if (!parse_address(item.substr(eq + 1), a, problem))
      why = "has a bad address: " + problem +
            " (ADDRESS is IPv4:PORT, [IPv6]:PORT, *:PORT for any host, PORT for 0.0.0.0:PORT, /path, "
            "./path or @abstract)";
    else if (count == max_map)
      why = "is one entry too many (at most 32)";
    if (!why.empty()) {
      // Quoted: escaped and cut short, so that the reason always fits the line.
      line("error: ")
          .add("SOCKACT_ADOPT=")
          .add(sockact::detail::quote(all, 160).c_str())
          .add(": entry ")
          .add(sockact::detail::quote(item, 120).c_str())
          .add(" ")
          .add(why.c_str())
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

/// An entry whose NAME no passed socket has can never match: say so at start,
/// rather than let the program bind an address no client reaches.
void check_map_names() {
  for (int i = 0; i < map_count; ++i) {
    bool found = false;
    for (int j = 0; j < passed_count && !found; ++j)
      found = std::strcmp(adopt_map[i].name, passed[j].name) == 0;
    if (found || passed_count == 0) continue;
    line l("warning: ");
    l.add("SOCKACT_ADOPT names ")
        .add(sockact::detail::quote(adopt_map[i].name, 100).c_str())
        .add(", which no passed socket is called (FileDescriptorName=; passed:");
    for (int j = 0; j < passed_count && j < 8; ++j)
      l.add(" ").add(sockact::detail::quote(passed[j].name, 40).c_str());
    l.add(passed_count > 8 ? " ...)" : ")").add("; that entry is never used");
  }
}

/// Removes this library from LD_PRELOAD (by file name), so that the programs
/// this one starts do not load it. Returns the entry removed ("" if none), for
/// the program it may exec (exec.cpp).
std::string clean_ld_preload() {
  const char* value = env_value("LD_PRELOAD");
  Dl_info info{};
  if (value == nullptr || ::dladdr(reinterpret_cast<void*>(&env_value), &info) == 0 ||
      info.dli_fname == nullptr)
    return {};
  const char* slash = std::strrchr(info.dli_fname, '/');
  const std::string self = slash != nullptr ? slash + 1 : info.dli_fname;
  const std::string in = value;
  std::string out, removed;
  std::size_t i = 0;
  while (i < in.size()) {
    const std::size_t end = std::min(in.find_first_of(": ", i), in.size());
    const std::string entry = in.substr(i, end - i);
    i = end + 1;
    const std::size_t s = entry.rfind('/');
    if (!entry.empty() && (s == std::string::npos ? entry : entry.substr(s + 1)) == self) {
      if (removed.empty()) removed = entry;
      continue;
    }
    if (entry.empty()) continue;
    if (!out.empty()) out += ':';
    out += entry;
  }
  if (out.empty())
    real_unsetenv()("LD_PRELOAD");
  else
    real_setenv()("LD_PRELOAD", out.c_str(), 1);
  return removed;
}

void describe(passed_socket& p) {
  struct stat st {};
  if (::fstat(p.fd, &st) == 0) {
    p.dev = st.st_dev;
    p.ino = st.st_ino;
  }
  p.type = sock_int(p.fd, SO_TYPE);
  p.protocol = sock_int(p.fd, SO_PROTOCOL);
  p.raw_len = sizeof p.raw;
  if (p.type < 0 || real_getsockname()(p.fd, reinterpret_cast<sockaddr*>(&p.raw), &p.raw_len) < 0 ||
      !from_sockaddr(reinterpret_cast<const sockaddr*>(&p.raw), p.raw_len, p.bound)) {
    p.open.store(false);  // not a bound socket of a family we handle: never adopted
    p.raw_len = 0;
  }
}

/// A forked child has none of the parent's accept() calls in flight, and its
/// own watcher (if it starts one) owns the gate there.
void reset_gate_in_child() {
  accepts_in_flight.store(0);
  accept_gate_closed.store(0);
  gate_after_sigterm.store(false);
}

__attribute__((constructor)) void init() {
  const std::int64_t t0 = now_us(CLOCK_MONOTONIC), cpu0 = now_us(CLOCK_THREAD_CPUTIME_ID);
  ::pthread_atfork(nullptr, nullptr, reset_gate_in_child);
  start_ms = t0 / 1000;
  const char* dbg = env_value("SOCKACT_ADOPT_DEBUG");
  debug_on = dbg != nullptr && *dbg != '\0' && std::strcmp(dbg, "0") != 0;
  // For the messages and the exec hand-over: listen_fds() unsets the variables.
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
  // listen_fds() unset them with unsetenv(), which a shell (bash) may have
  // replaced by one of its own that does nothing before its main().
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"})
    real_unsetenv()(name);
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
    if (d.status == sockact::activation_status::foreign_pid && before.listen_pid &&
        std::strtoll(before.listen_pid->c_str(), nullptr, 10) == ::getppid())
      line("hint: ")
          .add(
              "this looks like a wrapper that starts the server as a child instead of exec'ing it: the "
              "manager passed the fds to the wrapper (process ")
          .num(::getppid())
          .add(
              "). Make the wrapper exec the server (\"exec server ...\" in a script, sh -c 'exec server "
              "...'), so that the server takes the wrapper's place and its pid");
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

  if (const char* m = env_value("SOCKACT_ADOPT")) {
    parse_map(m);
    check_map_names();
  }

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
  const std::string preload_entry = clean_ld_preload();
  if (passed_total > 0) {
    // LISTEN_PIDFDID names LISTEN_PID's process; it still does after an exec,
    // but not when the fds were meant for our parent.
    const bool ours =
        before.listen_pid && std::strtoll(before.listen_pid->c_str(), nullptr, 10) == ::getpid();
    remember_for_exec(before.listen_fdnames ? before.listen_fdnames->c_str() : nullptr,
                      ours && before.listen_pidfdid ? before.listen_pidfdid->c_str() : nullptr,
                      preload_entry.c_str());
  }
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

void note_unmatched(const sockaddr* addr, socklen_t len) {
  unmatched_binds.fetch_add(1);
  unsigned s = unmatched_seq.load();
  if ((s & 1) != 0 || !unmatched_seq.compare_exchange_strong(s, s + 1))
    return;  // another thread writes it now: one of the two is enough
  const socklen_t n = std::min<socklen_t>(len, sizeof unmatched_addr);
  std::memset(&unmatched_addr, 0, sizeof unmatched_addr);
  std::memcpy(&unmatched_addr, addr, n);
  unmatched_len = n;
  unmatched_seq.store(s + 2, std::memory_order_release);
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
    set_asked(*c.socket, addr, len);
    note_activity(now_ms());
    const int n = adoptions.fetch_add(1) + 1;
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
                            .add(n > 1 ? "; adopted again" : "")
                            .add(")"));
    if (idle_ms > 0) start_watcher();  // a no-op unless this is a forked child
    errno = saved;
    return 0;
  }
  note_unmatched(addr, len);
  SOCKACT_ADOPT_DEBUG(.add("bind(").num(fd).add(", ").addr(addr, len).add(
      "): no passed fd matches; "
      "binding it as asked"));
  return real_bind()(fd, addr, len);
}

}  // namespace
}  // namespace sockact_adopt

using namespace sockact_adopt;

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
  const int r = real_listen()(fd, backlog);
  if (r == 0 && idle_ms > 0 && passed_count > 0) {
    const int saved = errno;
    note_listener(fd);  // its connections count for idleness too
    errno = saved;
  }
  return r;
}

// An adopted socket reports the address the program asked bind() for, as it
// would without the manager: programs compare it with what they asked (Node's
// cluster workers fail with EADDRINUSE when the port differs).
SOCKACT_ADOPT_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) noexcept {
  if (passed_count > 0 && addr != nullptr && len != nullptr) {
    struct stat st {};
    if (passed_socket* p = adopted_onto(fd); p != nullptr && p->asked_len > 0 && ::fstat(fd, &st) == 0 &&
                                             st.st_ino == p->ino && st.st_dev == p->dev) {
      std::memcpy(addr, &p->asked, std::min<socklen_t>(*len, p->asked_len));
      *len = p->asked_len;
      return 0;
    }
  }
  return real_getsockname()(fd, addr, len);
}

namespace {
/// accept() or accept4() on `fd`: on an adopted socket, through the idle
/// exit's gate (see accept_gate_closed) and counted. The watcher closes the
/// gate, then waits for the calls already past it: both sides announce
/// themselves before they look at the other (sequentially consistent), so a
/// call is either seen in flight or sees the gate closed. At the last look a
/// caller waits (a few ms), so that an edge-triggered loop loses no wake-up;
/// after the SIGTERM a non-blocking socket says EAGAIN, so that an event loop
/// goes on to the signal. A wait that a signal handler interrupts returns
/// EINTR, as the real accept() would.
template <class Accept>
int gated_accept(int fd, Accept&& call) {
  if (passed_count == 0 || adopted(fd) == nullptr) return call();
  accepts_in_flight.fetch_add(1);
  for (pid_t by = accept_gate_closed.load(); by != 0 && by == ::getpid(); by = accept_gate_closed.load()) {
    accepts_in_flight.fetch_sub(1);
    if (gate_after_sigterm.load()) {
      const int fl = ::fcntl(fd, F_GETFL);
      if (fl >= 0 && (fl & O_NONBLOCK) != 0) {
        errno = EAGAIN;
        return -1;
      }
    }
    timespec ts{0, 200000};
    if (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr) == EINTR) {
      errno = EINTR;
      return -1;
    }
    accepts_in_flight.fetch_add(1);
  }
  const int c = call();
  const int saved = errno;
  if (c >= 0) track(c);
  accepts_in_flight.fetch_sub(1);
  errno = saved;
  return c;
}
}  // namespace

SOCKACT_ADOPT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  return gated_accept(fd, [&] { return real_accept()(fd, addr, len); });
}

SOCKACT_ADOPT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return gated_accept(fd, [&] { return real_accept4()(fd, addr, len, flags); });
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
