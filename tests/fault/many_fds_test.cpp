// 500 passed fds of mixed kinds (TCP listening v4 and v6, unix stream
// listening, UDP, unix datagram, connected sockets, FIFOs), all named: a real
// child (this program again, exec'd with --child) receives them at 3..502 with
// real LISTEN_* variables. listen_fds() must return all 500 in order with
// their names and FD_CLOEXEC set, describe_fd() must classify each one, and
// both must be quick.
#include <sockact/sockact.hpp>

#include <gtest/gtest.h>

#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int count = 500;
constexpr int first = sockact::listen_fds_start;
std::string self_exe;

// The child: receives, describes, prints one line per fd and a summary line.
int child_main() {
  int cloexec_before = 0;
  for (int fd = first; fd < first + count; ++fd)
    if ((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0) ++cloexec_before;
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const std::vector<sockact::passed_fd> fds = sockact::listen_fds({true}, ec);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<sockact::fd_info> infos;
  for (const sockact::passed_fd& l : fds) infos.push_back(sockact::describe_fd(l.fd));
  const auto t2 = std::chrono::steady_clock::now();
  const auto us = [](auto d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  std::printf("n=%zu ec=%d cloexec_before=%d env=%d listen_fds_us=%lld describe_us=%lld\n", fds.size(),
              ec.value(), cloexec_before, std::getenv("LISTEN_FDS") != nullptr ? 1 : 0, us(t1 - t0),
              us(t2 - t1));
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const sockact::fd_info& f = infos[i];
    const int flags = ::fcntl(fds[i].fd, F_GETFD);
    std::printf("%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", fds[i].fd, fds[i].name.c_str(),
                flags >= 0 && (flags & FD_CLOEXEC) != 0 ? 1 : 0, sockact::kind_name(f.kind),
                f.is_socket() ? sockact::family_name(f.family).c_str() : "-",
                f.is_socket() ? sockact::type_name(f.type).c_str() : "-", f.listening ? 1 : 0,
                f.connected ? 1 : 0, f.local_address.empty() ? "-" : f.local_address.c_str());
  }
  return 0;
}

// What the parent made and expects the child to see.
struct expected_fd {
  int fd = -1;  // in the parent
  std::string name, kind = "socket", family, type, local = "-";
  bool listening = false, connected = false;
};

std::string port_of(int fd, const char* host) {
  return std::string(host) + ":" + std::to_string(sockact_test::local_port(fd));
}

class ManyFds : public ::testing::Test {
 protected:
  void SetUp() override {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const rlim_t want = 4096;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2048)
      GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " < 2048";
    if (rl.rlim_cur < want) {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
      ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
  }
  int own(int fd) { return own(sockact_test::owned_fd(fd)); }
  int own(sockact_test::owned_fd fd) {
    owned_.push_back(std::move(fd));
    return owned_.back().get();
  }
  std::vector<sockact_test::owned_fd> owned_;
};

TEST_F(ManyFds, FiveHundredMixedFdsReceivedNamedAndClassified) {
  bool have_v6 = true;
  try {
    sockact_test::inet_socket(AF_INET6, SOCK_STREAM);
  } catch (const std::runtime_error&) {
    have_v6 = false;  // no ::1 here
  }
  const int accept_from = own(sockact_test::inet_socket(AF_INET, SOCK_STREAM));
  const std::string tag = std::to_string(::getpid());

  std::vector<expected_fd> want;
  for (int i = 0; i < count; ++i) {
    expected_fd e;
    const int kind = i % 8;
    switch (kind) {
      case 0:
      case 1:  // TCP listening, v4 and v6 (v4 again without ::1)
        if (kind == 1 && have_v6) {
          e.fd = own(sockact_test::inet_socket(AF_INET6, SOCK_STREAM));
          e.family = "inet6";
          e.local = port_of(e.fd, "[::1]");
        } else {
          e.fd = own(sockact_test::inet_socket(AF_INET, SOCK_STREAM));
          e.family = "inet";
          e.local = port_of(e.fd, "127.0.0.1");
        }
        e.type = "stream";
        e.listening = true;
        e.name = "tcp" + std::to_string(i);
        break;
      case 2:  // unix stream, listening
        e.fd = own(sockact_test::unix_socket("@sockact-fault-" + tag + "-" + std::to_string(i)));
        e.family = "unix";
        e.type = "stream";
        e.listening = true;
        e.local = "@sockact-fault-" + tag + "-" + std::to_string(i);
        e.name = "unix_stream." + std::to_string(i);
        break;
      case 3:  // UDP
        e.fd = own(sockact_test::inet_socket(AF_INET, SOCK_DGRAM));
        e.family = "inet";
        e.type = "datagram";
        e.local = port_of(e.fd, "127.0.0.1");
        e.name = "udp-" + std::to_string(i);
        break;
      case 4:  // unix datagram
        e.fd =
            own(sockact_test::unix_socket("@sockact-fault-dg-" + tag + "-" + std::to_string(i), SOCK_DGRAM));
        e.family = "unix";
        e.type = "datagram";
        e.local = "@sockact-fault-dg-" + tag + "-" + std::to_string(i);
        e.name = "unix_dgram" + std::to_string(i);
        break;
      case 5: {  // a connected unix stream socket (one end of a socketpair)
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        e.fd = own(sv[0]);
        own(sv[1]);
        e.family = "unix";
        e.type = "stream";
        e.connected = true;
        e.name = "pair" + std::to_string(i);
        break;
      }
      case 6: {  // a FIFO (a pipe's read end)
        int p[2];
        ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
        e.fd = own(p[0]);
        own(p[1]);
        e.kind = "fifo";
        e.family = e.type = "-";
        e.name = "fifo" + std::to_string(i);
        break;
      }
      default: {  // an accepted TCP connection (Accept=yes)
        const int client = own(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_storage sa{};
        socklen_t len = sizeof sa;
        ::getsockname(accept_from, reinterpret_cast<sockaddr*>(&sa), &len);
        ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&sa), len), 0);
        e.fd = own(::accept4(accept_from, nullptr, nullptr, SOCK_CLOEXEC));
        e.family = "inet";
        e.type = "stream";
        e.connected = true;
        e.local = port_of(e.fd, "127.0.0.1");
        e.name = "connection";  // what systemd passes for Accept=yes; names need not be unique
        break;
      }
    }
    ASSERT_GE(e.fd, 0) << "could not make fd " << i << " (kind " << kind << "): " << std::strerror(errno);
    want.push_back(e);
  }

  std::string names;
  for (const expected_fd& e : want) names += (names.empty() ? "" : ":") + e.name;

  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Single-threaded parent: moving fds and setenv are safe here. Every fd the
    // parent made is CLOEXEC, so only 0-2 and the 500 at 3..502 reach exec.
    ::dup2(out[1], 1);
    std::vector<int> high;
    for (const expected_fd& e : want) high.push_back(::fcntl(e.fd, F_DUPFD_CLOEXEC, 2000));
    for (int i = 0; i < count; ++i)
      if (high[static_cast<std::size_t>(i)] < 0 || ::dup2(high[static_cast<std::size_t>(i)], first + i) < 0)
        ::_exit(120);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", std::to_string(count).c_str(), 1);
    ::setenv("LISTEN_FDNAMES", names.c_str(), 1);
    ::execl(self_exe.c_str(), self_exe.c_str(), "--child", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  int status = 0;
  const std::string text = sockact_test::read_to_eof_and_wait(out[0], pid, status);
  const auto wall = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;

  std::istringstream lines(text);
  std::string summary;
  std::getline(lines, summary);
  long long listen_us = -1, describe_us = -1;
  std::size_t got = 0;
  int ec = -1, cloexec_before = -1, env = -1;
  ASSERT_EQ(
      std::sscanf(summary.c_str(), "n=%zu ec=%d cloexec_before=%d env=%d listen_fds_us=%lld describe_us=%lld",
                  &got, &ec, &cloexec_before, &env, &listen_us, &describe_us),
      6)
      << summary;
  EXPECT_EQ(got, static_cast<std::size_t>(count));
  EXPECT_EQ(ec, 0);
  EXPECT_EQ(cloexec_before, 0) << "dup2 clears FD_CLOEXEC: the child must start without it";
  EXPECT_EQ(env, 0) << "listen_fds({true}) unsets the variables";

  std::string line;
  int i = 0;
  while (std::getline(lines, line) && i < count) {
    const expected_fd& e = want[static_cast<std::size_t>(i)];
    std::ostringstream expect;
    expect << first + i << '\t' << e.name << "\t1\t" << e.kind << '\t' << e.family << '\t' << e.type << '\t'
           << (e.listening ? 1 : 0) << '\t' << (e.connected ? 1 : 0) << '\t' << e.local;
    EXPECT_EQ(line, expect.str()) << "fd " << first + i;
    ++i;
  }
  EXPECT_EQ(i, count);

  const double ms = static_cast<double>(listen_us + describe_us) / 1000.0;
  const double wall_ms = std::chrono::duration<double, std::milli>(wall).count();
  std::printf("500 fds: listen_fds %.3f ms, describe_fd x500 %.3f ms, child from fork to exit %.1f ms\n",
              static_cast<double>(listen_us) / 1000.0, static_cast<double>(describe_us) / 1000.0, wall_ms);
  RecordProperty("listen_fds_us", std::to_string(listen_us));
  RecordProperty("describe_us", std::to_string(describe_us));
  EXPECT_LT(ms, 2000.0) << "receiving and describing 500 fds took " << ms << " ms";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child_main();
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return 1;
  self_exe.assign(path, static_cast<std::size_t>(n));
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
