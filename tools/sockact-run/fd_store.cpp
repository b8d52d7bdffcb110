// sockact-run: the fd store.
// SPDX-License-Identifier: MIT

#include "fd_store.hpp"

#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sockact_run {

namespace {

// Do a and b refer to the same open file? systemd's same_fd(): kcmp(2) where
// the kernel has it; else the same inode, which for anything but a regular
// file is the same object (a socket, a pipe, a memfd has one open file).
bool same_file(int a, int b) noexcept {
  if (a == b) return true;
  struct stat sa {
  }, sb{};
  if (::fstat(a, &sa) < 0 || ::fstat(b, &sb) < 0) return false;
  if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino) return false;
  const pid_t self = ::getpid();
  const long r = ::syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
  if (r >= 0) return r == 0;
  return !S_ISREG(sa.st_mode);
}

}  // namespace

bool fd_name_valid(const std::string& name) noexcept {
  if (name.size() > 255) return false;
  for (const char c : name)
    if (c < 0x20 || c > 0x7e || c == ':') return false;
  return true;
}

fd_store::added fd_store::add(std::vector<sockact::unique_fd> fds, const std::string& name, bool poll) {
  added out;
  for (sockact::unique_fd& fd : fds) {
    if (entries_.size() >= max_) {
      ++out.over;
      continue;  // closed with `fds`
    }
    bool known = false;
    for (const entry& e : entries_) known = known || same_file(e.fd.get(), fd.get());
    if (known) {
      ++out.duplicates;
      continue;
    }
    entries_.push_back(entry{std::move(fd), name, poll});
    ++out.stored;
  }
  return out;
}

unsigned fd_store::remove(const std::string& name) {
  unsigned removed = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->name != name) {
      ++it;
      continue;
    }
    it = entries_.erase(it);
    ++removed;
  }
  return removed;
}

void fd_store::watch(std::vector<pollfd>& out) const {
  for (const entry& e : entries_)
    if (e.poll) out.push_back({e.fd.get(), 0, 0});  // POLLHUP and POLLERR come unasked
}

std::vector<std::string> fd_store::drop_hung_up(const pollfd* fds, std::size_t count) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < count; ++i) {
    if ((fds[i].revents & (POLLHUP | POLLERR)) == 0) continue;
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->fd.get() != fds[i].fd) continue;
      names.push_back(it->name);
      entries_.erase(it);
      break;
    }
  }
  return names;
}

}  // namespace sockact_run
