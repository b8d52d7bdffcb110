// sockact-run: --watch, the files whose change starts PROGRAM anew. inotify
// on each file's folder rather than on the file: a build that renames a new
// file into place leaves a watch on the old inode with nothing to report.
// Changes are taken once quiet, so that a build that writes, closes, renames
// and chmods restarts once.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_WATCH_HPP
#define SOCKACT_RUN_WATCH_HPP

#include "messages.hpp"

#include <sockact/unique_fd.hpp>

#include <set>
#include <string>
#include <vector>

namespace sockact_run {

class file_watch {
 public:
  // Files (their folder must exist; they need not yet) and folders (their
  // files, not their subfolders). Exits with 2 when one cannot be watched.
  explicit file_watch(const std::vector<std::string>& paths);

  int fd() const noexcept { return fd_.get(); }

  // Reads what inotify has (the fd was readable).
  void read_events(clock_type::time_point now);

  // When settled() may next have something to say; max when never.
  clock_type::time_point deadline() const noexcept;

  // What changed, once quiet ("./app", "./app, ./lib.so"); empty when nothing
  // is due yet. A file that is gone by then is not taken (the log says so):
  // its return is the next change.
  std::string settled(clock_type::time_point now);

 private:
  struct target {
    std::string path;      // as given
    std::string folder;    // what inotify watches
    std::string name;      // the entry in it; empty: the folder's files
    int wd = -1;           // -1: the folder is gone, watched for again
    bool writing = false;  // written, not yet closed
  };
  bool add(target& t);
  void lost(target& t, clock_type::time_point now);
  clock_type::time_point quiet_until() const noexcept;

  sockact::unique_fd fd_;
  std::vector<target> targets_;
  std::set<std::size_t> changed_;  // indexes into targets_
  clock_type::time_point last_event_{};
  clock_type::time_point retry_at_ = clock_type::time_point::max();
};

}  // namespace sockact_run

#endif  // SOCKACT_RUN_WATCH_HPP
