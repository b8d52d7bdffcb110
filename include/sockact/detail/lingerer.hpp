// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_LINGERER_HPP
#define SOCKACT_DETAIL_LINGERER_HPP

// The lingering close: after a connection's FIN, a duplicate of its fd reads
// and discards what the client still sends until the client closes (at most
// the linger time), so that closing does not reset a response still on its
// way. One per activation, for every driver; any thread.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace sockact {
namespace detail {

class lingerer {
 public:
  using clock = std::chrono::steady_clock;

  explicit lingerer(std::chrono::milliseconds linger) noexcept : linger_(linger) {}
  lingerer(const lingerer&) = delete;
  lingerer& operator=(const lingerer&) = delete;
  // Closes what still lingers; runs no `over` (its owners may be gone).
  ~lingerer() {
    for (const entry& e : entries_)
      if (e.fd >= 0) ::close(e.fd);
  }

  /// FIN after what was written on `fd` (a connection, never a listener),
  /// then lingers on a duplicate. `over` runs once the linger ends (the
  /// client closed, or the time is up), from service(), outside the lock:
  /// never from here, which may run under the caller's own locks.
  void shutdown(int fd, std::function<void()> over = {}) {
    const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::shutdown(fd, SHUT_WR);
    if (dup < 0 && !over) return;
    // Without a duplicate nothing lingers: `over` runs at the next service().
    const clock::time_point until = dup < 0 ? clock::time_point::min() : clock::now() + linger_;
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back({dup, until, std::move(over)});
  }

  /// Reads what waits on the lingering fds; ends those at EOF, error or
  /// their deadline (every one with `all`).
  void service(clock::time_point now, bool all = false) {
    std::vector<std::function<void()>> over;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      char buf[4096];
      for (std::size_t i = 0; i < entries_.size();) {
        entry& e = entries_[i];
        bool done = all || e.fd < 0 || now >= e.until;
        for (int reads = 0; !done && reads < 16; ++reads) {
          const ssize_t r = ::recv(e.fd, buf, sizeof buf, MSG_DONTWAIT);
          if (r > 0) continue;
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
          done = true;  // EOF or error
        }
        if (!done) {
          ++i;
          continue;
        }
        if (e.fd >= 0) ::close(e.fd);
        if (e.over) over.push_back(std::move(e.over));
        e = std::move(entries_.back());
        entries_.pop_back();
      }
    }
    for (auto& f : over) f();
  }

  std::size_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

  /// Waits (blocking, bounded) until nothing lingers; at `until`, ends the rest.
  void finish(clock::time_point until) {
    for (;;) {
      const clock::time_point now = clock::now();
      service(now, now >= until);
      std::vector<pollfd> fds;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (entries_.empty() || now >= until) return;
        for (const entry& e : entries_)
          if (e.fd >= 0) fds.push_back(pollfd{e.fd, POLLIN, 0});
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
      ::poll(fds.data(), fds.size(), static_cast<int>(left > 100 ? 100 : left + 1));
    }
  }

 private:
  struct entry {
    int fd;  // our duplicate of the connection after its FIN; -1: none could be made
    clock::time_point until;
    std::function<void()> over;
  };
  std::chrono::milliseconds linger_;
  mutable std::mutex mutex_;
  std::vector<entry> entries_;
};

}  // namespace detail
}  // namespace sockact

#endif  // SOCKACT_DETAIL_LINGERER_HPP
