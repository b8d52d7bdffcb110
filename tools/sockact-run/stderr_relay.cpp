// sockact-run: relaying PROGRAM's stderr.
// SPDX-License-Identifier: MIT

#include "stderr_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>

namespace sockact_run {

namespace {

constexpr std::size_t tail_keep = 4096;
constexpr std::size_t line_limit = 300;

// To sockact-run's stderr, all of it: a reader that is slow holds us up as
// it held PROGRAM up before; one that is gone (EPIPE, EBADF) loses it.
void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(2, p, n);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
    } else if (w < 0 && errno == EAGAIN) {
      pollfd out{2, POLLOUT, 0};
      ::poll(&out, 1, 1000);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return;
    }
  }
}

}  // namespace

stderr_relay::stderr_relay(sockact::unique_fd read_end) noexcept : fd_(std::move(read_end)) {
  ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
}

bool stderr_relay::pump() {
  char buf[16384];
  // Bounded, so that a chatty PROGRAM cannot hold up the rest of the loop.
  for (int round = 0; round < 16; ++round) {
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n <= 0) {
      fd_.reset();
      return false;
    }
    write_all(buf, static_cast<std::size_t>(n));
    tail_.append(buf, static_cast<std::size_t>(n));
    if (tail_.size() > 2 * tail_keep) {
      tail_.erase(0, tail_.size() - tail_keep);
      cut_ = true;
    }
  }
  return true;
}

std::vector<std::string> stderr_relay::last_lines(std::size_t count) const {
  std::vector<std::string> lines;
  std::size_t end = tail_.size();
  if (end > 0 && tail_[end - 1] == '\n') --end;
  while (lines.size() < count && end > 0) {
    const std::size_t nl = tail_.rfind('\n', end - 1);
    const std::size_t begin = nl == std::string::npos ? 0 : nl + 1;
    if (begin == 0 && cut_) break;  // the first line is only the end of one
    std::string line;
    for (std::size_t i = begin; i < end && line.size() < line_limit; ++i) {
      const auto c = static_cast<unsigned char>(tail_[i]);
      if (c == '\r' && i + 1 == end) break;
      if (c < 0x20 && c != '\t') {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\x%02x", c);
        line += esc;
      } else {
        line += static_cast<char>(c);
      }
    }
    if (end - begin > line_limit) line += "...";
    if (!line.empty()) lines.insert(lines.begin(), line);
    if (nl == std::string::npos) break;
    end = nl;
  }
  return lines;
}

}  // namespace sockact_run
