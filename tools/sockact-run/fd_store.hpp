// sockact-run: the fd store (--fd-store-max), as systemd keeps one per
// service: fds PROGRAM sends with FDSTORE=1, passed to each later start after
// the listening sockets, with their FDNAME= in LISTEN_FDNAMES.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_FD_STORE_HPP
#define SOCKACT_RUN_FD_STORE_HPP

#include <sockact/unique_fd.hpp>

#include <poll.h>
#include <string>
#include <vector>

namespace sockact_run {

// A name for LISTEN_FDNAMES as systemd's fdname_is_valid(): printable ASCII
// without ':', at most 255 characters; the empty name is valid.
bool fd_name_valid(const std::string& name) noexcept;

class fd_store {
 public:
  explicit fd_store(unsigned max) noexcept : max_(max) {}

  struct entry {
    sockact::unique_fd fd;
    std::string name;
    bool poll = true;  // closed at POLLHUP/POLLERR (not with FDPOLL=0)
  };

  struct added {
    unsigned stored = 0;      // new in the store
    unsigned duplicates = 0;  // already there (the same open file): closed
    unsigned over = 0;        // beyond --fd-store-max: closed
  };

  // FDSTORE=1: takes the fds (each is stored or closed).
  added add(std::vector<sockact::unique_fd> fds, const std::string& name, bool poll);

  // FDSTOREREMOVE=1: closes every fd stored under `name`; how many.
  unsigned remove(const std::string& name);

  // For poll(2): the stored fds to watch for POLLHUP/POLLERR, appended.
  void watch(std::vector<pollfd>& out) const;

  // After poll(2), with the pollfds watch() appended (the store unchanged
  // since): closes those that hung up; their names, for the log.
  std::vector<std::string> drop_hung_up(const pollfd* fds, std::size_t count);

  unsigned max() const noexcept { return max_; }
  std::size_t size() const noexcept { return entries_.size(); }
  const std::vector<entry>& entries() const noexcept { return entries_; }

 private:
  unsigned max_;
  std::vector<entry> entries_;  // in the order stored
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_FD_STORE_HPP
