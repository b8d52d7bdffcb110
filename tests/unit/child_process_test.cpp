// A real child process receives real fds at 3.. with real LISTEN_* variables,
// set between fork() and exec() as a service manager does.
#include <sockact/sockact.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <vector>

namespace {

using namespace sockact_test;

struct child_setup {
  std::vector<int> fds;  // placed at 3, 4, ...
  std::optional<std::string> listen_fds;
  std::optional<std::string> names;
  std::string pid = "child";  // "child" = the child's own pid, "parent" = ours
  std::vector<std::string> args{"keep"};
};

// Runs the child program; returns its one line of output.
std::string run_child(const child_setup& s) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    // Only async-signal-safe calls and environment edits from here to exec.
    ::dup2(out[1], 1);
    std::vector<int> src;
    for (const int fd : s.fds) src.push_back(fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 100));
    for (int fd = 3; fd < 20; ++fd)
      if (fd != out[0] && fd != out[1]) ::close(fd);
    int slot = 3;
    for (const int fd : src) {
      if (fd >= 0) ::dup2(fd, slot);
      ++slot;
    }
    const std::string listen_pid = s.pid == "child"    ? std::to_string(::getpid())
                                   : s.pid == "parent" ? std::to_string(::getppid())
                                                       : s.pid;
    ::setenv("LISTEN_PID", listen_pid.c_str(), 1);
    if (s.listen_fds) ::setenv("LISTEN_FDS", s.listen_fds->c_str(), 1);
    if (s.names) ::setenv("LISTEN_FDNAMES", s.names->c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(SOCKACT_TEST_CHILD)};
    for (const std::string& a : s.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SOCKACT_TEST_CHILD, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  int status = 0;
  std::string line = sockact_test::read_to_eof_and_wait(out[0], pid, status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

TEST(ChildProcess, ReceivesNamedSocketsAndSetsCloexec) {
  const owned_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  const owned_fd udp = inet_socket(AF_INET6, SOCK_DGRAM);
  child_setup s;
  s.fds = {tcp.get(), udp.get()};
  s.listen_fds = "2";
  s.names = "web:dns";
  const std::string line = run_child(s);
  EXPECT_EQ(line.substr(0, line.find(" kinds=")), "n=2 names=web,dns cloexec=1,1,-,- env=111");
  EXPECT_NE(line.find("fd 3: inet stream tcp listening 127.0.0.1:" + std::to_string(local_port(tcp.get()))),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("fd 4: inet6 datagram udp [::1]:"), std::string::npos) << line;
}

TEST(ChildProcess, UnsetHidesTheVariables) {
  const owned_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  child_setup s;
  s.fds = {tcp.get()};
  s.listen_fds = "1";
  s.args = {"unset"};
  EXPECT_EQ(run_child(s).substr(0, 38), "n=1 names=unknown cloexec=1,-,-,- env=");
  EXPECT_NE(run_child(s).find("env=000"), std::string::npos);
}

TEST(ChildProcess, ClosedFdIsEbadf) {
  const owned_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  child_setup s;
  s.fds = {tcp.get(), -1};
  s.listen_fds = "2";
  EXPECT_EQ(run_child(s).substr(0, 35), "n=-" + std::to_string(EBADF) + " names= cloexec=1,-,-,- env=110");
}

TEST(ChildProcess, ParentPidOnlyByOptIn) {
  const owned_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  child_setup s;
  s.fds = {tcp.get()};
  s.listen_fds = "1";
  s.pid = "parent";
  EXPECT_EQ(run_child(s).substr(0, 32), "n=0 names= cloexec=0,-,-,- env=1");
  s.args = {"keep", "allow-parent"};
  EXPECT_EQ(run_child(s).substr(0, 39), "n=1 names=unknown cloexec=1,-,-,- env=1");
}

}  // namespace
