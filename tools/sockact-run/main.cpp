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
//   supervisor.*   the loop: activations, limits, signals, stopping
// SPDX-License-Identifier: MIT

#include "messages.hpp"
#include "options.hpp"
#include "program.hpp"
#include "sockets.hpp"
#include "supervisor.hpp"

#include <cstdlib>
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
  std::vector<held_socket> sockets = open_sockets(o);
  supervisor s(std::move(o), std::move(program), path, std::move(sockets), adopt);
  return s.loop();
}
