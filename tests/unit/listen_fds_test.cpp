// listen_fds(): results and side effects, in this process, with real fds at 3..
#include <sockact/listen_fds.hpp>

#include <sockact/detail/posix.hpp>
#include <sockact/socket_info.hpp>

#include "listen_fixture.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <string>
#include <vector>

namespace {

using namespace sockact_test;
using sockact::passed_fd;

std::vector<passed_fd> receive(bool unset, std::error_code& ec) {
  return sockact::listen_fds({unset}, ec);
}

class ListenFds : public listen_fixture {};

TEST_F(ListenFds, NotActivatedWithoutListenPid) {
  const owned_fd s = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({s.get()});
  const listen_env env(std::nullopt, "1");
  std::error_code ec = make_error_code(std::errc::io_error);
  EXPECT_TRUE(receive(false, ec).empty());
  EXPECT_FALSE(ec);
  EXPECT_FALSE(has_cloexec(3)) << "nothing is touched when not activated";
}

TEST_F(ListenFds, TakesFdsInOrderWithNames) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const owned_fd b = inet_socket(AF_INET6, SOCK_STREAM);
  const owned_fd c = inet_socket(AF_INET, SOCK_DGRAM);
  const passed_fds passed({a.get(), b.get(), c.get()});
  const listen_env env(listen_env::self(), "3", "web:admin:metrics");
  std::error_code ec;
  const auto fds = receive(false, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(fds.size(), 3u);
  EXPECT_EQ(fds[0].fd, 3);
  EXPECT_EQ(fds[0].name, "web");
  EXPECT_EQ(fds[1].fd, 4);
  EXPECT_EQ(fds[1].name, "admin");
  EXPECT_EQ(fds[2].fd, 5);
  EXPECT_EQ(fds[2].name, "metrics");
  for (int fd = 3; fd <= 5; ++fd) EXPECT_TRUE(has_cloexec(fd)) << fd;
  EXPECT_FALSE(is_open(6));
  EXPECT_TRUE(listen_env::get("LISTEN_FDS")) << "kept when unset_environment is false";
}

TEST_F(ListenFds, NamesDefaultToUnknown) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), a.get()});
  const listen_env env(listen_env::self(), "2");
  std::error_code ec;
  const auto fds = receive(false, ec);
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(fds[0].name, "unknown");
  EXPECT_EQ(fds[1].name, "unknown");
}

TEST_F(ListenFds, EscapedColonAndEmptyNames) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), a.get(), a.get()});
  const listen_env env(listen_env::self(), "3", "a\\:b::");
  std::error_code ec;
  const auto fds = receive(false, ec);
  ASSERT_EQ(fds.size(), 3u) << ec.message();
  EXPECT_EQ(fds[0].name, "a:b");
  EXPECT_EQ(fds[1].name, "");
  EXPECT_EQ(fds[2].name, "");
}

TEST_F(ListenFds, UnsetRemovesAllFourVariables) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  const listen_env env(listen_env::self(), "1", "x");
  ::setenv("LISTEN_PIDFDID", "0", 1);  // cannot match: skipped only where ids are unreadable
  std::error_code ec;
  (void)receive(true, ec);
  EXPECT_FALSE(listen_env::any_set());
}

TEST_F(ListenFds, ForeignPidIsNotActivatedAndTouchesNothing) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  const listen_env env(std::to_string(::getpid() + 100000), "1", "x");
  std::error_code ec;
  EXPECT_TRUE(receive(false, ec).empty());
  EXPECT_FALSE(ec);
  EXPECT_FALSE(has_cloexec(3));
  EXPECT_EQ(listen_env::get("LISTEN_FDS"), std::optional<std::string>("1"));
}

struct bad_case {
  const char* pid;  // "self" = our pid
  const char* fds;
  const char* names;  // nullptr = unset
  int expected_errno;
};

class ListenFdsErrors : public ListenFds, public ::testing::WithParamInterface<bad_case> {};

TEST_P(ListenFdsErrors, ErrnoAndUnsetOnEveryPath) {
  const bad_case& c = GetParam();
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), a.get()});
  const std::string pid = std::string(c.pid) == "self" ? listen_env::self() : c.pid;
  for (const bool unset : {false, true}) {
    const listen_env env(pid, std::string(c.fds),
                         c.names != nullptr ? std::optional<std::string>(c.names) : std::nullopt);
    std::error_code ec;
    EXPECT_TRUE(receive(unset, ec).empty());
    EXPECT_EQ(ec, std::error_code(c.expected_errno, std::generic_category()))
        << "LISTEN_PID=" << pid << " LISTEN_FDS=" << c.fds << " got " << ec.message();
    EXPECT_EQ(listen_env::any_set(), !unset);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Libsystemd, ListenFdsErrors,
    ::testing::Values(bad_case{"abc", "1", nullptr, EINVAL}, bad_case{"", "1", nullptr, EINVAL},
                      bad_case{"0", "1", nullptr, ERANGE}, bad_case{"-5", "1", nullptr, ERANGE},
                      bad_case{"99999999999", "1", nullptr, ERANGE}, bad_case{"self", "0", nullptr, EINVAL},
                      bad_case{"self", "-1", nullptr, EINVAL}, bad_case{"self", "x", nullptr, EINVAL},
                      bad_case{"self", "", nullptr, EINVAL},
                      bad_case{"self", "2147483644", nullptr,
                               EBADF},  // INT_MAX-3: allowed, then fd 5 is closed
                      bad_case{"self", "2147483645", nullptr, EINVAL},
                      bad_case{"self", "99999999999", nullptr, ERANGE},
                      bad_case{"self", "3", nullptr, EBADF},  // fd 5 is closed
                      bad_case{"self", "2", "one", EINVAL}, bad_case{"self", "2", "a:b:c", EINVAL},
                      bad_case{"self", "2", "a:b\\", EINVAL}));

TEST_F(ListenFds, ClosedFdSetsCloexecUpToTheGap) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), -1, a.get()});
  const listen_env env(listen_env::self(), "3");
  std::error_code ec;
  EXPECT_TRUE(receive(false, ec).empty());
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_TRUE(has_cloexec(3));
  EXPECT_FALSE(has_cloexec(5)) << "libsystemd stops at the first failure";
}

TEST_F(ListenFds, NameCountMismatchAfterCloexecAndUnset) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), a.get()});
  const listen_env env(listen_env::self(), "2", "only-one");
  std::error_code ec;
  EXPECT_TRUE(receive(true, ec).empty());
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(has_cloexec(3));
  EXPECT_TRUE(has_cloexec(4));
  EXPECT_FALSE(listen_env::any_set());
}

TEST_F(ListenFds, MalformedNamesFailBeforeAnyFdIsTouched) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  const listen_env env(listen_env::self(), "1", "trailing\\");
  std::error_code ec;
  EXPECT_TRUE(receive(false, ec).empty());
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(has_cloexec(3));
}

TEST_F(ListenFds, CountIgnoresNames) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), a.get()});
  const listen_env env(listen_env::self(), "2", "bad\\");
  std::error_code ec;
  EXPECT_EQ(sockact::listen_fds_count({false}, ec), 2);
  EXPECT_FALSE(ec);
  ::setenv("LISTEN_FDS", "zero", 1);
  EXPECT_EQ(sockact::listen_fds_count({true}, ec), -1);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(listen_env::any_set());
}

TEST_F(ListenFds, PidfdidOfOurselvesIsAccepted) {
  std::uint64_t id = 0;
  if (sockact::detail::pidfd_inode_id(::getpid(), id) < 0)
    GTEST_SKIP() << "this kernel has no pidfs (Linux < 6.9): LISTEN_PIDFDID cannot be checked";
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  {
    const listen_env env(listen_env::self(), "1", std::nullopt, std::to_string(id));
    std::error_code ec;
    EXPECT_EQ(receive(false, ec).size(), 1u) << ec.message();
  }
  {
    const listen_env env(listen_env::self(), "1", std::nullopt, std::to_string(id + 1));
    std::error_code ec;
    EXPECT_TRUE(receive(false, ec).empty());
    EXPECT_FALSE(ec) << "another incarnation of our pid: not for us, not an error";
  }
  {
    const listen_env env(listen_env::self(), "1", std::nullopt, "0x" + std::to_string(id));
    std::error_code ec;
    EXPECT_TRUE(receive(false, ec).empty()) << "hex of the decimal digits is another number";
  }
  {
    const listen_env env(listen_env::self(), "1", std::nullopt, "pidfd");
    std::error_code ec;
    EXPECT_TRUE(receive(true, ec).empty());
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_FALSE(listen_env::any_set());
  }
}

TEST_F(ListenFds, PidfdidIsCheckedOnlyForOurPid) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  const listen_env env(std::to_string(::getpid() + 100000), "1", std::nullopt, "garbage");
  std::error_code ec;
  EXPECT_TRUE(receive(false, ec).empty());
  EXPECT_FALSE(ec) << "libsystemd returns 0 for another pid before reading LISTEN_PIDFDID";
}

TEST_F(ListenFds, AllowAnyTakesAForeignPid) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  const listen_env env("1", "1", "web");
  sockact::listen_options opts;
  opts.unset_environment = false;
  std::error_code ec;
  EXPECT_TRUE(sockact::listen_fds(opts, ec).empty());
  opts.pid_check = sockact::listen_pid_check::allow_any;
  const auto fds = sockact::listen_fds(opts, ec);
  ASSERT_EQ(fds.size(), 1u) << ec.message();
  EXPECT_EQ(fds[0].name, "web");
  EXPECT_EQ(listen_env::get("LISTEN_PID"), std::optional<std::string>("1")) << "kept as it was";
}

TEST_F(ListenFds, AllowParentTakesOnlyTheParent) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get()});
  sockact::listen_options opts;
  opts.pid_check = sockact::listen_pid_check::allow_parent;
  std::error_code ec;
  {
    const listen_env env(std::to_string(::getppid()), "1");
    EXPECT_EQ(sockact::listen_fds(opts, ec).size(), 1u) << ec.message();
  }
  {
    const listen_env env(std::to_string(::getppid() + 100000), "1");
    EXPECT_TRUE(sockact::listen_fds(opts, ec).empty());
    EXPECT_FALSE(ec);
  }
  {
    opts.unset_environment = true;
    const listen_env env(std::to_string(::getppid()), "1");
    EXPECT_EQ(sockact::listen_fds(opts, ec).size(), 1u);
    EXPECT_FALSE(listen_env::any_set());
  }
}

TEST_F(ListenFds, ThrowingOverloadNamesTheVariable) {
  const owned_fd a = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({a.get(), -1});
  struct expectation {
    const char* pid;
    const char* fds;
    const char* names;
    const char* text;
  };
  const std::string self = listen_env::self();
  for (const expectation& e : {expectation{"12ab", "1", nullptr, "LISTEN_PID=\"12ab\""},
                               expectation{"self", "none", nullptr, "LISTEN_FDS=\"none\""},
                               expectation{"self", "2", nullptr, "fd 4 is not open"},
                               expectation{"self", "1", "a:b", "LISTEN_FDNAMES=\"a:b\" has 2 name(s)"},
                               expectation{"self", "1", "x\\", "lone backslash"}}) {
    const listen_env env(std::string(e.pid) == "self" ? self : e.pid, std::string(e.fds),
                         e.names != nullptr ? std::optional<std::string>(e.names) : std::nullopt);
    try {
      (void)sockact::listen_fds({true});
      ADD_FAILURE() << "no exception for " << e.text;
    } catch (const std::system_error& err) {
      EXPECT_NE(std::string(err.what()).find(e.text), std::string::npos) << err.what();
      EXPECT_EQ(err.code().category(), std::generic_category());
    }
    EXPECT_FALSE(listen_env::any_set());
  }
}

TEST_F(ListenFds, FindByName) {
  const std::vector<passed_fd> fds{{3, "web"}, {4, "admin"}, {5, "web"}};
  ASSERT_NE(sockact::find_fd(fds, "admin"), nullptr);
  EXPECT_EQ(sockact::find_fd(fds, "admin")->fd, 4);
  EXPECT_EQ(sockact::find_fd(fds, "web")->fd, 3);
  EXPECT_EQ(sockact::find_fd(fds, "nope"), nullptr);
  const auto web = sockact::fds_named(fds, "web");
  ASSERT_EQ(web.size(), 2u);
  EXPECT_EQ(web[1].fd, 5);
  EXPECT_TRUE(sockact::fds_named(fds, "").empty());
}

}  // namespace
