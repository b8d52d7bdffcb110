// SPDX-License-Identifier: MIT
// libFuzzer target: the LISTEN_* environment as listen_fds(), listen_fds_count()
// and diagnose() read it, over a fd table the input chooses.
//
// Input: byte 0 flags, byte 1 which of fds 3..10 are open (/dev/null; the
// others are closed), byte 2 which variables are set; the rest is cut at NUL
// bytes into LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PIDFDID.
// Flags: bit 0 unset_environment; bit 1 LISTEN_PID = our pid in the encoding
// of bits 2..4, followed by the field; bit 5 LISTEN_PIDFDID = our pidfd id
// followed by the field; bits 6..7 the pid check (strict, parent, any).
//
// Only /dev/null is ever put at fds 3..10 and nothing is bound, so nothing
// leaves the process; fds above 10 belong to libFuzzer and the sanitizers.
#include <sockact/diagnose.hpp>  // first: the header must be self-contained

#include <sockact/detail/parse.hpp>
#include <sockact/detail/posix.hpp>
#include <sockact/listen_fds.hpp>

#include "fuzz_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#ifdef SOCKACT_FUZZ_WITH_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

using sockact_fuzz::show;

namespace {

constexpr int first_slot = 3;
constexpr int slot_count = 8;  // fds 3..10
int dev_null = -1;             // parked high, the source of every /dev/null slot
std::uint64_t own_pidfd_id = 0;
bool have_pidfd_id = false;

const char* const var_names[] = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"};

void set_slots(std::uint8_t mask) {
  for (int i = 0; i < slot_count; ++i) {
    const int fd = first_slot + i;
    if (mask & (1u << i)) {
      if (::dup2(dev_null, fd) != fd) sockact_fuzz::fail("dup2 /dev/null");
    } else {
      ::close(fd);
    }
  }
}

std::string encode_pid(pid_t pid, unsigned how) {
  char buf[80];
  const auto v = static_cast<unsigned long>(pid);
  switch (how & 7) {
    case 0:
      std::snprintf(buf, sizeof buf, "%lu", v);
      break;
    case 1:
      std::snprintf(buf, sizeof buf, " \t\n\r%lu", v);
      break;  // systemd skips these
    case 2:
      std::snprintf(buf, sizeof buf, "0x%lx", v);
      break;
    case 3:
      std::snprintf(buf, sizeof buf, "0%lo", v);
      break;  // C octal
    case 4:
      std::snprintf(buf, sizeof buf, "0o%lo", v);
      break;   // Python-style octal
    case 5: {  // 0b binary
      std::string b;
      for (unsigned long x = v; x != 0; x >>= 1) b.insert(b.begin(), static_cast<char>('0' + (x & 1)));
      return "0b" + b;
    }
    case 6:
      std::snprintf(buf, sizeof buf, "+%lu", v);
      break;
    default:
      std::snprintf(buf, sizeof buf, "\v%lu", v);
      break;  // strtol skips \v too
  }
  return buf;
}

// Which variable a failed receive must name in its message.
const char* expected_culprit(sockact::activation_status s) {
  switch (s) {
    case sockact::activation_status::invalid_listen_pid:
      return "LISTEN_PID";
    case sockact::activation_status::invalid_listen_pidfdid:
      return "LISTEN_PIDFDID";
    case sockact::activation_status::invalid_listen_fds:
      return "LISTEN_FDS";
    case sockact::activation_status::invalid_listen_fdnames:
    case sockact::activation_status::names_mismatch:
      return "LISTEN_FDNAMES";
    case sockact::activation_status::closed_fd:
      return "is not open";
    default:
      return nullptr;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Inherited fds in the slot range (a jobserver, a CI runner's pipes) are not
  // the fuzzer's to keep: the slots must be under its control.
  for (int fd = first_slot; fd < first_slot + slot_count; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) {
      std::fprintf(stderr, "fuzz_listen_fds: closing inherited fd %d to use it as a slot\n", fd);
      ::close(fd);
    }
  const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) sockact_fuzz::fail("open /dev/null");
  dev_null = ::fcntl(fd, F_DUPFD_CLOEXEC, 900);
  ::close(fd);
  if (dev_null < 0) sockact_fuzz::fail("parking /dev/null");
  have_pidfd_id = sockact::detail::pidfd_inode_id(::getpid(), own_pidfd_id) == 0;
  for (const char* name : var_names) ::unsetenv(name);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::uint8_t flags = data[0];
  const std::uint8_t slots = data[1];
  const std::uint8_t present = data[2];
  const std::vector<std::string> fields = sockact_fuzz::split_fields(data + 3, size - 3, 4);
  const auto field = [&](std::size_t i) { return i < fields.size() ? fields[i] : std::string(); };

  set_slots(slots);
  const int fds_before = sockact_fuzz::open_fd_count();

  std::optional<std::string> values[4];
  for (std::size_t i = 0; i < 4; ++i)
    if (present & (1u << i)) values[i] = field(i);
  if (flags & 2) values[0] = encode_pid(::getpid(), flags >> 2) + field(0);
  if ((flags & 32) && have_pidfd_id) {
    char id[32];
    std::snprintf(id, sizeof id, (flags & 4) ? "0x%llx" : "%llu",
                  static_cast<unsigned long long>(own_pidfd_id));
    values[3] = id + field(3);
  }
  for (std::size_t i = 0; i < 4; ++i) sockact_fuzz::put_env(var_names[i], values[i]);
  const sockact::activation_environment env = sockact::activation_environment::current();

  sockact::listen_options options;
  options.unset_environment = (flags & 1) != 0;
  switch ((flags >> 6) & 3) {
    case 0:
    case 3:
      options.pid_check = sockact::listen_pid_check::strict;
      break;
    case 1:
      options.pid_check = sockact::listen_pid_check::allow_parent;
      break;
    default:
      options.pid_check = sockact::listen_pid_check::allow_any;
      break;
  }
  const std::string context = sockact_fuzz::show_env(var_names, values) + " slots=" + std::to_string(slots) +
                              " flags=" + std::to_string(flags);

  // 1. diagnose() reads and changes nothing.
  const sockact::diagnosis d = sockact::diagnose(options);
  (void)d.to_string();
  SOCKACT_FUZZ_CHECK(sockact::activation_environment::current().listen_pid == env.listen_pid, context);

  // 2. The count, without unsetting.
  sockact::listen_options keep = options;
  keep.unset_environment = false;
  std::error_code count_ec;
  const int count = sockact::listen_fds_count(keep, count_ec);
  SOCKACT_FUZZ_CHECK((count < 0) == static_cast<bool>(count_ec), context);

  // 3. The throwing form, without unsetting: its message names the culprit.
  std::string thrown;
  std::size_t thrown_size = 0;
  try {
    thrown_size = sockact::listen_fds(keep).size();
  } catch (const std::system_error& e) {
    thrown = e.what();
    SOCKACT_FUZZ_CHECK(thrown.rfind("sockact::listen_fds: ", 0) == 0, context + "\nwhat: " + thrown);
    if (const char* culprit = expected_culprit(d.status))
      SOCKACT_FUZZ_CHECK(thrown.find(culprit) != std::string::npos,
                         context + "\nstatus: " + sockact::status_name(d.status) + "\nwhat: " + thrown);
  }
  std::string count_thrown;
  try {
    (void)sockact::listen_fds_count(keep);
  } catch (const std::system_error& e) {
    count_thrown = e.what();
    SOCKACT_FUZZ_CHECK(count_thrown.find("LISTEN_") != std::string::npos ||
                           count_thrown.find("is not open") != std::string::npos,
                       context + "\nwhat: " + count_thrown);
  }
  SOCKACT_FUZZ_CHECK(count_thrown.empty() == !count_ec, context);

  // 4. The error_code form, unsetting as the input says.
  std::error_code ec;
  const std::vector<sockact::passed_fd> fds = sockact::listen_fds(options, ec);
  SOCKACT_FUZZ_CHECK(thrown.empty() == !ec, context + "\nwhat: " + thrown + "\nec: " + ec.message());
  SOCKACT_FUZZ_CHECK(!ec || fds.empty(), context);
  SOCKACT_FUZZ_CHECK(thrown_size == fds.size(), context);

  // The environment afterwards: gone when asked (on errors too), else untouched.
  const sockact::activation_environment after = sockact::activation_environment::current();
  if (options.unset_environment) {
    SOCKACT_FUZZ_CHECK(
        !after.listen_pid && !after.listen_fds && !after.listen_fdnames && !after.listen_pidfdid, context);
  } else {
    SOCKACT_FUZZ_CHECK(after.listen_pid == env.listen_pid && after.listen_fds == env.listen_fds &&
                           after.listen_fdnames == env.listen_fdnames &&
                           after.listen_pidfdid == env.listen_pidfdid,
                       context);
  }

  // diagnose() predicts listen_fds(): activated iff fds are returned, the same error.
  SOCKACT_FUZZ_CHECK(d.activated() == (!ec && !fds.empty()),
                     context + "\nstatus: " + sockact::status_name(d.status) + " ec: " + ec.message() +
                         " n=" + std::to_string(fds.size()));
  SOCKACT_FUZZ_CHECK(d.error == ec, context + "\nstatus: " + sockact::status_name(d.status) +
                                        " diagnose: " + d.error.message() + " listen_fds: " + ec.message());

  // The count agrees: an error in the count is an error here; names aside, the same n.
  if (count_ec) SOCKACT_FUZZ_CHECK(static_cast<bool>(ec), context);
  if (!ec) SOCKACT_FUZZ_CHECK(fds.size() == static_cast<std::size_t>(count), context);

  if (!ec && !fds.empty()) {
    int n = 0;
    SOCKACT_FUZZ_CHECK(env.listen_fds && sockact::detail::parse_int(env.listen_fds->c_str(), n) == 0,
                       context);
    SOCKACT_FUZZ_CHECK(fds.size() == static_cast<std::size_t>(n), context);
    std::vector<std::string> names;
    const bool named = env.listen_fdnames.has_value();
    if (named)
      SOCKACT_FUZZ_CHECK(sockact::detail::split_names(env.listen_fdnames->c_str(), names) == n, context);
    for (int i = 0; i < n; ++i) {
      const sockact::passed_fd& l = fds[static_cast<std::size_t>(i)];
      SOCKACT_FUZZ_CHECK(l.fd == first_slot + i, context);
      SOCKACT_FUZZ_CHECK(l.name == (named ? names[static_cast<std::size_t>(i)] : std::string("unknown")),
                         context);
      SOCKACT_FUZZ_CHECK(::fcntl(l.fd, F_GETFD) == FD_CLOEXEC, context);  // set, and the fd open
    }
    SOCKACT_FUZZ_CHECK(d.fds.size() == static_cast<std::size_t>(n), context);
  }
  // With our own pid and the strict check, a usable environment is taken.
  // (LISTEN_FDNAMES is checked first, whoever the fds are for, as libsystemd.)
  std::vector<std::string> split;
  const bool names_ok =
      !env.listen_fdnames || sockact::detail::split_names(env.listen_fdnames->c_str(), split) >= 0;
  if (env.listen_pid && names_ok && options.pid_check == sockact::listen_pid_check::strict) {
    pid_t pid = 0;
    if (sockact::detail::parse_pid(env.listen_pid->c_str(), pid) == 0 && pid != ::getpid())
      SOCKACT_FUZZ_CHECK(!ec && fds.empty() && d.status == sockact::activation_status::foreign_pid, context);
  }

#ifdef SOCKACT_FUZZ_WITH_LIBSYSTEMD
  // libsystemd 252 is the reference, where it has an opinion: it ignores
  // LISTEN_PIDFDID and knows no pid opt-ins.
  if (!env.listen_pidfdid && options.pid_check == sockact::listen_pid_check::strict) {
    for (std::size_t i = 0; i < 4; ++i) sockact_fuzz::put_env(var_names[i], values[i]);
    char** names = nullptr;
    const int r = ::sd_listen_fds_with_names(0, &names);
    std::vector<std::string> theirs;
    if (names != nullptr) {
      for (char** p = names; *p != nullptr; ++p) {
        theirs.emplace_back(*p);
        std::free(*p);
      }
      std::free(names);
    }
    const int ours = ec ? -ec.value() : static_cast<int>(fds.size());
    SOCKACT_FUZZ_CHECK(r == ours,
                       context + "\nlibsystemd: " + std::to_string(r) + " sockact: " + std::to_string(ours));
    if (r > 0) {
      for (std::size_t i = 0; i < fds.size(); ++i)
        SOCKACT_FUZZ_CHECK(theirs.size() > i && theirs[i] == fds[i].name,
                           context + "\nname " + std::to_string(i) + ": libsystemd " +
                               (theirs.size() > i ? show(theirs[i]) : "missing") + " sockact " +
                               show(fds[i].name));
    }
    const int rc = ::sd_listen_fds(0);
    SOCKACT_FUZZ_CHECK(
        rc == (count_ec ? -count_ec.value() : count),
        context + "\nsd_listen_fds: " + std::to_string(rc) + " sockact count: " + std::to_string(count));
  }
#endif

  for (const char* name : var_names) ::unsetenv(name);
  const int fds_after = sockact_fuzz::open_fd_count();
  SOCKACT_FUZZ_CHECK(fds_after == fds_before, context + "\nopen fds before " + std::to_string(fds_before) +
                                                  ", after " + std::to_string(fds_after));
  return 0;
}
