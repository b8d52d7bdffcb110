// SPDX-License-Identifier: MIT
// Differential test: sockact against the installed libsystemd (sd-daemon.h).
// Both run in this one process and read the same environment and fd table,
// which is rebuilt identically before each call; every observable result
// (return value, names, FD_CLOEXEC bits, LISTEN_* afterwards) must agree.
#include <sockact/sockact.hpp>  // first: the header must be self-contained

#include "differential_support.hpp"

#include <gtest/gtest.h>
#include <systemd/sd-daemon.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <random>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using sockact_test::die;
using sockact_test::ec_anomaly;
using sockact_test::env_value;
using sockact_test::errno_name;
using sockact_test::escape;
using sockact_test::read_env;
using sockact_test::sentinel_error;
using sockact_test::show_rc;
using sockact_test::write_env;

constexpr int first_fd = SD_LISTEN_FDS_START;  // 3
constexpr int slot_count = 8;                  // generated fds: 3..10
constexpr int guard_count = 24;                // 11..34 stay closed, so LISTEN_FDS > 8 meets EBADF
constexpr int park_floor = 200;                // every other fd of this process lives here or above
constexpr std::uint64_t fixed_seed = 0x50CAC7D1FFULL;
constexpr int max_printed = 10;  // full reports per test; the rest are only counted

// Moves fd to >= park_floor, out of the generated range.
int park(int fd) {
  if (fd < 0) die("creating an fd");
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, park_floor);
  if (high < 0) die("F_DUPFD_CLOEXEC");
  ::close(fd);
  return high;
}

// Runs before gtest: whatever we inherited at 3..34 moves away (this test
// process owns its fds), so the generated table is all there is.
void clear_generated_range() {
  for (int fd = first_fd; fd < first_fd + slot_count + guard_count; ++fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) continue;
    if (::fcntl(fd, (flags & FD_CLOEXEC) != 0 ? F_DUPFD_CLOEXEC : F_DUPFD, park_floor) < 0)
      die("moving an inherited fd");
    ::close(fd);
  }
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A socket bound to loopback on an ephemeral port, listening if asked; -1
// where the family is missing (no IPv6 here).
int bind_loopback(int family, int type, bool do_listen) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof in;
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = in6addr_loopback;
    len = sizeof in6;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || (do_listen && ::listen(fd, 8) < 0)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A unix socket bound to path (after a NUL when abstract), listening if asked.
int bind_unix(int type, const std::string& path, bool abstract, bool do_listen) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("unix socket");
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + (abstract ? 1 : 0), path.data(), path.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&un), len) < 0) die("unix bind");
  if (do_listen && ::listen(fd, 8) < 0) die("unix listen");
  return fd;
}

// ---------------------------------------------------------------------------
// Environment and fd table

std::string show(const env_value& v) {
  return v.set ? escape(v.value) : "<unset>";
}

// One of each kind of fd a slot can hold; slots get dup2() copies.
struct fd_kind {
  std::string name;
  int fd;
  int status_flags;  // restored on every apply: O_NONBLOCK is shared by all copies
};

std::vector<fd_kind> make_fd_kinds() {
  std::vector<fd_kind> kinds;
  const auto add = [&](const char* name, int fd) {
    fd = park(fd);
    kinds.push_back({name, fd, ::fcntl(fd, F_GETFL)});
  };
  const std::string tag = "sockact-diff-kind-" + std::to_string(::getpid());

  add("tcp4-listen", bind_loopback(AF_INET, SOCK_STREAM, true));
  add("tcp4-bound", bind_loopback(AF_INET, SOCK_STREAM, false));
  add("udp4", bind_loopback(AF_INET, SOCK_DGRAM, false));
  if (const int fd = bind_loopback(AF_INET6, SOCK_STREAM, true); fd >= 0) add("tcp6-listen", fd);
  if (const int fd = bind_loopback(AF_INET6, SOCK_DGRAM, false); fd >= 0) add("udp6", fd);
  add("unix-stream-listen", bind_unix(SOCK_STREAM, tag + "-s", true, true));
  add("unix-seqpacket-listen", bind_unix(SOCK_SEQPACKET, tag + "-q", true, true));
  add("unix-dgram", ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
  add("socketpair", pair[0]);
  add("socketpair-peer", pair[1]);
  if (::pipe2(pair, O_CLOEXEC) < 0) die("pipe2");
  add("pipe-read", pair[0]);
  add("pipe-write", pair[1]);
  add("dev-null", ::open("/dev/null", O_RDWR | O_CLOEXEC));
  int file = ::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (file < 0) {  // not every filesystem has O_TMPFILE
    char name[] = "/tmp/sockact-diff-file-XXXXXX";
    file = ::mkostemp(name, O_CLOEXEC);
    if (file >= 0) ::unlink(name);
  }
  add("regular-file", file);
  add("eventfd", ::eventfd(0, EFD_CLOEXEC));
  return kinds;
}

const std::vector<fd_kind>& fd_kinds() {
  static const std::vector<fd_kind> kinds = make_fd_kinds();
  return kinds;
}

struct fd_slot {
  int kind = -1;  // index into fd_kinds(), -1: closed
  bool cloexec = false;
};

struct activation_state {
  bool unset_environment = false;
  env_value pid, fds, names;
  std::array<fd_slot, slot_count> slots{};
};

// Makes the process look exactly like st: fds 3..10, LISTEN_*.
void apply(const activation_state& st, bool check_guard) {
  const auto& kinds = fd_kinds();
  for (int i = 0; i < slot_count; ++i) {
    const int fd = first_fd + i;
    const fd_slot& s = st.slots[static_cast<std::size_t>(i)];
    if (s.kind < 0) {
      ::close(fd);  // EBADF when already closed is fine
      continue;
    }
    const fd_kind& k = kinds[static_cast<std::size_t>(s.kind)];
    if (::dup2(k.fd, fd) != fd) die("dup2");
    if (::fcntl(fd, F_SETFD, s.cloexec ? FD_CLOEXEC : 0) < 0) die("F_SETFD");
    if (::fcntl(fd, F_SETFL, k.status_flags) < 0) die("F_SETFL");
  }
  if (check_guard)
    for (int fd = first_fd + slot_count; fd < first_fd + slot_count + guard_count; ++fd)
      if (::fcntl(fd, F_GETFD) >= 0) {
        errno = EEXIST;
        die("an fd was allocated in the guard range 11..34");
      }
  write_env("LISTEN_PID", st.pid);
  write_env("LISTEN_FDS", st.fds);
  write_env("LISTEN_FDNAMES", st.names);
  // libsystemd 252 predates LISTEN_PIDFDID (v259) and ignores it, while
  // sockact checks it: keep it unset so both implement the same contract.
  ::unsetenv("LISTEN_PIDFDID");
}

void clear_state() {
  apply(activation_state{}, false);
}

std::string describe(const activation_state& st) {
  std::string s = "  unset_environment=" + std::string(st.unset_environment ? "true" : "false") + "\n";
  s += "  LISTEN_PID=" + show(st.pid) + "\n  LISTEN_FDS=" + show(st.fds) +
       "\n  LISTEN_FDNAMES=" + show(st.names) + "\n  LISTEN_PIDFDID=<unset>\n  fd table:";
  for (int i = 0; i < slot_count; ++i) {
    const fd_slot& sl = st.slots[static_cast<std::size_t>(i)];
    s += " " + std::to_string(first_fd + i) + "=";
    s += sl.kind < 0 ? "closed"
                     : fd_kinds()[static_cast<std::size_t>(sl.kind)].name + (sl.cloexec ? "+cloexec" : "");
  }
  return s + " (" + std::to_string(first_fd + slot_count) + ".." +
         std::to_string(first_fd + slot_count + guard_count - 1) + " closed)\n";
}

// ---------------------------------------------------------------------------
// What a call left behind

struct outcome {
  int result = 0;        // count, or -errno
  std::string anomaly;   // sockact API contract violations; always "" for libsystemd
  std::vector<int> fds;  // fds handed out
  std::vector<std::string> names;
  std::array<int, slot_count + 1> fd_flags{};  // F_GETFD of 3..11, -1 when closed
  std::array<int, slot_count> status_flags{};  // F_GETFL of 3..10, -1 when closed
  env_value pid, fds_env, names_env, pidfdid;  // LISTEN_* afterwards

  friend bool operator==(const outcome& a, const outcome& b) {
    return std::tie(a.result, a.anomaly, a.fds, a.names, a.fd_flags, a.status_flags, a.pid, a.fds_env,
                    a.names_env, a.pidfdid) == std::tie(b.result, b.anomaly, b.fds, b.names, b.fd_flags,
                                                        b.status_flags, b.pid, b.fds_env, b.names_env,
                                                        b.pidfdid);
  }
};

void snapshot(outcome& o) {
  for (int i = 0; i <= slot_count; ++i)
    o.fd_flags[static_cast<std::size_t>(i)] = ::fcntl(first_fd + i, F_GETFD);
  for (int i = 0; i < slot_count; ++i)
    o.status_flags[static_cast<std::size_t>(i)] = ::fcntl(first_fd + i, F_GETFL);
  o.pid = read_env("LISTEN_PID");
  o.fds_env = read_env("LISTEN_FDS");
  o.names_env = read_env("LISTEN_FDNAMES");
  o.pidfdid = read_env("LISTEN_PIDFDID");
}

std::string describe(const outcome& o, bool with_names) {
  std::string s = "result=" + show_rc(o.result);
  if (!o.anomaly.empty()) s += " ANOMALY: " + o.anomaly;
  s += " fds=[";
  for (std::size_t i = 0; i < o.fds.size(); ++i) s += (i ? "," : "") + std::to_string(o.fds[i]);
  s += "]";
  if (with_names) {
    s += " names=[";
    for (std::size_t i = 0; i < o.names.size(); ++i) s += (i ? ", " : "") + escape(o.names[i]);
    s += "]";
  }
  s += "\n      fd flags after:";
  for (int i = 0; i <= slot_count; ++i) {
    const int f = o.fd_flags[static_cast<std::size_t>(i)];
    s += " " + std::to_string(first_fd + i) + "=" +
         (f < 0                   ? "closed"
          : (f & FD_CLOEXEC) != 0 ? "cloexec"
                                  : "-");
    if (i < slot_count && o.status_flags[static_cast<std::size_t>(i)] >= 0 &&
        (o.status_flags[static_cast<std::size_t>(i)] & O_NONBLOCK) != 0)
      s += "+nonblock";
  }
  s += "\n      env after: LISTEN_PID=" + show(o.pid) + " LISTEN_FDS=" + show(o.fds_env) +
       " LISTEN_FDNAMES=" + show(o.names_env) + " LISTEN_PIDFDID=" + show(o.pidfdid);
  return s;
}

outcome sockact_with_names(bool unset) {
  outcome o;
  std::error_code ec = sentinel_error();
  const std::vector<sockact::passed_fd> got = sockact::listen_fds({unset}, ec);
  snapshot(o);
  o.anomaly = ec_anomaly(ec);
  if (ec && !got.empty()) o.anomaly += " error with a non-empty vector";
  o.result = ec ? -ec.value() : static_cast<int>(got.size());
  for (const auto& l : got) {
    o.fds.push_back(l.fd);
    o.names.push_back(l.name);
  }
  return o;
}

outcome libsystemd_with_names(bool unset) {
  outcome o;
  char** names = nullptr;
  o.result = ::sd_listen_fds_with_names(unset ? 1 : 0, &names);
  snapshot(o);
  for (int i = 0; i < o.result; ++i) o.fds.push_back(first_fd + i);
  if (names != nullptr) {
    for (char** p = names; *p != nullptr; ++p) {
      o.names.emplace_back(*p);
      std::free(*p);
    }
    std::free(names);
  }
  return o;
}

outcome sockact_count(bool unset) {
  outcome o;
  std::error_code ec = sentinel_error();
  const int r = sockact::listen_fds_count({unset}, ec);
  snapshot(o);
  o.anomaly = ec_anomaly(ec);
  if (ec && r != -1) o.anomaly += " returned " + std::to_string(r) + " with ec set";
  if (!ec && r < 0) o.anomaly += " returned " + std::to_string(r) + " without ec";
  o.result = ec ? -ec.value() : r;
  for (int i = 0; i < o.result; ++i) o.fds.push_back(first_fd + i);
  return o;
}

outcome libsystemd_count(bool unset) {
  outcome o;
  o.result = ::sd_listen_fds(unset ? 1 : 0);
  snapshot(o);
  for (int i = 0; i < o.result; ++i) o.fds.push_back(first_fd + i);
  return o;
}

// ---------------------------------------------------------------------------
// Case generation

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class gen {
 public:
  explicit gen(std::uint64_t seed) : rng_(seed) {}
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
  int between(int lo, int hi) { return lo + static_cast<int>(below(static_cast<std::size_t>(hi - lo + 1))); }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  char byte_nonzero() { return static_cast<char>(between(1, 255)); }

 private:
  std::mt19937_64 rng_;
};

std::string in_base(std::uint64_t v, unsigned base, bool upper = false) {
  if (v == 0) return "0";
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string s;
  for (; v != 0; v /= base) s.insert(s.begin(), digits[v % base]);
  return s;
}

std::string whitespace(gen& g) {
  static const std::vector<char> ws = {' ', '\t', '\n', '\r', '\v', '\f'};
  std::string s;
  for (int n = g.between(1, 3); n > 0; --n) s += g.pick(ws);
  return s;
}

// v written in one of the many forms strtoul(base 0) and systemd's 0b/0o
// prefixes accept, decorated with whitespace, signs and junk now and then.
std::string number_form(gen& g, std::uint64_t v) {
  std::string body;
  switch (g.below(12)) {
    case 0:
    case 1:
    case 2:
    case 3:
      body = std::to_string(v);
      break;
    case 4:
      body = "0x" + in_base(v, 16);
      break;
    case 5:
      body = "0X" + in_base(v, 16, true);
      break;
    case 6:
      body = "0" + in_base(v, 8);
      break;
    case 7:
      body = std::string(g.chance(50) ? "0b" : "0B") + in_base(v, 2);
      break;
    case 8:
      body = std::string(g.chance(50) ? "0o" : "0O") + in_base(v, 8);
      break;
    case 9:
      body = "00" + std::to_string(v);
      break;  // decimal digits read as octal
    case 10: {
      // strtoul skips whitespace and a sign after a 0b/0o prefix
      const std::string prefix = g.pick(std::vector<std::string>{"0b", "0o", "0x"});
      const std::string mid =
          g.chance(50) ? whitespace(g) : g.pick(std::vector<std::string>{"+", "-", " -", "\v+"});
      body = prefix + mid + in_base(v, prefix == "0b" ? 2 : prefix == "0o" ? 8 : 16);
      break;
    }
    default:
      // -(2^64 - v) wraps to v in strtoull; systemd refuses '-' only when it is
      // the first byte after " \t\n\r", so a leading \v or \f lets it through
      body = "-" + std::to_string(0 - v);
      if (g.chance(70)) body = (g.chance(50) ? "\v" : "\f") + body;
      break;
  }
  if (g.chance(15)) body = "+" + body;
  if (g.chance(20)) body = whitespace(g) + body;
  if (g.chance(6)) body += g.pick(std::vector<std::string>{" ", "\n", "\t", "\v", "x", "\\", "0"});
  return body;
}

std::string random_bytes(gen& g, int lo, int hi) {
  std::string s;
  for (int n = g.between(lo, hi); n > 0; --n) s += g.byte_nonzero();
  return s;
}

env_value gen_pid(gen& g) {
  if (g.chance(4)) return {};
  const auto self = static_cast<std::uint64_t>(::getpid());
  if (g.chance(60)) return {true, number_form(g, self)};
  const std::string d = std::to_string(self);
  const std::vector<std::string> other = {"",
                                          " ",
                                          "\t\n",
                                          "\v",
                                          "0",
                                          "-0",
                                          "+0",
                                          "00",
                                          "0x0",
                                          "0b0",
                                          "0o0",
                                          "-1",
                                          "-" + d,
                                          " -" + d,
                                          std::to_string(self + 1),
                                          std::to_string(self - 1),
                                          "1",
                                          "2147483647",
                                          "2147483648",
                                          "4294967295",
                                          "4294967296",
                                          std::to_string(self + 4294967296ULL),
                                          "9223372036854775807",
                                          "18446744073709551615",
                                          "18446744073709551616",
                                          "99999999999999999999999999",
                                          d + " ",
                                          d + "\n",
                                          d + "x",
                                          d + "\v",
                                          d + ":",
                                          d + "\xc2\xa0",
                                          "\xc2\xa0" + d,
                                          "0x",
                                          "0b",
                                          "0o",
                                          "0X",
                                          "0xg",
                                          "0b2",
                                          "0o8",
                                          "08",
                                          "09",
                                          "0x-1",
                                          "0b-1",
                                          "- 5",
                                          "-",
                                          "+",
                                          "++" + d,
                                          "+-" + d,
                                          "-+" + d,
                                          "1e3",
                                          "0.0",
                                          d + ".0",
                                          "0x" + in_base(self, 16) + "g",
                                          "-18446744073709551615",
                                          "\v-18446744073709551615",
                                          "\f-18446744073709551616"};
  if (g.chance(10)) return {true, random_bytes(g, 1, 12)};
  if (g.chance(8)) return {true, number_form(g, static_cast<std::uint64_t>(g.between(0, 3)))};
  return {true, g.pick(other)};
}

env_value gen_fds(gen& g, int& intended) {
  intended = g.between(1, slot_count);
  if (g.chance(5)) return {};
  if (g.chance(60)) {
    if (g.chance(12)) intended = g.between(slot_count + 1, slot_count + 4);  // runs into closed guard fds
    return {true, number_form(g, static_cast<std::uint64_t>(intended))};
  }
  const std::vector<std::string> other = {"0",
                                          "-0",
                                          "+0",
                                          "00",
                                          "0x0",
                                          "-1",
                                          "-3",
                                          "-8",
                                          "2147483644",
                                          "2147483645",
                                          "2147483646",
                                          "2147483647",
                                          "2147483648",
                                          "-2147483648",
                                          "-2147483649",
                                          "4294967296",
                                          "4294967297",
                                          "4294967299",
                                          "9223372036854775807",
                                          "9223372036854775808",
                                          "18446744073709551615",
                                          "99999999999999999999",
                                          "0x7ffffffc",
                                          "0x7ffffffd",
                                          "0x7fffffff",
                                          "0x80000000",
                                          "0x100000003",
                                          "017777777774",
                                          "0b1111111111111111111111111111100",
                                          "0o17777777774",
                                          "",
                                          " ",
                                          "\t",
                                          "3 ",
                                          "3\n",
                                          "3\v",
                                          "3x",
                                          "x3",
                                          "0x",
                                          "0b",
                                          "0o",
                                          "junk",
                                          "0b-1",
                                          "0o-3",
                                          "0x-3",
                                          "+0x3",
                                          "- 3",
                                          "1 2",
                                          "3:",
                                          "\xef\xbc\x93",
                                          "3\xc2\xa0",
                                          "0b2",
                                          "0o9",
                                          "08",
                                          "1e1"};
  if (g.chance(10)) return {true, random_bytes(g, 1, 8)};
  return {true, g.pick(other)};
}

std::string alnum(gen& g, int lo, int hi) {
  static const std::string chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
  std::string s;
  for (int n = g.between(lo, hi); n > 0; --n) s += chars[g.below(chars.size())];
  return s;
}

std::string gen_name(gen& g) {
  switch (g.below(14)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return alnum(g, 1, 12);
    case 4:
      return g.pick(std::vector<std::string>{"connection", "stored", "unknown", "http.socket", "varlink"});
    case 5:
      return "";
    case 6:
      return alnum(g, 0, 4) + "\\:" + alnum(g, 0, 4);  // escaped separator: joins two fields
    case 7:
      return alnum(g, 0, 4) +
             g.pick(
                 std::vector<std::string>{"\\\\", "\\n", "\\x41", "\\t", "\\ ", "\\'", "\\\"", "\\\\\\:"}) +
             alnum(g, 0, 4);
    case 8:
      return alnum(g, 0, 3) + "\\" + g.byte_nonzero() + alnum(g, 0, 3);
    case 9:
      return g.pick(std::vector<std::string>{"'q'", "\"q\"", "'a b'", "\"x:y\"", "it's", "\"", "'", " a ",
                                             "\ta\n", "a=b"});
    case 10:
      return std::string(static_cast<std::size_t>(g.between(100, 1200)), 'n');
    case 11: {
      std::string s;
      for (int n = g.between(1, 8); n > 0; --n) s += static_cast<char>(g.between(0x80, 0xff));
      return s;
    }
    case 12:
      return "\xc3\xa9t\xc3\xa9-\xe2\x98\x83";  // UTF-8
    default:
      return random_bytes(g, 1, 10);  // may hold ':' and '\\'
  }
}

env_value gen_names(gen& g, int intended) {
  if (g.chance(25)) return {};
  std::string s;
  switch (g.below(12)) {
    case 0:
      return {true, ""};
    case 1:
      return {true, std::string(static_cast<std::size_t>(g.between(1, 9)), ':')};
    case 2:
      return {true, random_bytes(g, 1, 24)};
    default: {
      int count = intended;
      if (g.chance(25)) count = g.chance(50) ? intended - 1 : intended + 1;
      if (g.chance(5)) count = g.between(0, slot_count + 2);
      for (int i = 0; i < count; ++i) s += (i ? ":" : "") + gen_name(g);
      if (g.chance(4)) s += "\\";  // trailing lone backslash
      return {true, s};
    }
  }
}

activation_state gen_state(gen& g) {
  activation_state st;
  st.unset_environment = g.chance(50);
  int intended = 0;
  // A quarter of the cases are plain activations, so that success (CLOEXEC
  // set on all, names handed out) is common and not only the error paths.
  const bool plain = g.chance(25);
  if (plain) {
    intended = g.between(1, slot_count);
    st.pid = {true, std::to_string(::getpid())};
    st.fds = {true, std::to_string(intended)};
    st.names = {};
    if (g.chance(70))
      for (int i = 0; i < intended; ++i) st.names.value += (i ? ":" : "") + alnum(g, 0, 10);
    st.names.set = !st.names.value.empty() || g.chance(50);
  } else {
    st.pid = gen_pid(g);
    st.fds = gen_fds(g, intended);
    st.names = gen_names(g, intended);
  }
  const int kinds = static_cast<int>(fd_kinds().size());
  const std::size_t mode = plain && g.chance(70) ? 0 : g.below(10);
  const int prefix = g.between(0, slot_count);
  for (int i = 0; i < slot_count; ++i) {
    bool open = true;
    if (mode == 3)
      open = false;  // all closed
    else if (mode == 4 || mode == 5)
      open = i < prefix;  // a gap after the first `prefix`
    else if (mode >= 6)
      open = g.chance(70);
    fd_slot& sl = st.slots[static_cast<std::size_t>(i)];
    sl.kind = open ? g.between(0, kinds - 1) : -1;
    sl.cloexec = g.chance(50);
  }
  return st;
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long r = std::strtoull(v, &end, 0);
  if (errno != 0 || *end != '\0') {
    std::fprintf(stderr, "ignoring %s=%s: not a number\n", name, v);
    return fallback;
  }
  return r;
}

struct tally {
  std::map<int, int> by_result;  // libsystemd's result -> cases
  std::string summary() const {
    std::string s;
    for (const auto& [r, n] : by_result) {
      const std::string key = r > 0 ? "n>0" : show_rc(r);
      s += " " + key + ":" + std::to_string(n);
    }
    return s;
  }
};

// Runs `count` cases of seed; each case has its own generator so a single
// index can be replayed with SOCKACT_DIFF_ONLY_CASE.
void run_listen_cases(std::uint64_t seed, const char* seed_origin) {
  const auto count = env_u64("SOCKACT_DIFF_CASES", 10000);
  const std::uint64_t only = env_u64("SOCKACT_DIFF_ONLY_CASE", UINT64_MAX);
  const std::string replay = "seed " + hex(seed) + " (" + seed_origin +
                             "; replay: SOCKACT_DIFF_SEED=" + hex(seed) + " SOCKACT_DIFF_ONLY_CASE=<index>)";
  std::printf("listen_fds cases: %llu, %s\n", static_cast<unsigned long long>(count), replay.c_str());
  int failures = 0;
  tally with_names, count_only;
  const auto report = [&](std::uint64_t index, const activation_state& st, const char* which,
                          const outcome& ours, const outcome& theirs, bool names) {
    if (++failures > max_printed) return;
    ADD_FAILURE() << which << " differs in case " << index << ", " << replay << "\n"
                  << describe(st) << "    sockact:    " << describe(ours, names) << "\n"
                  << "    libsystemd: " << describe(theirs, names) << "\n";
  };
  for (std::uint64_t i = 0; i < count; ++i) {
    if (only != UINT64_MAX && i != only) continue;
    gen g(splitmix(seed ^ splitmix(i)));
    const activation_state st = gen_state(g);

    // Each call gets the same table, rebuilt; the guard fds are checked once.
    const auto compare = [&](bool check_guard, outcome (*ours)(bool), outcome (*theirs)(bool), tally& t,
                             const char* which, bool names) {
      apply(st, check_guard);
      const outcome a = ours(st.unset_environment);
      apply(st, false);
      const outcome b = theirs(st.unset_environment);
      ++t.by_result[b.result > 0 ? 1 : b.result];
      if (!(a == b)) report(i, st, which, a, b, names);
    };
    compare(true, sockact_with_names, libsystemd_with_names, with_names,
            "listen_fds vs sd_listen_fds_with_names", true);
    compare(false, sockact_count, libsystemd_count, count_only, "listen_fds_count vs sd_listen_fds", false);
  }
  clear_state();
  std::printf("libsystemd results, with names:%s\nlibsystemd results, count only:%s\n",
              with_names.summary().c_str(), count_only.summary().c_str());
  EXPECT_EQ(failures, 0) << failures << " differing calls (first " << max_printed << " shown), " << replay;
}

TEST(ListenFdsDifferential, FixedSeed) {
  run_listen_cases(fixed_seed, "fixed");
}

TEST(ListenFdsDifferential, VaryingSeed) {
  const auto now = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const bool given = std::getenv("SOCKACT_DIFF_SEED") != nullptr;
  const std::uint64_t seed =
      env_u64("SOCKACT_DIFF_SEED", splitmix(now ^ static_cast<std::uint64_t>(::getpid())));
  run_listen_cases(seed, given ? "from SOCKACT_DIFF_SEED" : "time-based");
}

// ---------------------------------------------------------------------------
// sd_is_* over real fds and the whole argument space

struct probe {
  std::string name;
  int fd;
};

struct unix_path {
  bool null = false;
  std::string bytes;  // padded with NULs: libsystemd may read length + 1 bytes
  std::size_t length = 0;
  std::string label;
};

struct inet_addr {
  bool null = false;
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string label;
};

// Compares one call; describe() runs only on a mismatch.
class comparer {
 public:
  template <class Describe>
  void check(int expected, bool got, const std::error_code& ec, Describe&& describe) {
    ++calls_;
    ++by_result_[expected];
    std::string anomaly = ec_anomaly(ec);
    if (ec && got) anomaly += " returned true with ec set";
    const int actual = ec ? -ec.value() : got ? 1 : 0;
    if (actual == expected && anomaly.empty()) return;
    if (++mismatches_ <= 40)
      report_ += "  " + describe() + ": libsystemd " + show_rc(expected) + ", sockact " + show_rc(actual) +
                 (anomaly.empty() ? "" : " ANOMALY:" + anomaly) + "\n";
  }
  void finish(const char* what) const {
    std::string results;  // shows which outcomes the argument space reached
    for (const auto& [r, n] : by_result_) results += " " + show_rc(r) + ":" + std::to_string(n);
    std::printf("%s: %d calls compared, %d differ; libsystemd results:%s\n", what, calls_, mismatches_,
                results.c_str());
    EXPECT_EQ(mismatches_, 0) << what << ": " << mismatches_ << " of " << calls_
                              << " calls differ (first 40 shown)\n"
                              << report_;
  }

 private:
  int calls_ = 0;
  int mismatches_ = 0;
  std::map<int, int> by_result_;
  std::string report_;
};

const std::vector<int> families = {0, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, -1, 1000};
const std::vector<int> types = {0, SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, -1};
const std::vector<sockact::socket_state> listen_values = {
    sockact::socket_state::any, sockact::socket_state::not_listening, sockact::socket_state::listening};

// The macro's name of v among `names`, else the number.
std::string name_of(int v, std::initializer_list<std::pair<int, const char*>> names) {
  for (const auto& [value, name] : names)
    if (value == v) return name;
  return std::to_string(v);
}

std::string family_name(int f) {
  return name_of(
      f, {{AF_UNIX, "AF_UNIX"}, {AF_INET, "AF_INET"}, {AF_INET6, "AF_INET6"}, {AF_NETLINK, "AF_NETLINK"}});
}

std::string type_name(int t) {
  return name_of(
      t, {{SOCK_STREAM, "SOCK_STREAM"}, {SOCK_DGRAM, "SOCK_DGRAM"}, {SOCK_SEQPACKET, "SOCK_SEQPACKET"}});
}

std::string listening_name(sockact::socket_state l) {
  return std::to_string(static_cast<int>(l));
}

class IsDifferential : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static std::string dir;  // temp dir, also the cwd while these tests run
  static int old_cwd;
  static std::vector<probe> fds;
  static std::vector<std::string> fs_paths;  // for is_fifo/is_special/is_mq; "\x01" stands for nullptr
  static std::vector<unix_path> unix_paths;
  static std::vector<inet_addr> addrs;
  static std::string mq_name;

  static const char* path_arg(const std::string& p) { return p == "\x01" ? nullptr : p.c_str(); }
  static std::string path_label(const std::string& p) { return p == "\x01" ? "nullptr" : escape(p); }
};

std::string IsDifferential::dir;
int IsDifferential::old_cwd = -1;
std::vector<probe> IsDifferential::fds;
std::vector<std::string> IsDifferential::fs_paths;
std::vector<unix_path> IsDifferential::unix_paths;
std::vector<inet_addr> IsDifferential::addrs;
std::string IsDifferential::mq_name;

void IsDifferential::SetUpTestSuite() {
  char tmpl[] = "/tmp/sockact-diff-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
  dir = tmpl;
  old_cwd = park(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (::chdir(dir.c_str()) < 0) die("chdir");  // relative paths below resolve here
  const std::string tag = "sockact-diff-" + std::to_string(::getpid());
  const auto add = [](const std::string& name, int fd) { fds.push_back({name, park(fd)}); };

  // inet sockets on loopback, ephemeral ports
  const auto connect_to = [](int listener, int* accepted) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len) < 0) die("getsockname");
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) die("connect");
    *accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (*accepted < 0) die("accept");
    return fd;
  };
  const int tcp4 = bind_loopback(AF_INET, SOCK_STREAM, true);
  if (tcp4 < 0) die("tcp4 listener");
  int accepted = -1;
  add("tcp4-client", connect_to(tcp4, &accepted));
  add("tcp4-accepted", accepted);
  add("tcp4-listen", tcp4);
  add("tcp4-bound", bind_loopback(AF_INET, SOCK_STREAM, false));
  add("tcp4-unbound", ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  add("udp4", bind_loopback(AF_INET, SOCK_DGRAM, false));
  if (const int tcp6 = bind_loopback(AF_INET6, SOCK_STREAM, true); tcp6 >= 0) {
    add("tcp6-client", connect_to(tcp6, &accepted));
    add("tcp6-accepted", accepted);
    add("tcp6-listen", tcp6);
    add("udp6", bind_loopback(AF_INET6, SOCK_DGRAM, false));
  } else {
    std::printf("no IPv6 loopback here: IPv6 sockets left out\n");
  }

  // unix sockets: path (absolute and relative), abstract, autobound, unnamed
  const std::string stream_path = dir + "/stream.sock";
  const int ustream = bind_unix(SOCK_STREAM, stream_path, false, true);
  {
    const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, stream_path.c_str(), stream_path.size() + 1);
    if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&un), sizeof un) < 0) die("unix connect");
    add("unix-stream-client", client);
    add("unix-stream-accepted", ::accept4(ustream, nullptr, nullptr, SOCK_CLOEXEC));
  }
  add("unix-stream-listen", ustream);
  add("unix-dgram-path", bind_unix(SOCK_DGRAM, dir + "/dgram.sock", false, false));
  add("unix-stream-relative", bind_unix(SOCK_STREAM, "rel.sock", false, true));
  add("unix-seqpacket-abstract", bind_unix(SOCK_SEQPACKET, tag + "-seq", true, true));
  add("unix-stream-abstract", bind_unix(SOCK_STREAM, tag + "-str", true, true));
  {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(sa_family_t)) < 0) die("autobind");
    add("unix-dgram-autobind", fd);
  }
  add("unix-stream-unbound", ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
  add("socketpair-stream", pair[0]);
  ::close(pair[1]);
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
  add("socketpair-dgram", pair[0]);
  add("socketpair-dgram-peer", pair[1]);
  if (const int nl = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); nl >= 0)
    add("netlink-route", nl);
  else
    std::printf("no AF_NETLINK socket here (%s): left out\n", std::strerror(errno));

  // files
  const std::string fifo_path = dir + "/fifo";
  if (::mkfifo(fifo_path.c_str(), 0600) < 0) die("mkfifo");
  add("fifo", ::open(fifo_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (::pipe2(pair, O_CLOEXEC) < 0) die("pipe2");
  add("pipe-read", pair[0]);
  add("pipe-write", pair[1]);
  const std::string file_path = dir + "/file";
  add("regular-file", ::open(file_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (::link(file_path.c_str(), (dir + "/hardlink").c_str()) < 0) die("link");
  if (::symlink("/dev/null", (dir + "/null-link").c_str()) < 0) die("symlink");
  if (::symlink("loop-b", (dir + "/loop-a").c_str()) < 0 ||
      ::symlink("loop-a", (dir + "/loop-b").c_str()) < 0)
    die("symlink loop");
  add("dev-null", ::open("/dev/null", O_RDWR | O_CLOEXEC));
  add("dev-zero", ::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  add("directory", ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  add("eventfd", ::eventfd(0, EFD_CLOEXEC));
  add("o-path-socket", ::open(stream_path.c_str(), O_PATH | O_CLOEXEC));
  add("o-path-fifo", ::open(fifo_path.c_str(), O_PATH | O_CLOEXEC));
  add("o-path-file", ::open(file_path.c_str(), O_PATH | O_CLOEXEC));
  add("o-path-dev-null", ::open("/dev/null", O_PATH | O_CLOEXEC));
  // glibc >= 2.34 has mq_* in libc itself, so no -lrt
  mq_name = "/" + tag;
  mq_attr attr{};
  attr.mq_maxmsg = 1;
  attr.mq_msgsize = 8;
  if (const mqd_t mq = ::mq_open(mq_name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600, &attr); mq >= 0)
    add("posix-mq", mq);
  else
    std::printf("mq_open failed (%s): message queue left out\n", std::strerror(errno));

  // fds that are not open
  // New fds take the lowest free number, so nothing here ever reaches 1000.
  int closed = 1000;
  while (::fcntl(closed, F_GETFD) >= 0) ++closed;
  fds.push_back({"closed-fd", closed});
  fds.push_back({"fd-INT_MAX", INT_MAX});
  fds.push_back({"fd--1", -1});
  fds.push_back({"fd-INT_MIN", INT_MIN});

  // paths for is_fifo / is_special / is_mq
  fs_paths = {"\x01",
              "",
              fifo_path,
              "fifo",
              "./fifo",
              file_path,
              "file",
              dir + "/hardlink",
              "/dev/null",
              "/dev/zero",
              dir + "/null-link",
              dir + "/nonexistent",
              "nonexistent",
              "/dev/null/x",
              dir + "/file/x",
              dir + "/loop-a",
              std::string(5000, 'x'),
              "/" + std::string(300, 'y'),
              dir,
              stream_path,
              "/",
              mq_name,
              mq_name.substr(1),
              "/nonexistent-mq",
              "//" + mq_name.substr(1),
              mq_name + "/"};

  // unix paths: every bound address as getsockname reports it, right and wrong
  const auto add_unix = [](const std::string& bytes, std::size_t length, const std::string& label) {
    unix_path u;
    u.bytes = bytes + std::string(512, '\0');
    u.length = length;
    u.label = label + " len " + std::to_string(length);
    unix_paths.push_back(u);
  };
  unix_path null_path;
  null_path.null = true;
  null_path.label = "nullptr";
  unix_paths.push_back(null_path);
  add_unix("", 0, "\"\"");
  add_unix("", 5, "\"\"");
  add_unix(std::string(1, '\0'), 1, "\"\\0\"");
  add_unix("/nonexistent.sock", 0, "\"/nonexistent.sock\"");
  add_unix(std::string(107, 'z'), 0, "107 x z");
  add_unix("/tmp", 200, "\"/tmp\"");
  for (const probe& p : fds) {
    if (p.fd < 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(p.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0 || ss.ss_family != AF_UNIX) continue;
    const auto& un = reinterpret_cast<const sockaddr_un&>(ss);
    const std::size_t n = len - offsetof(sockaddr_un, sun_path);
    if (n == 0) continue;  // unnamed
    const std::string name(un.sun_path, n);
    const std::string l = "addr of " + p.name + " " + escape(name);
    if (name[0] != '\0') {
      const std::string path(un.sun_path);  // without the NUL
      add_unix(path, 0, l);
      add_unix(path, path.size(), l);
      add_unix(path, path.size() + 1, l);
      add_unix(path, path.size() - 1, l);
      add_unix(path + "x", path.size(), l + "+x");
      std::string wrong = path;
      wrong.back() = static_cast<char>(wrong.back() ^ 1);
      add_unix(wrong, 0, "wrong " + l);
    } else {
      add_unix(name, n, l);
      add_unix(name, n + 1, l);
      add_unix(name, n - 1, l);
      add_unix(name, 0, l);
      std::string wrong = name;
      wrong.back() = static_cast<char>(wrong.back() ^ 1);
      add_unix(wrong, n, "wrong " + l);
    }
  }

  // sockaddrs for is_socket_sockaddr: every bound inet address, varied
  const auto add_addr = [](const sockaddr_storage& ss, socklen_t len, const std::string& label) {
    inet_addr a;
    a.ss = ss;
    a.len = len;
    a.label = label;
    addrs.push_back(a);
  };
  inet_addr null_addr;
  null_addr.null = true;
  null_addr.label = "nullptr";
  addrs.push_back(null_addr);
  for (const probe& p : fds) {
    if (p.fd < 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(p.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) continue;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) continue;
    add_addr(ss, len, "addr of " + p.name);
    sockaddr_storage v = ss;
    auto& port = ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(v).sin_port
                                         : reinterpret_cast<sockaddr_in6&>(v).sin6_port;
    const std::uint16_t own = ntohs(port);
    port = 0;
    add_addr(v, len, "addr of " + p.name + " port 0");
    port = htons(static_cast<std::uint16_t>(own + 1));
    add_addr(v, len, "addr of " + p.name + " port+1");
    if (ss.ss_family == AF_INET6) {
      v = ss;
      reinterpret_cast<sockaddr_in6&>(v).sin6_flowinfo = htonl(1);
      add_addr(v, len, "addr of " + p.name + " flowinfo 1");
      v = ss;
      reinterpret_cast<sockaddr_in6&>(v).sin6_scope_id = 1;
      add_addr(v, len, "addr of " + p.name + " scope_id 1");
    }
  }
  {
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    add_addr(ss, sizeof in, "0.0.0.0:0");
    in.sin_addr.s_addr = htonl(0x7f000002);
    add_addr(ss, sizeof in, "127.0.0.2:0");
    ss = {};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    add_addr(ss, sizeof in6, "[::]:0");
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
    add_addr(ss, sizeof in6, "[::ffff:127.0.0.1]:0");
    ss = {};
    auto& un = reinterpret_cast<sockaddr_un&>(ss);
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, stream_path.c_str(), stream_path.size());
    add_addr(ss, sizeof un, "unix " + stream_path);
    ss = {};
    ss.ss_family = AF_UNSPEC;
    add_addr(ss, sizeof(sockaddr_in), "AF_UNSPEC");
    ss.ss_family = AF_NETLINK;
    add_addr(ss, sizeof(sockaddr_nl), "AF_NETLINK");
  }
}

void IsDifferential::TearDownTestSuite() {
  for (const probe& p : fds)
    if (p.fd >= park_floor && p.fd != INT_MAX) ::close(p.fd);
  fds.clear();
  ::mq_unlink(mq_name.c_str());
  for (const char* f :
       {"stream.sock", "dgram.sock", "rel.sock", "fifo", "file", "hardlink", "null-link", "loop-a", "loop-b"})
    ::unlink((dir + "/" + f).c_str());
  if (::fchdir(old_cwd) < 0) die("fchdir");
  ::close(old_cwd);
  ::rmdir(dir.c_str());
}

TEST_F(IsDifferential, IsFifoSpecialMq) {
  comparer fifo, special, mq;
  for (const probe& p : fds) {
    for (const std::string& path : fs_paths) {
      const char* arg = path_arg(path);
      const auto what = [&](const char* fn) {
        return [&, fn] {
          return std::string(fn) + "(" + p.name + " fd " + std::to_string(p.fd) + ", " + path_label(path) +
                 ")";
        };
      };
      std::error_code ec = sentinel_error();
      bool got = sockact::is_fifo(p.fd, arg, ec);
      fifo.check(::sd_is_fifo(p.fd, arg), got, ec, what("is_fifo"));
      ec = sentinel_error();
      got = sockact::is_special(p.fd, arg, ec);
      special.check(::sd_is_special(p.fd, arg), got, ec, what("is_special"));
      ec = sentinel_error();
      got = sockact::is_mq(p.fd, arg, ec);
      mq.check(::sd_is_mq(p.fd, arg), got, ec, what("is_mq"));
    }
  }
  fifo.finish("is_fifo vs sd_is_fifo");
  special.finish("is_special vs sd_is_special");
  mq.finish("is_mq vs sd_is_mq");
}

TEST_F(IsDifferential, IsSocket) {
  comparer cmp;
  for (const probe& p : fds)
    for (const int family : families)
      for (const int type : types)
        for (const sockact::socket_state l : listen_values) {
          std::error_code ec = sentinel_error();
          const bool got = sockact::is_socket(p.fd, family, type, l, ec);
          cmp.check(::sd_is_socket(p.fd, family, type, static_cast<int>(l)), got, ec, [&] {
            return "is_socket(" + p.name + " fd " + std::to_string(p.fd) + ", " + family_name(family) + ", " +
                   type_name(type) + ", listening " + listening_name(l) + ")";
          });
        }
  cmp.finish("is_socket vs sd_is_socket");
}

std::uint16_t own_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
}

TEST_F(IsDifferential, IsSocketInet) {
  comparer cmp;
  for (const probe& p : fds) {
    const std::uint16_t own = own_port(p.fd);
    const std::vector<std::uint16_t> ports = {0, own, static_cast<std::uint16_t>(own + 1), 1, 65535};
    for (const int family : families)
      for (const int type : types)
        for (const sockact::socket_state l : listen_values)
          for (const std::uint16_t port : ports) {
            std::error_code ec = sentinel_error();
            const bool got = sockact::is_socket_inet(p.fd, family, type, l, port, ec);
            cmp.check(::sd_is_socket_inet(p.fd, family, type, static_cast<int>(l), port), got, ec, [&] {
              return "is_socket_inet(" + p.name + " fd " + std::to_string(p.fd) + ", " + family_name(family) +
                     ", " + type_name(type) + ", listening " + listening_name(l) + ", port " +
                     std::to_string(port) + " (own " + std::to_string(own) + "))";
            });
          }
  }
  cmp.finish("is_socket_inet vs sd_is_socket_inet");
}

TEST_F(IsDifferential, IsSocketSockaddr) {
  comparer cmp;
  const std::vector<socklen_t> extra_lens = {
      0, 1, sizeof(sa_family_t), sizeof(sockaddr_in), sizeof(sockaddr_in6) - 1, sizeof(sockaddr_storage)};
  for (const probe& p : fds)
    for (const inet_addr& a : addrs) {
      std::vector<socklen_t> lens = extra_lens;
      lens.push_back(a.len);
      for (const socklen_t len : lens)
        for (const int type : types)
          for (const sockact::socket_state l : listen_values) {
            const auto* sa = a.null ? nullptr : reinterpret_cast<const sockaddr*>(&a.ss);
            std::error_code ec = sentinel_error();
            const bool got = sockact::is_socket_sockaddr(p.fd, type, sa, len, l, ec);
            cmp.check(::sd_is_socket_sockaddr(p.fd, type, sa, len, static_cast<int>(l)), got, ec, [&] {
              return "is_socket_sockaddr(" + p.name + " fd " + std::to_string(p.fd) + ", " + type_name(type) +
                     ", " + a.label + ", addr_len " + std::to_string(len) + ", listening " +
                     listening_name(l) + ")";
            });
          }
    }
  cmp.finish("is_socket_sockaddr vs sd_is_socket_sockaddr");
}

TEST_F(IsDifferential, IsSocketUnix) {
  comparer cmp;
  for (const probe& p : fds)
    for (const unix_path& u : unix_paths)
      for (const int type : types)
        for (const sockact::socket_state l : listen_values) {
          const char* path = u.null ? nullptr : u.bytes.data();
          std::error_code ec = sentinel_error();
          const bool got = sockact::is_socket_unix(p.fd, type, l, path, u.length, ec);
          cmp.check(::sd_is_socket_unix(p.fd, type, static_cast<int>(l), path, u.length), got, ec, [&] {
            return "is_socket_unix(" + p.name + " fd " + std::to_string(p.fd) + ", " + type_name(type) +
                   ", listening " + listening_name(l) + ", " + u.label + ")";
          });
        }
  cmp.finish("is_socket_unix vs sd_is_socket_unix");
}

// The enum has -1/0/1, but any int converts to it; libsystemd reads
// listening < 0 as "don't care" and any other value as a bool.
TEST_F(IsDifferential, ListeningOutsideEnum) {
  comparer cmp;
  const std::vector<int> values = {2, -2, INT_MAX, INT_MIN};
  for (const probe& p : fds)
    for (const int v : values)
      for (const int type : std::vector<int>{0, SOCK_STREAM}) {
        const auto l = static_cast<sockact::socket_state>(v);
        const auto what = [&](const char* fn) {
          return [&, fn] {
            return std::string(fn) + "(" + p.name + ", type " + type_name(type) + ", listening " +
                   std::to_string(v) + ")";
          };
        };
        std::error_code ec = sentinel_error();
        bool got = sockact::is_socket(p.fd, 0, type, l, ec);
        cmp.check(::sd_is_socket(p.fd, 0, type, v), got, ec, what("is_socket"));
        ec = sentinel_error();
        got = sockact::is_socket_inet(p.fd, 0, type, l, 0, ec);
        cmp.check(::sd_is_socket_inet(p.fd, 0, type, v, 0), got, ec, what("is_socket_inet"));
        ec = sentinel_error();
        got = sockact::is_socket_unix(p.fd, type, l, nullptr, 0, ec);
        cmp.check(::sd_is_socket_unix(p.fd, type, v, nullptr, 0), got, ec, what("is_socket_unix"));
        for (const inet_addr& a : addrs) {
          if (a.null) continue;
          ec = sentinel_error();
          got =
              sockact::is_socket_sockaddr(p.fd, type, reinterpret_cast<const sockaddr*>(&a.ss), a.len, l, ec);
          cmp.check(::sd_is_socket_sockaddr(p.fd, type, reinterpret_cast<const sockaddr*>(&a.ss), a.len, v),
                    got, ec, what("is_socket_sockaddr"));
        }
      }
  cmp.finish("listening outside -1/0/1");
}

}  // namespace

int main(int argc, char** argv) {
  clear_generated_range();  // before gtest or anything else opens an fd
  ::unsetenv("LISTEN_PIDFDID");
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
