// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_POSIX_HPP
#define SOCKACT_DETAIL_POSIX_HPP

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sockact::detail {

/// Sets FD_CLOEXEC on fd, leaving it alone when already set. 0 or -errno.
inline int set_cloexec(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return -errno;
  if ((flags & FD_CLOEXEC) != 0) return 0;
  if (::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return -errno;
  return 0;
}

/// Closes an fd this library opened itself, keeping errno.
inline void close_own(int fd) noexcept {
  const int saved = errno;
  ::close(fd);
  errno = saved;
}

/// The inode id of a pidfd for pid, which systemd >= 259 passes as
/// LISTEN_PIDFDID. Only pidfs (Linux >= 6.9) gives ids that are unique for the
/// life of the system; elsewhere this returns -EOPNOTSUPP and the check is
/// skipped, as libsystemd does.
inline int pidfd_inode_id(pid_t pid, std::uint64_t& id) noexcept {
#ifdef SYS_pidfd_open
  const long r = ::syscall(SYS_pidfd_open, pid, 0);
  if (r < 0) return -errno;
  const int fd = static_cast<int>(r);
  struct statfs fs {};
  int result = 0;
  constexpr long pidfs_magic = 0x50494446;  // PID_FS_MAGIC
  if (::fstatfs(fd, &fs) < 0) {
    result = -errno;
  } else if (static_cast<long>(fs.f_type) != pidfs_magic) {
    result = -EOPNOTSUPP;
  } else {
    struct stat st {};
    if (::fstat(fd, &st) < 0)
      result = -errno;
    else
      id = static_cast<std::uint64_t>(st.st_ino);
  }
  close_own(fd);
  return result;
#else
  (void)pid;
  (void)id;
  return -EOPNOTSUPP;
#endif
}

/// The command name of a process (/proc/PID/comm), or "" when unreadable.
/// Used only for messages.
inline std::string process_name(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(pid));
  std::string name;
  if (std::FILE* f = std::fopen(path, "re")) {
    char buf[64];
    if (std::fgets(buf, sizeof buf, f) != nullptr) name = buf;
    std::fclose(f);
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  return name;
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_POSIX_HPP
