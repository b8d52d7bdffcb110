// SPDX-License-Identifier: MIT
// Differential test: sockact's notification protocol (notify(), the notify_*
// helpers, watchdog_enabled()) against the installed libsystemd's
// sd_pid_notify_with_fds(), sd_notify() and sd_watchdog_enabled(), in one
// process. Real unix datagram receivers with SO_PASSCRED stand in for the
// manager; for every case both implementations run against the same
// environment, and the return value, NOTIFY_SOCKET afterwards and what
// arrived (bytes, fds by inode, credentials) must agree. Where both agree,
// the delivery is also checked against what was asked for, so that a shared
// mistake fails too.
#include <sockact/notify.hpp>  // first: the header must be self-contained

#include "differential_support.hpp"

#include <gtest/gtest.h>
#include <systemd/sd-daemon.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using sockact_test::die;
using sockact_test::ec_anomaly;
using sockact_test::env_value;
using sockact_test::errno_name;
using sockact_test::read_env;
using sockact_test::sentinel_error;
using sockact_test::show_rc;
using sockact_test::write_env;

// Bytes in C-string syntax, cut after `limit` bytes with the full length added.
std::string escape(std::string_view s, std::size_t limit = 120) {
  return sockact_test::escape(s, limit);
}

constexpr int max_printed = 40;          // full reports per sweep (classes of mismatch); the rest are counted
constexpr std::size_t pool_size = 254;   // one more than SCM_MAX_FD
constexpr std::size_t scm_max_fd = 253;  // the kernel's limit per message
constexpr int pool_floor = 1000;         // the pool's fds live here and above
constexpr int never_open_fd = 1 << 20;   // above any RLIMIT_NOFILE: always EBADF

// ---------------------------------------------------------------------------
// Environment

env_value unset_value() {
  return {};
}
env_value set_value(std::string v) {
  return {true, std::move(v)};
}

std::string show(const env_value& v) {
  return v.set ? escape(v.value, 400) : "<unset>";
}

// ---------------------------------------------------------------------------
// Process facts

using inode_id = std::pair<dev_t, ino_t>;

inode_id identity(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) die("fstat");
  return {st.st_dev, st.st_ino};
}

bool has_effective_cap(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) < 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

// Removes capabilities from the effective set (they stay permitted).
bool drop_effective_caps(const std::vector<int>& caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) < 0) return false;
  for (const int cap : caps) data[cap / 32].effective &= ~(1u << (cap % 32));
  return ::syscall(SYS_capset, &header, data) == 0;
}

bool pid_exists(pid_t pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// The pid the receiver should see: the one asked for when the kernel lets us
// claim it (CAP_SYS_ADMIN, and the process exists), else our own.
pid_t expected_sender_pid(pid_t asked) {
  const pid_t self = ::getpid();
  if (asked == 0 || asked == self) return self;
  return has_effective_cap(CAP_SYS_ADMIN) && pid_exists(asked) ? asked : self;
}

// ---------------------------------------------------------------------------
// vsock: what a notification to CID 2 (the host) would do on this machine.
//
// Both implementations try SOCK_DGRAM, then fall back to SOCK_SEQPACKET (and
// sockact and newer libsystemd to SOCK_STREAM). We must not talk to a real
// peer, so a case with a real CID runs only when the kernel provably refuses
// it before anything leaves this machine: no AF_VSOCK at all, or no
// datagram transport and a virtio transport without the SEQPACKET feature
// (seqpacket connect() then fails with ESOCKTNOSUPPORT locally).

int vsock_socket_errno(int type) {
  const int fd = ::socket(AF_VSOCK, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// True when a virtio vsock device offers VIRTIO_VSOCK_F_SEQPACKET (bit 1),
// or when that cannot be read.
bool virtio_vsock_may_seqpacket() {
  DIR* d = ::opendir("/sys/bus/virtio/devices");
  if (d == nullptr) return ::access("/sys/bus", F_OK) != 0;  // no virtio bus, or no sysfs to ask
  bool may = false;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string base = std::string("/sys/bus/virtio/devices/") + e->d_name;
    const auto read_line = [](const std::string& path) {
      std::string s;
      if (std::FILE* f = std::fopen(path.c_str(), "re")) {
        char buf[256];
        if (std::fgets(buf, sizeof buf, f) != nullptr) s = buf;
        std::fclose(f);
      }
      return s;
    };
    if (read_line(base + "/device").rfind("0x0013", 0) != 0) continue;  // VIRTIO_ID_VSOCK
    const std::string features = read_line(base + "/features");
    if (features.size() < 2 || features[1] != '0') may = true;
  }
  ::closedir(d);
  return may;
}

struct vsock_policy {
  bool stream_stays_local = false;    // socket(AF_VSOCK, SOCK_STREAM) fails
  bool host_cid_stays_local = false;  // "vsock:2:...", "vsock-dgram:2:...", "vsock-seqpacket:2:..." are safe
  std::string facts;
};

vsock_policy probe_vsock() {
  vsock_policy p;
  const int dgram = vsock_socket_errno(SOCK_DGRAM);
  const int seqpacket = vsock_socket_errno(SOCK_SEQPACKET);
  const int stream = vsock_socket_errno(SOCK_STREAM);
  const auto show_open = [](int e) { return e == 0 ? std::string("opens") : errno_name(e); };
  p.stream_stays_local = stream != 0;
  if (dgram != 0 && seqpacket != 0 && stream != 0) {
    p.host_cid_stays_local = true;
  } else if (dgram != 0) {
    // No datagrams: the fallback is seqpacket, or stream where seqpacket cannot open.
    p.host_cid_stays_local = seqpacket == 0 ? !virtio_vsock_may_seqpacket() : stream != 0;
  }
  p.facts = "AF_VSOCK dgram " + show_open(dgram) + ", seqpacket " + show_open(seqpacket) + ", stream " +
            show_open(stream);
  return p;
}

// ---------------------------------------------------------------------------
// The receiving end: datagram sockets with SO_PASSCRED, and the fds to send

struct receiver {
  std::string label;
  std::string address;  // as NOTIFY_SOCKET names it
  int fd = -1;
};

struct message {
  std::size_t receiver = 0;
  std::size_t length = 0;  // of the datagram, even when cut (MSG_TRUNC)
  std::string bytes;
  int flags = 0;  // MSG_TRUNC, MSG_CTRUNC
  std::vector<inode_id> fds;
  bool has_creds = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int other_control = 0;
  friend bool operator==(const message& a, const message& b) {
    return a.receiver == b.receiver && a.length == b.length && a.bytes == b.bytes && a.flags == b.flags &&
           a.fds == b.fds && a.has_creds == b.has_creds && a.pid == b.pid && a.uid == b.uid &&
           a.gid == b.gid && a.other_control == b.other_control;
  }
};

int bind_unix(int type, const std::string& address) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket(AF_UNIX)");
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::size_t len = offsetof(sockaddr_un, sun_path);
  if (address[0] == '@') {
    std::memcpy(un.sun_path + 1, address.data() + 1, address.size() - 1);  // leading NUL
    len += address.size();
  } else {
    std::memcpy(un.sun_path, address.c_str(), address.size() + 1);
    len += address.size() + 1;
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&un), static_cast<socklen_t>(len)) < 0)
    die(("bind " + address).c_str());
  return fd;
}

class world {
 public:
  world() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
      rl.rlim_cur = std::min<rlim_t>(4096, rl.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    char tmpl[] = "/tmp/sockact-notify-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
    dir = tmpl;
    const std::string tag = "sockact-notify-diff-" + std::to_string(::getpid());

    add_receiver("path", dir + "/notify");
    add_receiver("abstract", "@" + tag);
    std::string long_path = dir + "/";
    long_path += std::string(107 - long_path.size(), 'p');  // 107 bytes + NUL fill sun_path
    add_receiver("path of 107 bytes", long_path);
    std::string abstract_106 = "@" + tag + "-";
    abstract_106 += std::string(107 - abstract_106.size(), 'a');  // the longest libsystemd takes
    add_receiver("abstract name of 106 bytes", abstract_106);
    std::string abstract_107 = "@" + tag + "-";
    abstract_107 += std::string(108 - abstract_107.size(), 'b');  // NUL + 107 bytes fill sun_path
    add_receiver("abstract name of 107 bytes (the kernel's longest)", abstract_107);

    stream_listener = bind_unix(SOCK_STREAM, dir + "/stream");
    if (::listen(stream_listener, 4) < 0) die("listen");
    const int file = ::open((dir + "/file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (file < 0) die("creating a file");
    ::close(file);
    if (::symlink((dir + "/notify").c_str(), (dir + "/link").c_str()) < 0) die("symlink");

    for (std::size_t i = 0; i < pool_size; ++i) {
      const int fd = ::memfd_create("sockact-notify-diff", MFD_CLOEXEC);
      if (fd < 0) die("memfd_create");
      const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, pool_floor);
      if (high < 0) die("F_DUPFD_CLOEXEC");
      ::close(fd);
      pool.push_back(high);
    }
    // A number just closed, high enough that nothing the calls open lands on it.
    closed_fd = ::fcntl(pool[0], F_DUPFD_CLOEXEC, pool_floor - 100);
    if (closed_fd < 0) die("F_DUPFD_CLOEXEC");
    ::close(closed_fd);

    rx.resize(std::size_t{1} << 20);
    control.resize(CMSG_SPACE(sizeof(int) * 512) + CMSG_SPACE(sizeof(ucred)) + 256);
  }
  ~world() {
    for (const receiver& r : receivers) ::close(r.fd);
    ::close(stream_listener);
    for (const int fd : pool) ::close(fd);
    for (const receiver& r : receivers)
      if (r.address[0] == '/') ::unlink(r.address.c_str());
    for (const char* name : {"/stream", "/file", "/link"}) ::unlink((dir + name).c_str());
    ::rmdir(dir.c_str());
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  // Everything that arrived since the last call, at any receiver; received
  // fds are identified by inode and closed.
  std::vector<message> drain() {
    std::vector<message> got;
    for (std::size_t i = 0; i < receivers.size(); ++i) {
      for (;;) {
        iovec iov{rx.data(), rx.size()};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control.data();
        m.msg_controllen = control.size();
        const ssize_t n = ::recvmsg(receivers[i].fd, &m, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          die("recvmsg");
        }
        message msg;
        msg.receiver = i;
        msg.length = static_cast<std::size_t>(n);
        msg.bytes.assign(rx.data(), std::min(msg.length, rx.size()));
        msg.flags = m.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t k = 0; k < count; ++k) {
              int fd = -1;
              std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
              msg.fds.push_back(identity(fd));
              ::close(fd);
            }
          } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                     c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
            ucred cred{};
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            msg.has_creds = true;
            msg.pid = cred.pid;
            msg.uid = cred.uid;
            msg.gid = cred.gid;
          } else {
            ++msg.other_control;
          }
        }
        got.push_back(std::move(msg));
      }
    }
    return got;
  }

  std::string dir;
  std::vector<receiver> receivers;
  int stream_listener = -1;
  std::vector<int> pool;  // memfds: each its own inode
  int closed_fd = -1;

 private:
  void add_receiver(const char* label, const std::string& address) {
    const int fd = bind_unix(SOCK_DGRAM, address);
    const int on = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) die("SO_PASSCRED");
    receivers.push_back({label, address, fd});
  }
  std::vector<char> rx;
  std::vector<unsigned char> control;
};

world* the_world = nullptr;

world& w() {
  return *the_world;
}

// ---------------------------------------------------------------------------
// Cases

enum class syntax {
  plain,        // every libsystemd knows it
  vsock,        // "vsock:CID:PORT": libsystemd 252 refuses it (EINVAL), newer ones send
  vsock_typed,  // "vsock-stream:" and friends: systemd >= 256
};

// What the installed libsystemd understands, asked of it with addresses that
// fail in parsing (a port that overflows) so nothing is ever sent.
struct libsystemd_syntax {
  bool vsock = false;
  bool vsock_typed = false;
  int unknown_rc = 0;  // its answer to an address form it does not know
  bool knows(syntax form) const {
    return form == syntax::plain || (form == syntax::vsock ? vsock : vsock_typed);
  }
};

libsystemd_syntax probe_libsystemd() {
  const auto rc_for = [](const char* address) {
    ::setenv("NOTIFY_SOCKET", address, 1);
    const int r = ::sd_notify(0, "");
    ::unsetenv("NOTIFY_SOCKET");
    return r;
  };
  libsystemd_syntax p;
  p.vsock = rc_for("vsock:1:4294967296") == -ERANGE;
  p.vsock_typed = rc_for("vsock-stream:1:4294967296") == -ERANGE;
  p.unknown_rc = rc_for("sockact-unknown:1:2");
  return p;
}

const libsystemd_syntax& libsystemd_knows() {
  static const libsystemd_syntax p = probe_libsystemd();
  return p;
}

struct address_choice {
  std::string label;
  env_value value;
  int receiver = -1;  // where a successful send must arrive, -1 nowhere we listen
  syntax form = syntax::plain;
};

struct pid_choice {
  std::string label;
  pid_t value = 0;
};

struct fd_choice {
  std::string label;
  std::vector<int> fds;
  std::size_t count = 0;
  bool null = false;  // pass nullptr whatever count says
  const int* pointer() const { return null ? nullptr : fds.data(); }
};

enum class call_kind {
  pid_with_fds,  // notify(state, fds, n, options, ec)  vs sd_pid_notify_with_fds()
  plain,         // notify(state, ec)                    vs sd_notify(0, state)
  throwing,      // notify(state), std::system_error     vs sd_notify(0, state)
};

const char* call_name(call_kind k) {
  if (k == call_kind::pid_with_fds)
    return "notify(state, fds, n, {unset, pid}, ec) vs sd_pid_notify_with_fds";
  if (k == call_kind::plain) return "notify(state, ec) vs sd_notify(0, state)";
  return "notify(state) throwing vs sd_notify(0, state)";
}

struct notify_case {
  call_kind call = call_kind::pid_with_fds;
  const std::string* state = nullptr;
  const address_choice* address = nullptr;
  const pid_choice* pid = nullptr;
  const fd_choice* fds = nullptr;
  bool unset = false;
};

std::string describe(const notify_case& c) {
  std::string s = std::string("  call:          ") + call_name(c.call) + "\n" +
                  "  NOTIFY_SOCKET: " + show(c.address->value) + " (" + c.address->label + ")\n" +
                  "  state:         " + escape(*c.state) + "\n";
  if (c.call == call_kind::pid_with_fds)
    s += "  pid:           " + c.pid->label + "\n  fds:           " + c.fds->label + "\n" +
         "  unset_environment: " + (c.unset ? "true" : "false") + "\n";
  return s;
}

struct outcome {
  int rc = 0;  // 1, 0 or -errno
  int errno_after = 0;
  env_value notify_socket;  // afterwards
  std::vector<message> messages;
  std::string contract;  // sockact's ec convention, "" when kept
};

bool same_observable(const outcome& a, const outcome& b) {
  return a.rc == b.rc && a.notify_socket == b.notify_socket && a.messages == b.messages;
}

std::string describe_fds(const std::vector<inode_id>& ids, const std::vector<inode_id>& sent) {
  if (ids.empty()) return "no fds";
  std::string s = std::to_string(ids.size()) + " fds";
  if (ids == sent) return s + " (the ones sent)";
  s += " [";
  for (std::size_t i = 0; i < ids.size() && i < 4; ++i)
    s += (i ? " " : "") + std::to_string(ids[i].first) + ":" + std::to_string(ids[i].second);
  return s + (ids.size() > 4 ? " ...]" : "]");
}

std::string describe(const outcome& o, const std::vector<inode_id>& sent) {
  std::string s = "rc " + show_rc(o.rc) + ", errno afterwards " +
                  (o.errno_after ? errno_name(o.errno_after) : "0") + ", NOTIFY_SOCKET afterwards " +
                  show(o.notify_socket);
  if (!o.contract.empty()) s += ", " + o.contract;
  if (o.messages.empty()) return s + ", nothing arrived";
  for (const message& m : o.messages) {
    s += "\n      at " + w().receivers[m.receiver].label + ": " + std::to_string(m.length) + " bytes " +
         escape(m.bytes, 80) + ", " + describe_fds(m.fds, sent);
    if (m.has_creds)
      s += ", creds pid " + std::to_string(m.pid) + " uid " + std::to_string(m.uid) + " gid " +
           std::to_string(m.gid);
    else
      s += ", no creds";
    if (m.flags & MSG_TRUNC) s += ", MSG_TRUNC";
    if (m.flags & MSG_CTRUNC) s += ", MSG_CTRUNC";
    if (m.other_control) s += ", " + std::to_string(m.other_control) + " other control messages";
  }
  return s;
}

std::vector<inode_id> sent_ids(const notify_case& c) {
  std::vector<inode_id> ids;
  if (c.call != call_kind::pid_with_fds || c.fds->null) return ids;
  for (std::size_t i = 0; i < c.fds->count; ++i) {
    struct stat st {};
    if (::fstat(c.fds->fds[i], &st) < 0) return {};  // a bad fd: nothing can arrive
    ids.emplace_back(st.st_dev, st.st_ino);
  }
  return ids;
}

outcome run_sockact(const notify_case& c) {
  write_env("NOTIFY_SOCKET", c.address->value);
  outcome o;
  std::error_code ec = sentinel_error();
  bool sent = false;
  errno = 0;
  switch (c.call) {
    case call_kind::pid_with_fds: {
      sockact::notify_options options;
      options.unset_environment = c.unset;
      options.pid = c.pid->value;
      sent = sockact::notify(*c.state, c.fds->pointer(), c.fds->count, options, ec);
      break;
    }
    case call_kind::plain:
      sent = sockact::notify(*c.state, ec);
      break;
    case call_kind::throwing:
#if SOCKACT_HAS_EXCEPTIONS
      try {
        ec.clear();
        sent = sockact::notify(std::string_view(*c.state));
      } catch (const std::system_error& e) {
        ec = e.code();
      }
#endif
      break;
  }
  o.errno_after = errno;
  o.rc = ec ? -ec.value() : sent ? 1 : 0;
  o.contract = ec_anomaly(ec);
  o.notify_socket = read_env("NOTIFY_SOCKET");
  o.messages = w().drain();
  return o;
}

outcome run_libsystemd(const notify_case& c) {
  write_env("NOTIFY_SOCKET", c.address->value);
  outcome o;
  errno = 0;
  if (c.call == call_kind::pid_with_fds)
    o.rc = ::sd_pid_notify_with_fds(c.pid->value, c.unset ? 1 : 0, c.state->c_str(), c.fds->pointer(),
                                    static_cast<unsigned>(c.fds->count));
  else
    o.rc = ::sd_notify(0, c.state->c_str());
  o.errno_after = errno;
  o.notify_socket = read_env("NOTIFY_SOCKET");
  o.messages = w().drain();
  return o;
}

struct sweep_stats {
  std::size_t cases = 0;
  std::size_t failures = 0;
  std::size_t errno_differences = 0;  // informational: errno after a call is in neither contract
  std::map<std::string, std::size_t> libsystemd_results;
  std::map<std::string, std::size_t> expected;    // expected difference -> cases
  std::map<std::string, std::size_t> mismatches;  // class of mismatch -> cases
  std::string report;                             // the first of each class, in full

  std::string summary() const {
    std::string s = std::to_string(cases) + " cases, " + std::to_string(failures) + " differing calls\n";
    s += "  libsystemd results:";
    for (const auto& [r, n] : libsystemd_results) s += " " + r + ":" + std::to_string(n);
    s += "\n  errno afterwards differs (informational) in " + std::to_string(errno_differences) + " cases\n";
    for (const auto& [what, n] : expected)
      s += "  expected difference, " + std::to_string(n) + "x: " + what + "\n";
    for (const auto& [what, n] : mismatches) s += "  MISMATCH, " + std::to_string(n) + "x: " + what + "\n";
    return s;
  }
};

// Did the call deliver what was asked for? Checked where both agree.
std::string delivery_problem(const notify_case& c, const outcome& o) {
  const env_value& before = c.address->value;
  const bool unset = c.call == call_kind::pid_with_fds && c.unset;
  if (unset && o.notify_socket.set) return "NOTIFY_SOCKET still set after unset_environment";
  if (!unset && !(o.notify_socket == before)) return "NOTIFY_SOCKET changed without unset_environment";
  if (o.rc != 1) return o.messages.empty() ? "" : "a message arrived although the call did not send";
  if (c.address->receiver < 0) return o.messages.empty() ? "" : "a message arrived at an unrelated receiver";
  if (o.messages.size() != 1) return "sent, but " + std::to_string(o.messages.size()) + " messages arrived";
  const message& m = o.messages[0];
  if (m.receiver != static_cast<std::size_t>(c.address->receiver)) return "arrived at the wrong receiver";
  const std::string expected = c.state->substr(0, c.state->find('\0'));
  if (m.length != expected.size() || m.bytes != expected || m.flags != 0)
    return "the bytes are not the state up to its first NUL";
  if (m.fds != sent_ids(c)) return "the fds are not the ones sent";
  if (!m.has_creds) return "no credentials";
  if (m.uid != ::getuid() || m.gid != ::getgid()) return "credentials: not our real uid/gid";
  const pid_t asked = c.call == call_kind::pid_with_fds ? c.pid->value : 0;
  if (m.pid != expected_sender_pid(asked))
    return "credentials: pid " + std::to_string(m.pid) + ", expected " +
           std::to_string(expected_sender_pid(asked));
  return "";
}

// "" when the pair is acceptable; expected differences are asserted and tallied.
std::string judge(const notify_case& c, const outcome& ours, const outcome& theirs, sweep_stats& st) {
  if (!ours.contract.empty()) return "sockact's error_code: " + ours.contract;
  const bool same = same_observable(ours, theirs);
  const bool nothing_arrived = ours.messages.empty() && theirs.messages.empty();
  const bool env_agrees = ours.notify_socket == theirs.notify_socket;

  // Expected difference 1: more than SCM_MAX_FD (253) fds. libsystemd >= 256
  // returns -E2BIG before looking at NOTIFY_SOCKET, and so does sockact;
  // libsystemd 252 has no check: 0 without NOTIFY_SOCKET, its address errors,
  // else the kernel's EINVAL. Nothing may arrive either way.
  if (c.call == call_kind::pid_with_fds && c.fds->count > scm_max_fd && !c.fds->null && !same) {
    if (ours.rc != -E2BIG) return "more than 253 fds: sockact must return -E2BIG";
    if (!nothing_arrived) return "more than 253 fds: something arrived";
    if (theirs.rc == 1) return "more than 253 fds: libsystemd reports success";
    if (!env_agrees) return "more than 253 fds: NOTIFY_SOCKET afterwards differs";
    ++st.expected["more than 253 fds: sockact -E2BIG (as libsystemd >= 256), libsystemd " +
                  show_rc(theirs.rc)];
    return "";
  }
  // Expected difference 2: vsock addresses the installed libsystemd does not
  // know. 252 refuses every non-unix NOTIFY_SOCKET with EINVAL; vsock:CID:PORT
  // came later, "vsock-stream:", "vsock-dgram:", "vsock-seqpacket:" with 256.
  // sockact parses them as newer libsystemd does; here it can only fail (no
  // vsock peer is ever reached, see probe_vsock), and nothing may arrive.
  // Where the installed libsystemd knows the form, results must be equal.
  const libsystemd_syntax& lib = libsystemd_knows();
  if (!lib.knows(c.address->form) && !same) {
    if (theirs.rc != lib.unknown_rc) return "vsock form: libsystemd did not refuse it as unknown";
    if (!nothing_arrived) return "vsock form: something arrived at a unix receiver";
    if (!env_agrees) return "vsock form: NOTIFY_SOCKET afterwards differs";
    ++st.expected["NOTIFY_SOCKET=" + escape(c.address->value.value) +
                  " (vsock, unknown to this libsystemd): sockact " + show_rc(ours.rc) + ", libsystemd " +
                  show_rc(theirs.rc)];
    return "";
  }
  if (!same) {
    if (ours.rc != theirs.rc) return "return values differ";
    if (!env_agrees) return "NOTIFY_SOCKET afterwards differs";
    return "what arrived differs";
  }
  const std::string problem = delivery_problem(c, ours);
  return problem.empty() ? "" : "both agree, but " + problem;
}

void run_case(const notify_case& c, sweep_stats& st) {
  ++st.cases;
  const std::vector<message> stray = w().drain();
  const outcome ours = run_sockact(c);
  const outcome theirs = run_libsystemd(c);
  ++st.libsystemd_results[show_rc(theirs.rc)];
  if (ours.errno_after != theirs.errno_after) ++st.errno_differences;
  std::string problem = stray.empty() ? judge(c, ours, theirs, st) : "a message was waiting before the case";
  if (problem.empty()) return;
  ++st.failures;
  std::string key = problem + ": " + call_name(c.call) + ", NOTIFY_SOCKET " + c.address->label +
                    " -> sockact " + show_rc(ours.rc) + ", libsystemd " + show_rc(theirs.rc);
  // One full report per class of mismatch, so that a rare class is not
  // hidden behind a common one.
  if (st.mismatches[key]++ > 0 || st.mismatches.size() > static_cast<std::size_t>(max_printed)) return;
  const std::vector<inode_id> sent = sent_ids(c);
  st.report += "\n" + problem + "\n" + describe(c) + "    sockact:    " + describe(ours, sent) + "\n" +
               "    libsystemd: " + describe(theirs, sent) + "\n";
}

// ---------------------------------------------------------------------------
// The choices

std::vector<address_choice> addresses(const vsock_policy& vsock, std::string* skipped) {
  const world& x = w();
  const std::string& dir = x.dir;
  std::vector<address_choice> a;
  const auto add = [&](std::string label, env_value v, int receiver = -1, syntax form = syntax::plain) {
    a.push_back({std::move(label), std::move(v), receiver, form});
  };
  const auto both = [&](const std::string& v, syntax form = syntax::plain) {
    add(escape(v), set_value(v), -1, form);
  };
  add("unset", unset_value());
  for (std::size_t i = 0; i < x.receivers.size(); ++i)
    add(x.receivers[i].label, set_value(x.receivers[i].address), static_cast<int>(i));
  add("symlink to the path receiver", set_value(dir + "/link"), 0);
  add("a unix stream listener", set_value(dir + "/stream"));
  add("a regular file", set_value(dir + "/file"));
  add("the directory", set_value(dir));
  add("a missing path", set_value(dir + "/missing"));
  add("a path under a missing directory", set_value(dir + "/nodir/x"));
  add("a path under a regular file", set_value(dir + "/file/x"));
  add("the path receiver with a trailing slash", set_value(dir + "/notify/"));
  add("path of 108 bytes (no room for the NUL)", set_value(dir + "/" + std::string(107 - dir.size(), 'q')));
  add("path of 300 bytes", set_value(dir + "/" + std::string(299 - dir.size(), 'q')));
  add("abstract name of 108 bytes", set_value("@" + std::string(108, 'b')));
  add("abstract name of 300 bytes", set_value("@" + std::string(300, 'b')));
  add("an abstract name nobody listens on",
      set_value("@sockact-notify-nobody-" + std::to_string(::getpid())));
  for (const char* v :
       {"/", "@", "//", "", "foo", "./notify", " /tmp/x", "unix:/tmp/x", "VSOCK:2:5", "vsock-bogus:2:5"})
    both(v);
  for (const char* v : {"vsock:", "vsock::1234", "vsock:x:1", "vsock:1:", "vsock:2", "vsock:4294967296:1",
                        "vsock:2:4294967296", "vsock:-1:1", "vsock:4294967295:1", "vsock:2:4294967295",
                        "vsock:2:1234x", "vsock:2:1234:5", "vsock:any:5", "vsock: 2:x"})
    both(v, syntax::vsock);
  for (const char* v : {"vsock-stream::5", "vsock-stream:x:5", "vsock-dgram:", "vsock-seqpacket:1:"})
    both(v, syntax::vsock_typed);
  // Real CIDs: only where the kernel refuses before anything leaves (see probe_vsock).
  if (vsock.host_cid_stays_local) {
    both("vsock:2:1234", syntax::vsock);
    both("vsock:0x2:0x4d2", syntax::vsock);
    both("vsock:host:1234", syntax::vsock);
    both("vsock-dgram:2:5", syntax::vsock_typed);
    both("vsock-seqpacket:2:5", syntax::vsock_typed);
  } else {
    *skipped += " vsock:2:1234 vsock:0x2:0x4d2 vsock-dgram:2:5 vsock-seqpacket:2:5";
  }
  if (vsock.stream_stays_local && vsock.host_cid_stays_local)
    both("vsock-stream:2:5", syntax::vsock_typed);
  else
    *skipped += " vsock-stream:2:5";
  return a;
}

std::vector<pid_choice> pids() {
  const pid_t self = ::getpid();
  const pid_t parent = ::getppid();
  return {{"0 (ourselves)", 0},
          {"own pid " + std::to_string(self), self},
          {"pid 1", 1},
          {"parent pid " + std::to_string(parent), parent},
          {"pid 2147483647 (no such process)", INT_MAX},
          {"pid -1", -1}};
}

std::vector<fd_choice> fd_choices() {
  const std::vector<int>& pool = w().pool;
  const auto first = [&](std::size_t n) {
    return std::vector<int>(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(n));
  };
  std::vector<fd_choice> f;
  f.push_back({"none (nullptr, 0)", {}, 0, true});
  f.push_back({"none (a pointer, 0)", first(1), 0, false});
  f.push_back({"1 memfd", first(1), 1, false});
  f.push_back({"3 memfds", first(3), 3, false});
  f.push_back({"253 memfds (SCM_MAX_FD)", first(253), 253, false});
  f.push_back({"254 memfds (one over SCM_MAX_FD)", first(254), 254, false});
  f.push_back({"nullptr with n = 1", {}, 1, true});
  f.push_back({"{-1}", {-1}, 1, false});
  f.push_back({"{" + std::to_string(w().closed_fd) + "} (just closed)", {w().closed_fd}, 1, false});
  f.push_back(
      {"{memfd, " + std::to_string(never_open_fd) + " (never open)}", {pool[0], never_open_fd}, 2, false});
  return f;
}

std::vector<std::string> states() {
  std::string all_bytes;
  for (int c = 1; c < 256; ++c) all_bytes += static_cast<char>(c);
  std::vector<std::string> s = {
      "READY=1",
      "STOPPING=1",
      "RELOADING=1",
      "STATUS=Serving on :8080",
      "STATUS=caf\xc3\xa9 \xe2\x98\x83 up",
      "STATUS=line one\nline two",
      "STATUS=",
      "MAINPID=1",
      "MAINPID=" + std::to_string(::getpid()),
      "EXTEND_TIMEOUT_USEC=5000000",
      "WATCHDOG=1",
      "WATCHDOG=trigger",
      "WATCHDOG_USEC=20000000",
      "FDSTORE=1\nFDNAME=x",
      "FDSTOREREMOVE=1\nFDNAME=x",
      "ERRNO=2",
      "READY=1\nSTATUS=ok\nMAINPID=1\n",
      "",
      "\n",
      "\r\n",
      "  READY=1  ",
      "X=\xff\xfe\x80",
      all_bytes,
      std::string("READY=1\0STATUS=after a NUL", 26),
      std::string("\0READY=1", 8),
      std::string(1, '\0'),
      "STATUS=" + std::string(64 * 1024, 's'),
      "STATUS=" + std::string(128 * 1024 + 1, 's'),
      "STATUS=" + std::string(17 * 1024 * 1024, 'S')};  // over the 16 MiB send buffer
  return s;
}

// Every address x pid x fd set x unset, with two states.
sweep_stats sweep_addresses(const vsock_policy& vsock, std::string* skipped) {
  const auto a = addresses(vsock, skipped);
  const auto p = pids();
  const auto f = fd_choices();
  const std::vector<std::string> s = {"READY=1", "FDSTORE=1\nFDNAME=x"};
  sweep_stats st;
  for (const auto& address : a)
    for (const auto& pid : p)
      for (const auto& fds : f)
        for (const bool unset : {false, true})
          for (const auto& state : s)
            run_case({call_kind::pid_with_fds, &state, &address, &pid, &fds, unset}, st);
  return st;
}

// Every state x a few addresses x pids x {no fd, 1 fd} x unset, and the
// two-argument and throwing notify() against sd_notify().
sweep_stats sweep_states(const vsock_policy& vsock, std::string* skipped) {
  const auto all = addresses(vsock, skipped);
  std::vector<address_choice> a;
  for (const auto& x : all)
    if (x.label == "unset" || x.receiver >= 0 || x.label == "a missing path" || x.label == "\"/\"" ||
        x.label == "\"vsock::1234\"")
      a.push_back(x);
  const auto all_pids = pids();
  const std::vector<pid_choice> p = {all_pids[0], all_pids[1], all_pids[2], all_pids[4]};
  const auto all_fds = fd_choices();
  const std::vector<fd_choice> f = {all_fds[0], all_fds[2]};
  const auto s = states();
  sweep_stats st;
  for (const auto& state : s)
    for (const auto& address : a) {
      for (const auto& pid : p)
        for (const auto& fds : f)
          for (const bool unset : {false, true})
            run_case({call_kind::pid_with_fds, &state, &address, &pid, &fds, unset}, st);
      run_case({call_kind::plain, &state, &address, &p[0], &f[0], false}, st);
#if SOCKACT_HAS_EXCEPTIONS
      run_case({call_kind::throwing, &state, &address, &p[0], &f[0], false}, st);
#endif
    }
  return st;
}

// A smaller sweep for the privilege variants: the addresses that deliver,
// one that fails, unset; every pid; a few fd sets; the large states.
sweep_stats sweep_credentials(const vsock_policy& vsock) {
  std::string ignored;
  const auto all = addresses(vsock, &ignored);
  std::vector<address_choice> a;
  for (const auto& x : all)
    if (x.label == "unset" || x.receiver >= 0 || x.label == "a missing path") a.push_back(x);
  const auto p = pids();
  const auto all_fds = fd_choices();
  const std::vector<fd_choice> f = {all_fds[0], all_fds[2], all_fds[3], all_fds[4], all_fds[7]};
  const auto all_states = states();
  const std::vector<std::string> s = {"READY=1", "", all_states[all_states.size() - 3],
                                      all_states[all_states.size() - 2], all_states.back()};
  sweep_stats st;
  for (const auto& state : s)
    for (const auto& address : a)
      for (const auto& pid : p)
        for (const auto& fds : f)
          for (const bool unset : {false, true})
            run_case({call_kind::pid_with_fds, &state, &address, &pid, &fds, unset}, st);
  return st;
}

const vsock_policy& vsock() {
  static const vsock_policy p = probe_vsock();
  return p;
}

void finish(const char* what, const sweep_stats& st, const std::string& skipped) {
  const libsystemd_syntax& lib = libsystemd_knows();
  std::printf("%s: %s  installed libsystemd: vsock:CID:PORT %s, vsock-TYPE: %s, unknown forms -> %s\n", what,
              st.summary().c_str(), lib.vsock ? "known" : "unknown", lib.vsock_typed ? "known" : "unknown",
              show_rc(lib.unknown_rc).c_str());
  if (!skipped.empty())
    std::printf("  not run, to keep away from a real vsock peer (%s):%s\n", vsock().facts.c_str(),
                skipped.c_str());
  EXPECT_EQ(st.failures, 0u) << st.failures << " differing calls (the first of each class shown, up to "
                             << max_printed << " classes)\n"
                             << st.summary() << st.report;
}

TEST(NotifyDifferential, Addresses) {
  std::string skipped;
  const sweep_stats st = sweep_addresses(vsock(), &skipped);
  finish("addresses x pids x fds x unset", st, skipped);
  EXPECT_GE(st.cases, 5000u);
}

TEST(NotifyDifferential, States) {
  std::string skipped;
  const sweep_stats st = sweep_states(vsock(), &skipped);
  finish("states x addresses x pids x fds x unset", st, "");
  EXPECT_GE(st.cases, 1000u);
}

// Runs sweep_credentials() in a child that first calls prepare(): the
// credentials the kernel lets us claim depend on who we are. The child
// reports through a pipe; gtest stays in the parent.
void run_in_child(const char* what, const std::function<std::string()>& prepare) {
  (void)vsock();  // probed here, inherited
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(p[0]);
    std::string text;
    int code = 0;
    if (std::string skip = prepare(); !skip.empty()) {
      text = skip;
      code = 77;
    } else {
      const sweep_stats st = sweep_credentials(vsock());
      text = st.summary() + st.report;
      code = st.failures == 0 && st.cases > 0 ? 0 : 1;
    }
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(p[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(code);
  }
  ::close(p[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << what << ": the child died, status " << status << "\n" << text;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << what << ": " << text;
  std::printf("%s: %s", what, text.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 0) << what << ":\n" << text;
}

// Without CAP_SYS_ADMIN the kernel refuses SCM_CREDENTIALS naming another
// process (EPERM): both must fall back to sending as ourselves. Without
// CAP_NET_ADMIN, SO_SNDBUFFORCE fails and both fall back to SO_SNDBUF.
TEST(NotifyDifferential, CredentialsWithoutCapSysAdmin) {
  run_in_child("without CAP_SYS_ADMIN and CAP_NET_ADMIN", [] {
    if (!drop_effective_caps({CAP_SYS_ADMIN, CAP_NET_ADMIN})) return std::string("capset failed");
    if (has_effective_cap(CAP_SYS_ADMIN)) return std::string("CAP_SYS_ADMIN still effective");
    return std::string();
  });
}

// Real uid/gid differ from the effective ones: both send SCM_CREDENTIALS
// with the real ids on every message, also for pid 0.
TEST(NotifyDifferential, CredentialsWithRealIdsNotEffective) {
  run_in_child("real uid/gid 65534, effective 0", [] {
    if (::geteuid() != 0) return std::string("needs root");
    if (::setresgid(65534, 0, 0) < 0 || ::setresuid(65534, 0, 0) < 0)
      return std::string("setres[ug]id failed");
    return std::string();
  });
}

// ---------------------------------------------------------------------------
// The named messages send exactly the literal strings libsystemd would be given.

struct helper_case {
  std::string literal;
  std::vector<int> fds;
  std::function<bool(std::error_code&)> call;
};

TEST(NotifyHelpers, SendWhatLibsystemdSendsForTheLiteral) {
  const std::vector<int>& pool = w().pool;
  using sockact::notify_state;
  const auto send = [](const notify_state& state) {
    return [state](std::error_code& ec) { return sockact::notify(state, ec); };
  };
  const auto store = [](const notify_state& state, std::vector<int> fds) {
    return [state, fds](std::error_code& ec) {
      return sockact::notify(state, fds.data(), fds.size(), sockact::notify_options{}, ec);
    };
  };
  const std::vector<helper_case> cases = {
      {"READY=1", {}, send(notify_state::ready)},
      {"STOPPING=1", {}, send(notify_state::stopping)},
      {"WATCHDOG=1", {}, send(notify_state::watchdog)},
      {"STATUS=caf\xc3\xa9 up\nsecond line", {}, send(notify_state::status("caf\xc3\xa9 up\nsecond line"))},
      {"STATUS=", {}, send(notify_state::status(""))},
      {"MAINPID=1234", {}, send(notify_state::mainpid(1234))},
      {"EXTEND_TIMEOUT_USEC=5000000", {}, send(notify_state::extend_timeout(std::chrono::seconds(5)))},
      {"EXTEND_TIMEOUT_USEC=0", {}, send(notify_state::extend_timeout(std::chrono::microseconds(0)))},
      {"READY=1\nSTATUS=serving", {}, send(notify_state::ready + notify_state::status("serving"))},
      {"STOPPING=1\nWATCHDOG=1\nMAINPID=7",
       {},
       send(notify_state::stopping + notify_state::watchdog + notify_state::mainpid(7))},
      {"FDSTORE=1\nFDNAME=name", {pool[0]}, store(notify_state::fd_store("name"), {pool[0]})},
      {"FDSTORE=1\nFDNAME=pair",
       {pool[1], pool[2]},
       store(notify_state::fd_store("pair"), {pool[1], pool[2]})},
      {"FDSTORE=1", {pool[3]}, store(notify_state::fd_store(""), {pool[3]})},
  };
  const receiver& r = w().receivers[0];
  for (const helper_case& h : cases) {
    SCOPED_TRACE(escape(h.literal));
    std::vector<inode_id> sent;
    for (const int fd : h.fds) sent.push_back(identity(fd));

    ::setenv("NOTIFY_SOCKET", r.address.c_str(), 1);
    std::error_code ec = sentinel_error();
    EXPECT_TRUE(h.call(ec));
    EXPECT_FALSE(ec) << ec.message();
    const std::vector<message> ours = w().drain();

    const int rc =
        ::sd_pid_notify_with_fds(0, 0, h.literal.c_str(), h.fds.data(), static_cast<unsigned>(h.fds.size()));
    EXPECT_EQ(rc, 1) << show_rc(rc);
    const std::vector<message> theirs = w().drain();

    ASSERT_EQ(ours.size(), 1u);
    ASSERT_EQ(theirs.size(), 1u);
    EXPECT_EQ(ours[0].bytes, h.literal) << escape(ours[0].bytes);
    EXPECT_EQ(ours[0].fds, sent) << describe_fds(ours[0].fds, sent);
    EXPECT_TRUE(ours[0] == theirs[0])
        << "sockact: " << escape(ours[0].bytes) << " " << describe_fds(ours[0].fds, sent)
        << "\nlibsystemd: " << escape(theirs[0].bytes) << " " << describe_fds(theirs[0].fds, sent);

    // Without NOTIFY_SOCKET: false, no error, nothing sent, as libsystemd's 0.
    ::unsetenv("NOTIFY_SOCKET");
    ec = sentinel_error();
    EXPECT_FALSE(h.call(ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(
        ::sd_pid_notify_with_fds(0, 0, h.literal.c_str(), h.fds.data(), static_cast<unsigned>(h.fds.size())),
        0);
    EXPECT_TRUE(w().drain().empty());
  }
  // The fds stay open here: notify() does not take them.
  for (int i = 0; i < 4; ++i) EXPECT_GE(::fcntl(pool[static_cast<std::size_t>(i)], F_GETFD), 0);
}

// ---------------------------------------------------------------------------
// watchdog_enabled() vs sd_watchdog_enabled()

struct watchdog_outcome {
  int rc = 0;
  std::uint64_t usec = 0;  // when rc == 1
  env_value usec_after, pid_after;
  std::string contract;
};

TEST(WatchdogDifferential, Sweep) {
  const std::string self = std::to_string(::getpid());
  char hex_self[32];
  std::snprintf(hex_self, sizeof hex_self, "0x%x", static_cast<unsigned>(::getpid()));
  std::vector<env_value> usecs = {unset_value()};
  for (const char* v : {"",
                        "0",
                        "1",
                        "1000000",
                        "18446744073709551615",
                        "18446744073709551616",
                        "-1",
                        "0x10",
                        " 5",
                        "5 ",
                        "abc",
                        "0b101",
                        "0o17",
                        "010",
                        "+5",
                        "\t5",
                        "5\n",
                        "\n5",
                        "\v5",
                        "-0",
                        "0x",
                        "5x",
                        "1e3",
                        "9223372036854775807",
                        "9223372036854775808",
                        "18446744073709551614"})
    usecs.push_back(set_value(v));
  std::vector<env_value> watchdog_pids = {unset_value()};
  for (const std::string& v :
       {self, std::to_string(::getppid()), std::string("0"), std::string("abc"), "  " + self, std::string(""),
        std::string("-1"), self + " ", self + "\n", std::string(hex_self), "+" + self, std::string("1"),
        std::string("2147483648"), std::to_string(4294967296LL + ::getpid())})
    watchdog_pids.push_back(set_value(v));

  constexpr auto max_rep = static_cast<std::uint64_t>(std::chrono::microseconds::max().count());
  int failures = 0, cases = 0, clamped = 0;
  std::map<std::string, int> results;
  std::string report;
  for (const env_value& usec : usecs)
    for (const env_value& pid : watchdog_pids)
      for (const bool unset : {false, true}) {
        ++cases;
        watchdog_outcome ours, theirs;
        write_env("WATCHDOG_USEC", usec);
        write_env("WATCHDOG_PID", pid);
        std::error_code ec = sentinel_error();
        const std::optional<std::chrono::microseconds> got = sockact::watchdog_enabled(unset, ec);
        ours.rc = ec ? -ec.value() : got ? 1 : 0;
        if (got) ours.usec = static_cast<std::uint64_t>(got->count());
        ours.contract = ec_anomaly(ec);
        ours.usec_after = read_env("WATCHDOG_USEC");
        ours.pid_after = read_env("WATCHDOG_PID");
#if SOCKACT_HAS_EXCEPTIONS
        // The throwing overload must agree with the ec one.
        write_env("WATCHDOG_USEC", usec);
        write_env("WATCHDOG_PID", pid);
        int thrown_rc = 0;
        try {
          const auto t = sockact::watchdog_enabled(unset);
          thrown_rc = t ? 1 : 0;
        } catch (const std::system_error& e) {
          thrown_rc = -e.code().value();
        }
        if (thrown_rc != ours.rc) ours.contract += " throwing overload gives " + show_rc(thrown_rc);
#endif
        write_env("WATCHDOG_USEC", usec);
        write_env("WATCHDOG_PID", pid);
        std::uint64_t u = 0xdeadbeef;
        theirs.rc = ::sd_watchdog_enabled(unset ? 1 : 0, &u);
        if (theirs.rc == 1) theirs.usec = u;
        theirs.usec_after = read_env("WATCHDOG_USEC");
        theirs.pid_after = read_env("WATCHDOG_PID");
        ++results[show_rc(theirs.rc)];

        std::string problem;
        if (!ours.contract.empty())
          problem = ours.contract;
        else if (ours.rc != theirs.rc)
          problem = "return values differ";
        else if (!(ours.usec_after == theirs.usec_after) || !(ours.pid_after == theirs.pid_after))
          problem = "environment afterwards differs";
        else if (ours.rc == 1 && ours.usec != theirs.usec) {
          // Expected difference 3: sockact returns std::chrono::microseconds
          // (signed 64 bits); intervals above its max are clamped to it.
          if (theirs.usec > max_rep && ours.usec == max_rep)
            ++clamped;
          else
            problem = "usec differs";
        }
        if (problem.empty()) continue;
        if (++failures > max_printed) continue;
        report += "\n" + problem + "\n  WATCHDOG_USEC=" + show(usec) + " WATCHDOG_PID=" + show(pid) +
                  " unset=" + (unset ? "true" : "false") + " (own pid " + self + ")\n" +
                  "    sockact:    rc " + show_rc(ours.rc) + " usec " + std::to_string(ours.usec) +
                  ", afterwards WATCHDOG_USEC=" + show(ours.usec_after) +
                  " WATCHDOG_PID=" + show(ours.pid_after) + "\n    libsystemd: rc " + show_rc(theirs.rc) +
                  " usec " + std::to_string(theirs.usec) +
                  ", afterwards WATCHDOG_USEC=" + show(theirs.usec_after) +
                  " WATCHDOG_PID=" + show(theirs.pid_after) + "\n";
      }
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  std::string summary;
  for (const auto& [r, n] : results) summary += " " + r + ":" + std::to_string(n);
  std::printf("watchdog: %d cases, %d differing; libsystemd results:%s\n", cases, failures, summary.c_str());
  if (clamped > 0)
    std::printf("  expected difference, %dx: usec above INT64_MAX clamped to microseconds::max()\n", clamped);
  EXPECT_EQ(failures, 0) << failures << " differing calls (first " << max_printed << " shown)" << report;
  EXPECT_GT(results["1"], 0);
  EXPECT_GT(results["0"], 0);
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing inherited may steer the calls.
  for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
  ::testing::InitGoogleTest(&argc, argv);
  world x;
  the_world = &x;
  const int r = RUN_ALL_TESTS();
  the_world = nullptr;
  ::unsetenv("NOTIFY_SOCKET");
  return r;
}
