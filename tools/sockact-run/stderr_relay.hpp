// sockact-run: PROGRAM's stderr, passed on to sockact-run's own as it comes,
// with its last lines kept for the message when the start limit is hit.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_STDERR_RELAY_HPP
#define SOCKACT_RUN_STDERR_RELAY_HPP

#include <sockact/unique_fd.hpp>

#include <string>
#include <vector>

namespace sockact_run {

class stderr_relay {
 public:
  explicit stderr_relay(sockact::unique_fd read_end) noexcept;

  int fd() const noexcept { return fd_.get(); }
  bool closed() const noexcept { return !fd_; }

  // Passes on what is waiting in the pipe. False at its end, and then
  // closed(): every process that had it as stderr has closed it (PROGRAM and
  // what it started).
  bool pump();

  // The last lines written (at most `count`), control characters escaped.
  std::vector<std::string> last_lines(std::size_t count) const;

 private:
  sockact::unique_fd fd_;
  std::string tail_;  // the last few KB
  bool cut_ = false;  // tail_ starts in the middle of a line
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_STDERR_RELAY_HPP
