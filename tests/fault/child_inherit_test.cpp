// A server's own children must not inherit its activation: after listen_fds()
// with unset_environment, or listen_or_bind() with its defaults, a process the
// server starts (fork + exec) holds none of the passed fds and sees no LISTEN_*
// variable. Three generations of real processes:
//   this test -> "server" (this program, --server MODE, with fds at 3.. and
//   LISTEN_*) -> "report" (this program, --report), which prints what it got.
#include <sockact/sockact.hpp>

#include <gtest/gtest.h>

#include "test_support.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string self_exe;

// "report": which of the sockets `watched` names (inodes, "a,b") it holds open
// at 3 and up, and which LISTEN_* variables it sees, as
// "sockets=<ino>,<ino> env=<PID><PIDFDID><FDS><FDNAMES>". Only those inodes
// count: fds the test runner itself left open do not matter here.
int report_main(const std::string& watched) {
  std::string sockets;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 3;
  const int own = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd < 3 || fd == own) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
        ("," + watched + ",").find("," + std::to_string(st.st_ino) + ",") != std::string::npos)
      sockets += (sockets.empty() ? "" : ",") + std::to_string(st.st_ino);
  }
  ::closedir(d);
  std::string env;
  for (const char* v : {"LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"})
    env += std::getenv(v) != nullptr ? "1" : "0";
  std::printf("sockets=%s env=%s\n", sockets.c_str(), env.c_str());
  return 0;
}

// "server": receives as MODE says, keeps the fds open as a server does, starts
// the report child and passes on its exit status.
int server_main(const std::string& mode, const std::string& watched) {
  std::error_code ec;
  std::vector<sockact::passed_fd> fds;
  std::vector<sockact::server_socket> listeners;
  if (mode == "unset") {
    fds = sockact::listen_fds({true}, ec);
  } else if (mode == "keep") {
    fds = sockact::listen_fds({false}, ec);
  } else if (mode == "listen_or_bind") {
    sockact::listen_config config;  // the defaults: what the examples use
    std::string why;
    listeners = sockact::listen_or_bind(config, ec, &why);
    if (ec) std::fprintf(stderr, "listen_or_bind: %s\n", why.c_str());
  }  // "none": does not receive at all
  if (ec || (mode != "none" && fds.size() + listeners.size() != 2)) return 4;
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) return 5;
  if (pid == 0) {
    ::execl(self_exe.c_str(), self_exe.c_str(), "--report", watched.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 6;
}

std::string inode(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return std::to_string(st.st_ino);
}

// Starts the server with a TCP listener at 3 and a UDP socket at 4 (named
// web:dns); returns what its child reported.
std::string run_server(const std::string& mode, std::string& inodes) {
  const sockact_test::owned_fd tcp = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  const sockact_test::owned_fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_GE(udp.get(), 0);
  inodes = inode(tcp.get()) + "," + inode(udp.get());
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::dup2(out[1], 1);
    const int a = ::fcntl(tcp.get(), F_DUPFD_CLOEXEC, 100), b = ::fcntl(udp.get(), F_DUPFD_CLOEXEC, 100);
    if (::dup2(a, 3) < 0 || ::dup2(b, 4) < 0) ::_exit(120);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "web:dns", 1);
    ::unsetenv("LISTEN_PIDFDID");
    ::execl(self_exe.c_str(), self_exe.c_str(), "--server", mode.c_str(), inodes.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  int status = 0;
  std::string text = sockact_test::read_to_eof_and_wait(out[0], pid, status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mode << ": server status " << status;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

TEST(ChildInherit, ListenFdsWithUnsetLeavesTheChildNothing) {
  std::string inodes;
  EXPECT_EQ(run_server("unset", inodes), "sockets= env=0000");
}

TEST(ChildInherit, ListenOrBindDefaultsLeaveTheChildNothing) {
  std::string inodes;
  EXPECT_EQ(run_server("listen_or_bind", inodes), "sockets= env=0000");
}

// The controls: the same check sees what a careless server would pass on.
TEST(ChildInherit, KeepingTheVariablesShowsThemButNotTheFds) {
  std::string inodes;
  EXPECT_EQ(run_server("keep", inodes), "sockets= env=1011");  // CLOEXEC still keeps the fds
}

TEST(ChildInherit, NotReceivingLeaksTheFdsAndTheVariables) {
  std::string inodes;
  const std::string got = run_server("none", inodes);
  EXPECT_EQ(got, "sockets=" + inodes + " env=1011");
}

}  // namespace

int main(int argc, char** argv) {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return 1;
  self_exe.assign(path, static_cast<std::size_t>(n));
  if (argc > 2 && std::strcmp(argv[1], "--report") == 0) return report_main(argv[2]);
  if (argc > 3 && std::strcmp(argv[1], "--server") == 0) return server_main(argv[2], argv[3]);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
