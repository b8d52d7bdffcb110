// Child of child_process_test: receives fds the way a socket-activated server
// does and prints what it got as one line:
//   n=<count|-errno> names=<a,b> cloexec=<1,0> env=<LISTEN_PID,LISTEN_FDS,LISTEN_FDNAMES set?>
// argv[1]: "keep" or "unset"; argv[2] (optional): "allow-parent".
#include <sockact/sockact.hpp>

#include <fcntl.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  sockact::listen_options options;
  options.unset_environment = argc > 1 && std::strcmp(argv[1], "unset") == 0;
  if (argc > 2 && std::strcmp(argv[2], "allow-parent") == 0)
    options.pid_check = sockact::listen_pid_check::allow_parent;
  std::error_code ec;
  const auto fds = sockact::listen_fds(options, ec);
  std::string line = "n=" + std::to_string(ec ? -ec.value() : static_cast<int>(fds.size())) + " names=";
  for (std::size_t i = 0; i < fds.size(); ++i) line += (i ? "," : "") + fds[i].name;
  line += " cloexec=";
  for (int fd = 3; fd < 7; ++fd) {
    const int f = ::fcntl(fd, F_GETFD);
    line += (fd > 3 ? "," : "") + std::string(f < 0 ? "-" : (f & FD_CLOEXEC) ? "1" : "0");
  }
  line += " env=";
  for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) line += std::getenv(v) ? "1" : "0";
  line += " kinds=";
  for (const auto& l : fds) line += sockact::describe_fd(l.fd).to_string() + ";";
  std::puts(line.c_str());
  return 0;
}
