// notify() to a real datagram socket standing in for the manager's; the
// libsystemd build of these tests sends through sd_pid_notify_with_fds().
#include <sockact/notify.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <string>

namespace {

using namespace sockact_test;
using sockact::notify_state;

class Notify : public ::testing::Test {
 protected:
  void SetUp() override {
    receiver_ = owned_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    name_ = "sockact-notify-test-" + std::to_string(::getpid());
    std::memcpy(a.sun_path + 1, name_.data(), name_.size());
    ASSERT_EQ(::bind(receiver_.get(), reinterpret_cast<sockaddr*>(&a),
                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size())),
              0);
    ::setenv("NOTIFY_SOCKET", ("@" + name_).c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  // One message, and any fds that came with it.
  std::string receive(std::vector<owned_fd>* fds = nullptr) {
    char buf[4096];
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * 8)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(receiver_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return "(nothing)";
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (fds != nullptr)
          fds->emplace_back(fd);
        else
          ::close(fd);
      }
    }
    return std::string(buf, static_cast<std::size_t>(n));
  }
  owned_fd receiver_;
  std::string name_;
};

TEST_F(Notify, SendsTheStates) {
  std::error_code ec;
  EXPECT_TRUE(sockact::notify(notify_state::ready, ec));
  EXPECT_EQ(receive(), "READY=1");
  EXPECT_TRUE(sockact::notify(notify_state::stopping, ec));
  EXPECT_EQ(receive(), "STOPPING=1");
  EXPECT_TRUE(sockact::notify(notify_state::status("serving 2 sockets"), ec));
  EXPECT_EQ(receive(), "STATUS=serving 2 sockets");
  EXPECT_TRUE(sockact::notify(notify_state::watchdog, ec));
  EXPECT_EQ(receive(), "WATCHDOG=1");
  EXPECT_TRUE(sockact::notify(notify_state::mainpid(1234), ec));
  EXPECT_EQ(receive(), "MAINPID=1234");
  EXPECT_TRUE(sockact::notify(notify_state::extend_timeout(std::chrono::seconds(5)), ec));
  EXPECT_EQ(receive(), "EXTEND_TIMEOUT_USEC=5000000");
  EXPECT_TRUE(sockact::notify(std::string_view("A=1\0B=2", 7), ec)) << "stops at a NUL, like a C string";
  EXPECT_EQ(receive(), "A=1");
  EXPECT_FALSE(ec);
  EXPECT_TRUE(sockact::notify("READY=1"));
  EXPECT_EQ(receive(), "READY=1");
}

TEST_F(Notify, FdStorePassesTheFd) {
  const owned_fd l = inet_socket(AF_INET, SOCK_STREAM);
  std::error_code ec;
  const int fd = l.get();
  ASSERT_TRUE(sockact::notify(notify_state::fd_store("web"), &fd, 1, {}, ec)) << ec.message();
  std::vector<owned_fd> got;
  EXPECT_EQ(receive(&got), "FDSTORE=1\nFDNAME=web");
  ASSERT_EQ(got.size(), 1u);
  struct stat a {
  }, b{};
  ASSERT_EQ(::fstat(l.get(), &a), 0);
  ASSERT_EQ(::fstat(got[0].get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE(is_open(l.get())) << "the sender keeps its copy";
}

#if SOCKACT_HAS_EXCEPTIONS
TEST_F(Notify, ThrowingFormSendsAndThrows) {
  EXPECT_TRUE(sockact::notify(notify_state::ready));
  EXPECT_EQ(receive(), "READY=1");
  EXPECT_TRUE(sockact::notify(notify_state::stopping));
  EXPECT_EQ(receive(), "STOPPING=1");
  EXPECT_TRUE(sockact::notify(notify_state::status("draining")));
  EXPECT_EQ(receive(), "STATUS=draining");
  EXPECT_TRUE(sockact::notify(notify_state::watchdog));
  EXPECT_EQ(receive(), "WATCHDOG=1");
  EXPECT_TRUE(sockact::notify(notify_state::mainpid(77)));
  EXPECT_EQ(receive(), "MAINPID=77");
  EXPECT_TRUE(sockact::notify(notify_state::extend_timeout(std::chrono::milliseconds(1))));
  EXPECT_EQ(receive(), "EXTEND_TIMEOUT_USEC=1000");
  EXPECT_TRUE(sockact::notify(notify_state::ready + notify_state::status("up") + notify_state::mainpid(7)));
  EXPECT_EQ(receive(), "READY=1\nSTATUS=up\nMAINPID=7");
  EXPECT_TRUE(sockact::notify(notify_state("X_CUSTOM=1") + notify_state::watchdog));
  EXPECT_EQ(receive(), "X_CUSTOM=1\nWATCHDOG=1");
  ::setenv("NOTIFY_SOCKET", "/nonexistent/sockact/notify", 1);
  EXPECT_THROW(sockact::notify(notify_state::ready), std::system_error);
  try {
    sockact::notify(notify_state::fd_store("x"));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("NOTIFY_SOCKET=\"/nonexistent/sockact/notify\""), std::string::npos);
  }
}
#endif

TEST_F(Notify, NoSocketIsNotAnError) {
  ::unsetenv("NOTIFY_SOCKET");
  std::error_code ec;
  EXPECT_FALSE(sockact::notify(notify_state::ready, ec));
  EXPECT_FALSE(ec);
}

TEST_F(Notify, UnsetEnvironmentOnSuccessAndFailure) {
  std::error_code ec;
  sockact::notify_options o;
  o.unset_environment = true;
  EXPECT_TRUE(sockact::notify("READY=1", nullptr, 0, o, ec));
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(sockact::notify("READY=1", nullptr, 0, o, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument) << "as libsystemd 252";
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
}

TEST_F(Notify, Errors) {
  std::error_code ec;
  ::setenv("NOTIFY_SOCKET", "/nonexistent/sockact/notify", 1);
  EXPECT_FALSE(sockact::notify(notify_state::ready, ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
  try {
    sockact::notify("READY=1");
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("NOTIFY_SOCKET=\"/nonexistent/sockact/notify\""), std::string::npos);
  }
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(120, 'x')).c_str(), 1);
  EXPECT_FALSE(sockact::notify(notify_state::ready, ec));
  EXPECT_EQ(ec, std::errc::filename_too_long);
  ::setenv("NOTIFY_SOCKET", "@", 1);
  EXPECT_FALSE(sockact::notify(notify_state::ready, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  ::setenv("NOTIFY_SOCKET", "vsock::5", 1);  // no CID
  EXPECT_FALSE(sockact::notify(notify_state::ready, ec));
  EXPECT_TRUE(ec);
}

TEST_F(Notify, WatchdogEnabled) {
  std::error_code ec;
  EXPECT_FALSE(sockact::watchdog_enabled(false, ec));
  EXPECT_FALSE(ec);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  auto w = sockact::watchdog_enabled(false, ec);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->count(), 2000000);
  ::setenv("WATCHDOG_PID", "1", 1);
  EXPECT_FALSE(sockact::watchdog_enabled(false, ec)) << "for another process";
  EXPECT_FALSE(ec);
  ::setenv("WATCHDOG_PID", listen_env::self().c_str(), 1);
  EXPECT_TRUE(sockact::watchdog_enabled(true, ec));
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
  for (const char* bad : {"0", "18446744073709551615", "x", "-1"}) {
    ::setenv("WATCHDOG_USEC", bad, 1);
    EXPECT_FALSE(sockact::watchdog_enabled(false, ec)) << bad;
    EXPECT_TRUE(ec) << bad;
  }
  EXPECT_THROW(sockact::watchdog_enabled(), std::system_error);
}

}  // namespace
