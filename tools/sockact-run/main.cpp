// sockact-run: a socket unit without systemd. Holds listening sockets, starts
// PROGRAM on the first connection with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES,
// starts it again on the next connection after it exited (idle exit), and
// shows what its NOTIFY_SOCKET receives. `sockact-run --help` documents it.
// SPDX-License-Identifier: MIT

#include <sockact/listen.hpp>
#include <sockact/notify.hpp>
#include <sockact/version.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr const char* self = "sockact-run";
using clock_type = std::chrono::steady_clock;

// Exit statuses; --help lists them.
constexpr int exit_runtime = 1;
constexpr int exit_usage = 2;
constexpr int exit_listen = 3;
constexpr int exit_start_limit = 4;
constexpr int exit_cannot_exec = 126;
constexpr int exit_not_found = 127;

constexpr int max_connections = 64;  // --accept: as systemd's MaxConnections= default
constexpr auto kill_after_abort = std::chrono::seconds(5);
constexpr auto accept_probe_every = std::chrono::milliseconds(1);
constexpr auto accept_probe_for = std::chrono::seconds(10);

const char* const help_text =
    R"help(usage: sockact-run [OPTIONS] -- PROGRAM [ARGS...]

Holds listening sockets and starts PROGRAM on the first connection, as a
systemd .socket unit does. PROGRAM gets the sockets as fds 3, 4, ... with
LISTEN_PID (its own pid), LISTEN_FDS and LISTEN_FDNAMES, a NOTIFY_SOCKET of
sockact-run's own, and the rest of sockact-run's environment. When PROGRAM
exits (for example when idle), sockact-run keeps the sockets and starts it
again on the next connection; connections that arrive meanwhile wait in the
kernel's queue.

options:
  -l, --listen ADDR      listen on ADDR (repeatable): IPv4:PORT, [IPv6]:PORT,
                         PORT (0.0.0.0:PORT), /path or ./path (unix socket),
                         @name (abstract unix socket)
      --fdname NAME[:NAME...]
                         LISTEN_FDNAMES, one name per --listen, in order
                         (repeatable; missing names are "unknown")
  -E, --setenv NAME[=VALUE]
                         set NAME for PROGRAM; without =VALUE, NAME is passed
                         from this environment (it is anyway: accepted for
                         systemd-socket-activate compatibility)
  -a, --accept           one PROGRAM per connection (Accept=yes, inetd): the
                         connection is fd 3, LISTEN_FDNAMES=connection,
                         REMOTE_ADDR/REMOTE_PORT are set; at most 64 at once
      --inetd            as --accept, but the connection is stdin and stdout
                         and no LISTEN_* variables are set
  -d, --datagram         datagram sockets (UDP, unix datagram) instead of
                         stream ones; PROGRAM starts when one is readable
      --start-limit BURST/SECONDS
                         stop when PROGRAM would start more than BURST times
                         within SECONDS (default 20/2, with --accept 200/2:
                         systemd's TriggerLimitBurst/TriggerLimitIntervalSec);
                         0 turns the limit off
      --watchdog SECONDS set WATCHDOG_USEC and WATCHDOG_PID; when PROGRAM sends
                         no WATCHDOG=1 for that long, send it SIGABRT, and
                         SIGKILL 5 s later (systemd's WatchdogSec=)
      --adopt[=PATH]     prepend the LD_PRELOAD library libsockact-adopt.so to
                         LD_PRELOAD (default: next to the sockact-run
                         executable, else in its ../lib)
  -h, --help             this text
      --version          the version

output (stderr): each notify message PROGRAM sends (READY=1, STOPPING=1,
STATUS=..., the first WATCHDOG=1 of each run), and one line per activation
when it ends:
  sockact-run: activation N: TIME pid P, woken by fd F "NAME" (ADDRESS)[, peer
  PEER]; cold start: ready +X ms, accept +Y ms; ran Z s; stopped: REASON
  - woken by: the socket that became readable first (the peer is known in
    --accept mode and for datagrams);
  - cold start: from that readable event to READY=1, and to the moment the
    socket's queue was first seen empty (PROGRAM accepted), probed every 1 ms;
  - stopped: "idle (exit 0 after STOPPING=1)" when PROGRAM sent STOPPING=1
    and exited with 0 without being told to stop; else "exit N", "signal
    NAME", "... after SIGTERM from sockact-run", "..., watchdog timeout".

signals: SIGTERM and SIGINT are forwarded to PROGRAM (each run is in a process
group of its own), and sockact-run exits once it has exited; a second one
sends SIGKILL. SIGHUP, SIGUSR1 and SIGUSR2 are forwarded. sockact-run reaps
every child, including orphans it inherits as PID 1 or as subreaper.

exit status:
  0        stopped by SIGTERM/SIGINT with no PROGRAM running
  N        stopped by SIGTERM/SIGINT: PROGRAM's exit status (128+signal when
           a signal ended it)
  1        a system call failed
  2        bad command line: an unknown option, a bad address (quoted)
  3        cannot listen (address in use, permission) or set up NOTIFY_SOCKET
  4        the start limit was hit
  126, 127 PROGRAM is not executable, or not found (checked before
           listening; also when exec fails later)
)help";

// ---------------------------------------------------------------- helpers

struct usage_error {
  std::string message;
};

[[noreturn]] void die(int status, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", self, message.c_str());
  std::exit(status);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}
std::string ms_text(clock_type::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", seconds(d) * 1000);
  return buf;
}

// Wall-clock time for the activation lines: 2026-12-01T20:14:05.500Z.
std::string wall_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

bool parse_seconds(const std::string& s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end != nullptr && *end == '\0' && errno == 0 && std::isfinite(out) && out >= 0;
}

bool parse_unsigned(const std::string& s, unsigned& out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = static_cast<unsigned>(std::stoul(s));
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

// ---------------------------------------------------------------- options

struct options {
  std::vector<std::string> listen;
  std::vector<std::string> fdnames;
  std::vector<std::string> setenv;
  bool accept = false;
  bool inetd = false;
  bool datagram = false;
  std::optional<unsigned> start_burst;
  double start_interval = 2;
  double watchdog = 0;
  std::optional<std::string> adopt;  // "" = the default place
  std::vector<char*> program;        // PROGRAM ARGS..., null-terminated
};

// Matches "-x VALUE", "-xVALUE", "--name VALUE" and "--name=VALUE" at argv[i].
bool option_value(int argc, char** argv, int& i, const char* short_name, const char* long_name,
                  std::string& value) {
  const std::string a = argv[i];
  const std::string l = std::string("--") + long_name;
  const bool is_short =
      short_name != nullptr && a.rfind(std::string("-") + short_name, 0) == 0 && a.rfind("--", 0) != 0;
  if (is_short && a.size() > 2) {
    value = a.substr(2);
    return true;
  }
  if (a.rfind(l + "=", 0) == 0) {
    value = a.substr(l.size() + 1);
    return true;
  }
  if (!is_short && a != l) return false;
  if (i + 1 >= argc) throw usage_error{"option " + a + " needs a value"};
  value = argv[++i];
  return true;
}

options parse_options(int argc, char** argv) {
  options o;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;  // PROGRAM without "--"
    if (a == "-h" || a == "--help") {
      std::fputs(help_text, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("%s %d.%d.%d\n", self, SOCKACT_VERSION_MAJOR, SOCKACT_VERSION_MINOR, SOCKACT_VERSION_PATCH);
      std::exit(0);
    } else if (option_value(argc, argv, i, "l", "listen", v)) {
      o.listen.push_back(v);
    } else if (option_value(argc, argv, i, nullptr, "fdname", v)) {
      for (const std::string& n : split(v, ':')) o.fdnames.push_back(n);
    } else if (option_value(argc, argv, i, "E", "setenv", v)) {
      o.setenv.push_back(v);
    } else if (a == "-a" || a == "--accept") {
      o.accept = true;
    } else if (a == "--inetd") {
      o.accept = o.inetd = true;
    } else if (a == "-d" || a == "--datagram") {
      o.datagram = true;
    } else if (option_value(argc, argv, i, nullptr, "start-limit", v)) {
      unsigned burst = 0;
      if (v == "0" || v == "off") {
        o.start_burst = 0;
      } else {
        const std::size_t slash = v.find('/');
        if (slash == std::string::npos || !parse_unsigned(v.substr(0, slash), burst) || burst == 0 ||
            !parse_seconds(v.substr(slash + 1), o.start_interval) || o.start_interval <= 0)
          throw usage_error{"--start-limit \"" + v + "\": expected BURST/SECONDS, e.g. 20/2, or 0"};
        o.start_burst = burst;
      }
    } else if (option_value(argc, argv, i, nullptr, "watchdog", v)) {
      if (!parse_seconds(v, o.watchdog) || o.watchdog <= 0 || o.watchdog > 1e6)
        throw usage_error{"--watchdog \"" + v + "\": expected a number of seconds above 0"};
    } else if (a == "--adopt") {
      o.adopt = "";
    } else if (a.rfind("--adopt=", 0) == 0) {
      o.adopt = a.substr(8);
      if (o.adopt->empty()) throw usage_error{"--adopt= needs a path"};
    } else {
      throw usage_error{"unknown option \"" + a + "\" (see --help)"};
    }
  }
  for (; i < argc; ++i) o.program.push_back(argv[i]);
  o.program.push_back(nullptr);
  if (o.program.size() == 1)
    throw usage_error{"no PROGRAM given: sockact-run [OPTIONS] -- PROGRAM [ARGS...]"};
  if (o.listen.empty()) throw usage_error{"no --listen ADDR given"};
  if (o.listen.size() > 64) throw usage_error{"more than 64 --listen addresses"};
  if (o.datagram && o.accept) throw usage_error{"--accept is for stream sockets, not with --datagram"};
  if (o.fdnames.size() > o.listen.size())
    throw usage_error{std::to_string(o.fdnames.size()) + " --fdname names for " +
                      std::to_string(o.listen.size()) + " --listen addresses"};
  for (const std::string& n : o.fdnames)
    if (n.empty() || n.size() > 255 || n.find_first_of(" \t\n=") != std::string::npos)
      throw usage_error{"--fdname \"" + n + "\": a name is 1..255 characters without ':', '=' or spaces"};
  for (const std::string& e : o.setenv)
    if (e.empty() || e[0] == '=') throw usage_error{"--setenv \"" + e + "\": expected NAME[=VALUE]"};
  if (!o.start_burst) o.start_burst = o.accept ? 200 : 20;
  return o;
}

// PROGRAM as execve() wants it: a path. Searched in PATH like execvp(), but
// here, before listening, so that a typo is an error at once.
std::string resolve_program(const std::string& name) {
  const auto check = [&](const std::string& path, bool& exists) {
    struct stat st {};
    exists = ::stat(path.c_str(), &st) == 0;
    return exists && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  bool exists = false;
  if (name.find('/') != std::string::npos) {
    if (check(name, exists)) return name;
    if (exists) die(exit_cannot_exec, "PROGRAM \"" + name + "\" is not an executable file");
    die(exit_not_found, "PROGRAM \"" + name + "\" not found");
  }
  const char* path = std::getenv("PATH");
  bool seen = false;
  for (const std::string& dir : split(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (check(candidate, exists)) return candidate;
    seen = seen || exists;
  }
  if (seen) die(exit_cannot_exec, "PROGRAM \"" + name + "\" found in PATH but not executable");
  die(exit_not_found, "PROGRAM \"" + name + "\" not found in PATH");
}

// --adopt: the library's absolute path.
std::string adopt_library(const std::string& given) {
  const auto usable = [](const std::string& p) { return ::access(p.c_str(), R_OK) == 0; };
  if (!given.empty()) {
    char* real = ::realpath(given.c_str(), nullptr);
    if (real == nullptr || !usable(real)) {
      std::free(real);
      die(exit_usage, "--adopt=" + given + ": " + errno_text(errno == 0 ? ENOENT : errno));
    }
    std::string out = real;
    std::free(real);
    return out;
  }
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    die(exit_usage, "--adopt: cannot read /proc/self/exe to find libsockact-adopt.so; give --adopt=PATH");
  const std::string bin(exe, static_cast<std::size_t>(n));
  const std::string dir = bin.substr(0, bin.rfind('/'));
  for (const std::string& p : {dir + "/libsockact-adopt.so", dir + "/../lib/libsockact-adopt.so"})
    if (usable(p)) return p;
  die(exit_usage, "--adopt: libsockact-adopt.so is neither in " + dir + " nor in " + dir +
                      "/../lib (build the target sockact_adopt, or give --adopt=PATH)");
}

// ---------------------------------------------------------------- sockets

struct held_socket {
  sockact::unique_fd fd;
  std::string address;  // as given to --listen
  std::string name;     // LISTEN_FDNAMES entry
  bool listening = false;
};

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

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

// The private NOTIFY_SOCKET: a datagram socket in a fresh temporary folder,
// both removed at exit.
class notify_socket {
 public:
  notify_socket() {
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
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;
  ~notify_socket() { remove(); }

  void remove() noexcept {
    if (path_.empty()) return;
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
    path_.clear();
  }
  int fd() const noexcept { return fd_.get(); }
  const std::string& path() const noexcept { return path_; }

  struct message {
    pid_t pid = 0;
    std::string text;
    int fds = 0;  // received and closed (FDSTORE=1: no fd store here)
  };
  // One datagram; false when none is waiting.
  bool receive(message& m) const {
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 64)];
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
          ::close(fd);
          ++m.fds;
        }
      }
    }
    return true;
  }

 private:
  std::string dir_, path_;
  sockact::unique_fd fd_;
};

// ---------------------------------------------------------------- runs

struct run {
  unsigned number = 0;
  pid_t pid = 0;
  std::string woken_by;
  std::string started_at;
  clock_type::time_point woken, started;
  std::optional<clock_type::duration> ready, accepted;
  bool stopping = false;  // STOPPING=1 received
  int stop_signal = 0;    // what sockact-run sent it to stop
  bool watchdog_fired = false;
  unsigned pings = 0;
  clock_type::time_point watchdog_deadline = clock_type::time_point::max();
  clock_type::time_point kill_deadline = clock_type::time_point::max();
};

// The environment for PROGRAM, built before fork(). LISTEN_PID and
// WATCHDOG_PID are written into their slots in the child, after fork().
class child_environment {
 public:
  child_environment(const options& o, const std::vector<held_socket>& sockets, const std::string& notify_path,
                    const std::string& adopt) {
    const std::vector<std::string> ours = {"LISTEN_PID",    "LISTEN_FDS",   "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                                           "WATCHDOG_USEC", "WATCHDOG_PID", "REMOTE_ADDR",    "REMOTE_PORT"};
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string s = *e;
      const std::string name = s.substr(0, s.find('='));
      bool skip = false;
      for (const std::string& n : ours) skip = skip || n == name;
      if (!skip && s.find('=') != std::string::npos) env[name] = s.substr(name.size() + 1);
    }
    for (const std::string& e : o.setenv) {
      const std::size_t eq = e.find('=');
      if (eq != std::string::npos) env[e.substr(0, eq)] = e.substr(eq + 1);
    }
    if (!adopt.empty()) {
      const auto it = env.find("LD_PRELOAD");
      env["LD_PRELOAD"] = it == env.end() || it->second.empty() ? adopt : adopt + ":" + it->second;
    }
    env["NOTIFY_SOCKET"] = notify_path;
    if (!o.inetd) {
      std::string names;
      for (const held_socket& s : sockets) names += (names.empty() ? "" : ":") + s.name;
      env["LISTEN_FDS"] = o.accept ? "1" : std::to_string(sockets.size());
      env["LISTEN_FDNAMES"] = o.accept ? "connection" : names;
    }
    if (o.watchdog > 0) env["WATCHDOG_USEC"] = std::to_string(static_cast<long long>(o.watchdog * 1e6));
    for (const auto& [k, v] : env) strings_.push_back(k + "=" + v);
    if (!o.inetd) add_pid_slot("LISTEN_PID");
    if (o.watchdog > 0) add_pid_slot("WATCHDOG_PID");
    strings_.push_back("REMOTE_ADDR=");  // set per connection in --accept mode
    strings_.push_back("REMOTE_PORT=");
  }

  // For one connection (--accept): REMOTE_ADDR/REMOTE_PORT as systemd sets them.
  void set_remote(const std::string& addr, const std::string& port) {
    strings_[strings_.size() - 2] = "REMOTE_ADDR=" + addr;
    strings_[strings_.size() - 1] = "REMOTE_PORT=" + port;
  }

  // Pointers for execve(); stable until the next set_remote().
  char** envp() {
    pointers_.clear();
    for (std::string& s : strings_)
      if (s != "REMOTE_ADDR=" && s != "REMOTE_PORT=") pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
    return pointers_.data();
  }

  // In the child: writes getpid() into the LISTEN_PID= and WATCHDOG_PID= slots.
  // Async-signal-safe: no allocation.
  void fill_pids() noexcept {
    char digits[pid_width];
    std::size_t n = 0;
    for (auto p = static_cast<unsigned long>(::getpid()); p > 0 || n == 0; p /= 10)
      digits[n++] = static_cast<char>('0' + p % 10);
    for (const std::size_t i : pid_slots_) {
      char* out = &strings_[i][strings_[i].size() - pid_width];
      for (std::size_t k = 0; k < pid_width; ++k) out[k] = k < n ? digits[n - 1 - k] : '\0';
    }
  }

 private:
  static constexpr std::size_t pid_width = 12;
  // "NAME=" and pid_width spaces, which fill_pids() overwrites (a NUL ends the value).
  void add_pid_slot(const char* name) {
    pid_slots_.push_back(strings_.size());
    strings_.push_back(std::string(name) + "=" + std::string(pid_width, ' '));
  }
  std::vector<std::string> strings_;
  std::vector<std::size_t> pid_slots_;
  std::vector<char*> pointers_;
};

class runner {
 public:
  runner(options o, std::string program_path, std::vector<held_socket> sockets, const std::string& adopt)
      : o_(std::move(o)),
        program_path_(std::move(program_path)),
        sockets_(std::move(sockets)),
        env_(o_, sockets_, notify_.path(), adopt) {}

  int loop();

 private:
  bool setup_signals();
  void on_signal(const signalfd_siginfo& info);
  void reap();
  void ended(run& r, int status);
  void on_notify();
  void activate(std::size_t index, clock_type::time_point woken);
  bool start(const std::string& woken_by, clock_type::time_point woken, int connection);
  void check_timers(clock_type::time_point now);
  clock_type::time_point next_deadline() const;
  // A system call failed: stop (the runs get SIGKILL, the notify socket goes).
  bool failed(const char* what) {
    std::fprintf(stderr, "%s: %s: %s\n", self, what, errno_text(errno).c_str());
    fatal_ = exit_runtime;
    return false;
  }
  bool want_listeners() const {
    return !stopping_ && (o_.accept ? runs_.size() < max_connections : runs_.empty());
  }
  run* find(pid_t pid) {
    const auto it = runs_.find(pid);
    return it == runs_.end() ? nullptr : &it->second;
  }

  options o_;
  std::string program_path_;
  std::vector<held_socket> sockets_;
  notify_socket notify_;
  child_environment env_;
  sockact::unique_fd signals_;
  sigset_t old_mask_{};
  std::map<pid_t, run> runs_;
  std::deque<clock_type::time_point> starts_;
  unsigned activations_ = 0;
  bool stopping_ = false;
  int stop_requests_ = 0;
  int exit_status_ = 0;
  int fatal_ = -1;  // exit status decided by a start failure
};

void empty_handler(int) {}

bool runner::setup_signals() {
  // Blocked and read from a signalfd. A handler too: as PID 1, a signal left
  // at SIG_DFL would be dropped by the kernel.
  sigset_t set;
  sigemptyset(&set);
  for (const int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, s);
    struct sigaction sa {};
    sa.sa_handler = empty_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(s, &sa, nullptr);
  }
  ::sigprocmask(SIG_BLOCK, &set, &old_mask_);
  ::signal(SIGPIPE, SIG_IGN);
  signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals_) return failed("signalfd");
  // Orphans of PROGRAM come to us (not to PID 1 of the host), and are reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  return true;
}

int runner::loop() {
  if (!setup_signals()) return fatal_;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    std::error_code ec;
    const sockact::fd_info info = sockact::describe_fd(sockets_[i].fd.get(), ec);
    std::fprintf(stderr, "%s: listening on %s (%s %s, name %s)\n", self, info.local_address.c_str(),
                 sockact::family_name(info.family).c_str(), sockact::type_name(info.type).c_str(),
                 sockets_[i].name.c_str());
  }
  std::fprintf(stderr, "%s: NOTIFY_SOCKET=%s; PROGRAM %s starts on the first %s\n", self,
               notify_.path().c_str(), program_path_.c_str(), o_.datagram ? "datagram" : "connection");
  {
    // Our own manager (systemd, podman --sdnotify=container), if any: we are ready.
    std::error_code ec;
    sockact::notify_ready(ec);
  }

  std::vector<pollfd> fds;
  while (fatal_ < 0 && !(stopping_ && runs_.empty())) {
    fds.clear();
    fds.push_back({signals_.get(), POLLIN, 0});
    fds.push_back({notify_.fd(), POLLIN, 0});
    const bool listening = want_listeners();
    if (listening)
      for (const held_socket& s : sockets_) fds.push_back({s.fd.get(), POLLIN, 0});
    const clock_type::time_point now = clock_type::now();
    const clock_type::time_point next = next_deadline();
    int timeout = -1;
    if (next != clock_type::time_point::max())
      timeout = next <= now
                    ? 0
                    : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      failed("poll");
      break;
    }
    const clock_type::time_point woken = clock_type::now();
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info;
      while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) on_signal(info);
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) on_notify();
    if (listening && n > 0 && want_listeners()) {
      for (std::size_t i = 0; i < sockets_.size() && fatal_ < 0; ++i) {
        if ((fds[2 + i].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
        activate(i, woken);
        if (!want_listeners()) break;
      }
    }
    check_timers(clock_type::now());
  }
  // Nothing may be left behind: the runs that are still there get SIGKILL.
  for (auto& [pid, r] : runs_) ::kill(pid, SIGKILL);
  while (!runs_.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    if (run* r = find(pid)) ended(*r, status);
  }
  notify_.remove();
  return fatal_ >= 0 ? fatal_ : exit_status_;
}

void runner::on_signal(const signalfd_siginfo& info) {
  const int sig = static_cast<int>(info.ssi_signo);
  if (sig == SIGCHLD) return reap();
  if (sig != SIGTERM && sig != SIGINT) {
    for (auto& [pid, r] : runs_) ::kill(pid, sig);
    return;
  }
  ++stop_requests_;
  stopping_ = true;
  if (runs_.empty()) {
    std::fprintf(stderr, "%s: %s with no PROGRAM running: exiting\n", self, signal_name(sig).c_str());
    return;
  }
  const int send = stop_requests_ == 1 ? sig : SIGKILL;
  std::fprintf(stderr, "%s: %s: sending %s to %zu running PROGRAM(s)%s\n", self, signal_name(sig).c_str(),
               signal_name(send).c_str(), runs_.size(),
               stop_requests_ == 1 ? "; exiting after them (again: SIGKILL)" : "");
  for (auto& [pid, r] : runs_) {
    if (r.stop_signal == 0) r.stop_signal = send;
    ::kill(pid, send);
  }
}

// Every child that ended, ours or inherited (PID 1, subreaper).
void runner::reap() {
  on_notify();  // STOPPING=1 was sent before the exit: take it into account first
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (run* r = find(pid)) ended(*r, status);
  }
}

void runner::ended(run& r, int status) {
  const clock_type::duration ran = clock_type::now() - r.started;
  std::string why;
  int shell_status = 0;
  if (WIFEXITED(status)) {
    shell_status = WEXITSTATUS(status);
    if (shell_status == 0 && r.stopping && r.stop_signal == 0 && !r.watchdog_fired)
      why = "idle (exit 0 after STOPPING=1)";
    else
      why = "exit " + std::to_string(shell_status);
  } else if (WIFSIGNALED(status)) {
    shell_status = 128 + WTERMSIG(status);
    why = "signal " + signal_name(WTERMSIG(status));
  }
  if (r.watchdog_fired)
    why += ", watchdog timeout";
  else if (r.stop_signal != 0)
    why += " after " + signal_name(r.stop_signal) + " from sockact-run";
  std::string cold = "cold start: ready ";
  cold += r.ready ? "+" + ms_text(*r.ready) : "-";
  if (!o_.accept) cold += ", accept " + (r.accepted ? "+" + ms_text(*r.accepted) : std::string("-"));
  if (r.pings > 0) cold += "; " + std::to_string(r.pings) + " watchdog pings";
  std::fprintf(stderr, "%s: activation %u: %s pid %ld, woken by %s; %s; ran %.3f s; stopped: %s\n", self,
               r.number, r.started_at.c_str(), static_cast<long>(r.pid), r.woken_by.c_str(), cold.c_str(),
               seconds(ran), why.c_str());
  if (stopping_) exit_status_ = shell_status;  // sockact-run's own status: see --help
  runs_.erase(r.pid);
}

void runner::on_notify() {
  notify_socket::message m;
  while (notify_.receive(m)) {
    run* r = find(m.pid);
    if (r == nullptr && !o_.accept && runs_.size() == 1) r = &runs_.begin()->second;  // a helper of PROGRAM
    const clock_type::time_point now = clock_type::now();
    for (const std::string& line : split(m.text, '\n')) {
      if (line.empty()) continue;
      bool show = true;
      if (r != nullptr) {
        if (line == "READY=1" && !r->ready) r->ready = now - r->woken;
        if (line == "STOPPING=1") r->stopping = true;
        if (line == "WATCHDOG=1") {
          show = r->pings++ == 0;
          if (o_.watchdog > 0 && !r->watchdog_fired)
            r->watchdog_deadline = now + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(o_.watchdog));
        }
      }
      if (show)
        std::fprintf(
            stderr, "%s: pid %ld: %s%s%s\n", self, static_cast<long>(m.pid), line.c_str(),
            line == "READY=1" && r != nullptr && r->ready ? (" (+" + ms_text(*r->ready) + ")").c_str() : "",
            line == "WATCHDOG=1" ? " (further pings are counted, not shown)" : "");
    }
    if (m.fds > 0)
      std::fprintf(stderr, "%s: pid %ld: %d fd(s) received and closed: sockact-run keeps no fd store\n", self,
                   static_cast<long>(m.pid), m.fds);
  }
}

// Socket `index` is readable: start PROGRAM for it.
void runner::activate(std::size_t index, clock_type::time_point woken) {
  held_socket& s = sockets_[index];
  std::string what = "fd " + std::to_string(3 + index) + " \"" + s.name + "\" (" + s.address + ")";
  if (!o_.accept) {
    if (o_.datagram) {  // the sender of the waiting datagram, without taking it
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      char byte = 0;
      if (::recvfrom(s.fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
                     &len) >= 0 &&
          len > sizeof(sa_family_t))
        what += ", peer " + sockact::address_to_string(reinterpret_cast<sockaddr*>(&peer), len);
    }
    start(what, woken, -1);
    return;
  }
  for (;;) {  // --accept: every waiting connection, each to a PROGRAM of its own
    if (!want_listeners() || fatal_ >= 0) return;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    sockact::unique_fd c(::accept4(s.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    if (!c) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::fprintf(stderr, "%s: accept on %s: %s\n", self, s.address.c_str(), errno_text(errno).c_str());
      return;
    }
    const std::string peer_text = sockact::address_to_string(reinterpret_cast<sockaddr*>(&peer), len);
    std::string addr, port;
    char buf[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET) {
      const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
      addr = ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
      port = std::to_string(ntohs(in.sin_port));
    } else if (peer.ss_family == AF_INET6) {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
      addr = ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
      port = std::to_string(ntohs(in6.sin6_port));
    }
    env_.set_remote(addr, port);
    start(what + (peer_text.empty() ? "" : ", peer " + peer_text), woken, c.get());
    woken = clock_type::now();
  }
}

// fork() and exec PROGRAM. connection >= 0: --accept's connection, else the
// held sockets. False when it could not start (fatal_ says how to exit).
bool runner::start(const std::string& woken_by, clock_type::time_point woken, int connection) {
  const clock_type::time_point now = clock_type::now();
  const auto interval =
      std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o_.start_interval));
  while (!starts_.empty() && now - starts_.front() >= interval) starts_.pop_front();
  if (*o_.start_burst > 0 && starts_.size() >= *o_.start_burst) {
    std::fprintf(
        stderr,
        "%s: start limit hit: PROGRAM was started %zu times within %g s (--start-limit=%u/%g), and %s is "
        "waiting again; PROGRAM does not take its connections, or exits at once. Stopping.\n",
        self, starts_.size(), o_.start_interval, *o_.start_burst, o_.start_interval, woken_by.c_str());
    fatal_ = exit_start_limit;
    return false;
  }
  starts_.push_back(now);

  int pipe_fds[2];  // exec failure report: closed by a successful exec (O_CLOEXEC)
  if (::pipe2(pipe_fds, O_CLOEXEC) < 0) return failed("pipe2");
  sockact::unique_fd report(pipe_fds[0]), report_w(pipe_fds[1]);
  std::vector<int> fds;
  if (connection >= 0)
    fds.push_back(connection);
  else
    for (const held_socket& s : sockets_) fds.push_back(s.fd.get());
  char** envp = env_.envp();
  const std::string started_at = wall_time();

  const pid_t pid = ::fork();
  if (pid < 0) return failed("fork");
  if (pid == 0) {
    // The child: async-signal-safe calls only from here to execve().
    ::setpgid(0, 0);  // a terminal's Ctrl-C reaches sockact-run only, which forwards it once
    const int n = static_cast<int>(fds.size());
    int moved[64];
    for (int i = 0; i < n && i < 64; ++i)
      moved[i] = ::fcntl(fds[static_cast<std::size_t>(i)], F_DUPFD_CLOEXEC, 3 + n);
    if (o_.inetd) {
      ::dup2(moved[0], 0);
      ::dup2(moved[0], 1);
    } else {
      for (int i = 0; i < n && i < 64; ++i) ::dup2(moved[i], 3 + i);  // without O_CLOEXEC
    }
    env_.fill_pids();
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (const int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE})
      ::sigaction(s, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    ::execve(program_path_.c_str(), o_.program.data(), envp);
    const int err = errno;
    ::write(report_w.get(), &err, sizeof err);
    ::_exit(err == ENOENT ? exit_not_found : exit_cannot_exec);
  }
  report_w.reset();
  int err = 0;
  ssize_t got = 0;
  do got = ::read(report.get(), &err, sizeof err);
  while (got < 0 && errno == EINTR);
  run r;
  r.number = ++activations_;
  r.pid = pid;
  r.woken_by = woken_by;
  r.started_at = started_at;
  r.woken = woken;
  r.started = now;
  if (o_.watchdog > 0)
    r.watchdog_deadline =
        now + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o_.watchdog));
  runs_[pid] = r;
  if (got == static_cast<ssize_t>(sizeof err)) {
    std::fprintf(stderr, "%s: cannot run %s: %s\n", self, program_path_.c_str(), errno_text(err).c_str());
    fatal_ = err == ENOENT ? exit_not_found : exit_cannot_exec;
    return false;
  }
  return true;
}

clock_type::time_point runner::next_deadline() const {
  clock_type::time_point t = clock_type::time_point::max();
  for (const auto& [pid, r] : runs_) {
    t = std::min({t, r.watchdog_deadline, r.kill_deadline});
    if (!o_.accept && !r.accepted && clock_type::now() - r.started < accept_probe_for)
      t = std::min(t, clock_type::now() + accept_probe_every);
  }
  return t;
}

void runner::check_timers(clock_type::time_point now) {
  for (auto& [pid, r] : runs_) {
    if (!o_.accept && !r.accepted && now - r.started < accept_probe_for) {
      bool waiting = false;  // is any socket's queue still non-empty?
      for (const held_socket& s : sockets_) waiting = waiting || readable(s.fd.get());
      if (!waiting) r.accepted = now - r.woken;
    }
    if (now >= r.watchdog_deadline) {
      std::fprintf(stderr, "%s: pid %ld: no WATCHDOG=1 for %g s: sending SIGABRT (SIGKILL in %lld s)\n", self,
                   static_cast<long>(pid), o_.watchdog, static_cast<long long>(kill_after_abort.count()));
      r.watchdog_fired = true;
      r.watchdog_deadline = clock_type::time_point::max();
      r.kill_deadline = now + kill_after_abort;
      ::kill(pid, SIGABRT);
    }
    if (now >= r.kill_deadline) {
      std::fprintf(stderr, "%s: pid %ld: still running after SIGABRT: sending SIGKILL\n", self,
                   static_cast<long>(pid));
      r.kill_deadline = clock_type::time_point::max();
      ::kill(pid, SIGKILL);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse_options(argc, argv);
  } catch (const usage_error& e) {
    die(exit_usage, e.message);
  }
  std::string program = resolve_program(o.program[0]);
  const std::string adopt = o.adopt ? adopt_library(*o.adopt) : std::string();
  std::vector<held_socket> sockets = open_sockets(o);
  runner r(std::move(o), std::move(program), std::move(sockets), adopt);
  return r.loop();
}
