// sockact-run: --watch with inotify.
// SPDX-License-Identifier: MIT

#include "watch.hpp"

#include "options.hpp"

#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace sockact_run {

namespace {

constexpr std::uint32_t folder_events = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                        IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// Events that end a write: the file is whole (or gone) as far as inotify can tell.
constexpr std::uint32_t write_done =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
// A watched folder that went away: how often to look for it again.
constexpr auto folder_retry = std::chrono::milliseconds(500);

// In a watched folder, editors' swap and backup files are not changes.
bool ignored_name(const char* name) {
  const std::size_t n = std::strlen(name);
  return n == 0 || name[0] == '.' || name[n - 1] == '~';
}

}  // namespace

file_watch::file_watch(const std::vector<std::string>& paths) {
  fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd_) die(exit_runtime, "--watch: inotify_init1: " + errno_text(errno));
  for (const std::string& p : paths) {
    target t;
    t.path = p;
    std::string path = p;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      t.folder = path;
    } else {
      const std::size_t slash = path.rfind('/');
      t.folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
      t.name = slash == std::string::npos ? path : path.substr(slash + 1);
    }
    if (!add(t))
      die(exit_usage,
          "--watch: cannot watch the folder " + t.folder + " (for " + p + "): " + errno_text(errno));
    targets_.push_back(std::move(t));
  }
}

bool file_watch::add(target& t) {
  t.wd = ::inotify_add_watch(fd_.get(), t.folder.c_str(), folder_events);
  return t.wd >= 0;
}

void file_watch::lost(target& t, clock_type::time_point now) {
  if (t.wd < 0) return;
  t.wd = -1;
  if (retry_at_ == clock_type::time_point::max())
    std::fprintf(stderr,
                 "%s: --watch: the folder %s went away (removed or renamed); looking for it every %s s\n",
                 self, t.folder.c_str(), seconds_text(folder_retry).c_str());
  retry_at_ = std::min(retry_at_, now + folder_retry);
}

void file_watch::read_events(clock_type::time_point now) {
  alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN: all read
    }
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if ((ev->mask & IN_Q_OVERFLOW) != 0) {  // events were lost: anything may have changed
        for (std::size_t i = 0; i < targets_.size(); ++i) changed_.insert(i);
        last_event_ = now;
        continue;
      }
      for (std::size_t i = 0; i < targets_.size(); ++i) {
        target& t = targets_[i];
        if (t.wd != ev->wd) continue;
        if ((ev->mask & IN_MOVE_SELF) != 0)
          ::inotify_rm_watch(fd_.get(), t.wd);  // it watches another path now
        if ((ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
          lost(t, now);
          continue;
        }
        if (ev->len == 0 || (ev->mask & IN_ISDIR) != 0) continue;
        if (t.name.empty() ? ignored_name(ev->name) : t.name != ev->name) continue;
        changed_.insert(i);
        last_event_ = now;
        if ((ev->mask & IN_MODIFY) != 0) t.writing = true;
        if ((ev->mask & write_done) != 0) t.writing = false;
      }
    }
  }
}

clock_type::time_point file_watch::quiet_until() const noexcept {
  if (changed_.empty()) return clock_type::time_point::max();
  bool writing = false;
  for (const std::size_t i : changed_) writing = writing || targets_[i].writing;
  return last_event_ +
         std::chrono::duration_cast<clock_type::duration>(writing ? watch_quiet_writing : watch_quiet);
}

clock_type::time_point file_watch::deadline() const noexcept {
  return std::min(retry_at_, quiet_until());
}

std::string file_watch::settled(clock_type::time_point now) {
  if (now >= retry_at_) {
    retry_at_ = clock_type::time_point::max();
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      target& t = targets_[i];
      if (t.wd >= 0) continue;
      if (!add(t)) {
        retry_at_ = now + folder_retry;
        continue;
      }
      std::fprintf(stderr, "%s: --watch: the folder %s is back\n", self, t.folder.c_str());
      changed_.insert(i);  // what is in it now may be new
      last_event_ = now;
    }
  }
  if (changed_.empty() || now < quiet_until()) return "";
  std::string what;
  for (const std::size_t i : changed_) {
    target& t = targets_[i];
    t.writing = false;
    if (!t.name.empty() && ::access(t.path.c_str(), F_OK) != 0) {
      std::fprintf(stderr, "%s: --watch: %s was removed; the next file there counts as the change\n", self,
                   t.path.c_str());
      continue;
    }
    what += (what.empty() ? "" : ", ") + t.path;
  }
  changed_.clear();
  return what;
}

}  // namespace sockact_run
