// sockact-run: a socket unit without systemd. Holds listening sockets, starts
// PROGRAM on the first connection with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES,
// starts it again on the next connection after it exited (idle exit), and
// shows what its NOTIFY_SOCKET receives. `sockact-run --help` documents it.
//   options.*      the command line and --help
//   program.*      finding PROGRAM, and why it cannot run (#! interpreters)
//   sockets.*      the listening sockets and the NOTIFY_SOCKET
//   process.*      starting PROGRAM (environment, fds, process group)
//   stderr_relay.* PROGRAM's stderr, passed on, its last lines kept
//   limits.hpp     the start and trigger limits
//   watch.*        --watch: inotify, debounced
//   fd_store.*     the fd store (FDSTORE=1, --fd-store-max)
//   supervisor.*   the loop: activations, limits, signals, stopping
//   reload.cpp     restarts beside the running PROGRAM (--watch, SIGUSR2)
// SPDX-License-Identifier: MIT

#include "messages.hpp"
#include "options.hpp"
#include "program.hpp"
#include "sockets.hpp"
#include "supervisor.hpp"
#include "watch.hpp"

#include <sys/stat.h>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

// PATH as PROGRAM will have it: -E PATH=... (the last one wins) or ours.
std::string child_path(const sockact_run::options& o) {
  std::string path;
  const char* ours = std::getenv("PATH");
  path = ours != nullptr ? ours : "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& e : o.setenv)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  return path;
}

// --watch: PROGRAM (and, if it is a symbolic link, the file it points to,
// which a build may rewrite in place); --watch=PATH: PATH.
std::vector<std::string> watch_paths(const sockact_run::options& o, const std::string& program) {
  std::vector<std::string> paths;
  if (o.watch_program) {
    paths.push_back(program);
    struct stat st {};
    if (::lstat(program.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      if (char* real = ::realpath(program.c_str(), nullptr)) {
        paths.emplace_back(real);
        std::free(real);
      }
  }
  paths.insert(paths.end(), o.watch.begin(), o.watch.end());
  return paths;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sockact_run;
  options o;
  try {
    o = parse_options(argc, argv);
  } catch (const usage_error& e) {
    die(exit_usage, e.message);
  }
  const std::string path = child_path(o);
  std::string program = resolve_program(o.program[0], path);
  const std::string adopt = o.adopt ? adopt_library(*o.adopt) : std::string();
  if (o.adopt)  // said now, before the first client waits
    if (const std::optional<std::string> why = adopt_obstacle(program, path))
      std::fprintf(stderr, "sockact-run: warning: %s\n", why->c_str());
  std::optional<file_watch> watch;  // before listening: a bad --watch is a usage error
  if (o.watch_program || !o.watch.empty()) watch.emplace(watch_paths(o, program));
  std::vector<held_socket> sockets = open_sockets(o);
  supervisor s(std::move(o), std::move(program), path, std::move(sockets), adopt, std::move(watch));
  return s.loop();
}
