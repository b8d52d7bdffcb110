// SPDX-License-Identifier: MIT
#ifndef SOCKACT_UNIQUE_FD_HPP
#define SOCKACT_UNIQUE_FD_HPP

#include <unistd.h>
#include <cerrno>
#include <utility>

namespace sockact {

/// Owns one file descriptor and closes it once, when destroyed or reset.
/// Closing an inherited listening socket is fine (systemd keeps its own
/// copy); shutting it down is not, and nothing in sockact ever does that.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  /// Gives up ownership: the caller closes the fd.
  int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the current fd (if any) and owns `fd` instead. EINTR from close()
  /// is not retried: on Linux the fd is gone either way.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) {
      const int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace sockact

#endif  // SOCKACT_UNIQUE_FD_HPP
