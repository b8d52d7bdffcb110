// diagnose(): one status per way receiving ends, with messages naming the
// variables and values; it never changes the environment or the fds.
#include <sockact/diagnose.hpp>

#include "listen_fixture.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace {

using namespace sockact_test;
using sockact::activation_status;

class Diagnose : public listen_fixture {
 protected:
  static bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  }
};

TEST_F(Diagnose, NotActivated) {
  const sockact::diagnosis d = sockact::diagnose();
  EXPECT_EQ(d.status, activation_status::not_activated);
  EXPECT_FALSE(d.error);
  EXPECT_FALSE(d.activated());
  EXPECT_TRUE(contains(d.summary, "LISTEN_PID and LISTEN_FDS are not set"));
}

TEST_F(Diagnose, ForeignPidSaysWhichAndHints) {
  const owned_fd s = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({s.get()});
  {
    const listen_env env("1", "1");
    const sockact::diagnosis d = sockact::diagnose();
    EXPECT_EQ(d.status, activation_status::foreign_pid);
    EXPECT_FALSE(d.error) << "libsystemd returns 0 here, not an error";
    EXPECT_TRUE(contains(d.summary, "LISTEN_PID=\"1\"")) << d.summary;
    EXPECT_TRUE(contains(d.summary, "this is process " + std::to_string(::getpid()))) << d.summary;
    EXPECT_TRUE(contains(d.hint, "podman run --init")) << d.hint;
    EXPECT_FALSE(has_cloexec(3)) << "diagnose changes nothing";
  }
  {
    const listen_env env(std::to_string(::getppid()), "1");
    const sockact::diagnosis d = sockact::diagnose();
    EXPECT_EQ(d.status, activation_status::foreign_pid);
    EXPECT_TRUE(contains(d.hint, "our parent")) << d.hint;
    sockact::listen_options opts;
    opts.pid_check = sockact::listen_pid_check::allow_parent;
    EXPECT_EQ(sockact::diagnose(opts).status, activation_status::activated);
  }
}

// npm start, or a script that calls another without exec: the manager's pid
// is two generations up. The hint says so, and what to put in the unit.
TEST_F(Diagnose, ForeignPidTwoGenerationsUpNamesTheWrapper) {
  const owned_fd s = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({s.get()});
  const pid_t grandparent_of_child = ::getppid();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const listen_env env(std::to_string(grandparent_of_child), "1");
    const sockact::diagnosis d = sockact::diagnose();
    const bool named = d.status == activation_status::foreign_pid &&
                       contains(d.hint, "ancestor, 2 generations up") && contains(d.hint, "npm");
    std::fprintf(stderr, "%s\n", d.hint.c_str());
    ::_exit(named ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the hint does not name the wrapper";
  // A pid that is no ancestor keeps the general hint.
  const pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(other, &status, 0), other);  // gone, and not in our chain
  const listen_env env(std::to_string(other), "1");
  const sockact::diagnosis d = sockact::diagnose();
  EXPECT_EQ(d.status, activation_status::foreign_pid);
  EXPECT_TRUE(contains(d.hint, "inherited from an ancestor")) << d.hint;
}

TEST_F(Diagnose, EachMalformedVariable) {
  const owned_fd s = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({s.get(), s.get()});
  const std::string self = listen_env::self();
  struct expectation {
    std::optional<std::string> pid, fds, names;
    activation_status status;
    int err;
    const char* text;
  };
  const expectation cases[] = {
      {std::nullopt, std::string("2"), std::nullopt, activation_status::listen_pid_missing, 0,
       "LISTEN_FDS=\"2\""},
      {self, std::nullopt, std::nullopt, activation_status::listen_fds_missing, 0, "LISTEN_FDS is not set"},
      {std::string("x1"), std::string("2"), std::nullopt, activation_status::invalid_listen_pid, EINVAL,
       "LISTEN_PID=\"x1\""},
      {std::string("-1"), std::string("2"), std::nullopt, activation_status::invalid_listen_pid, ERANGE,
       "LISTEN_PID=\"-1\""},
      {self, std::string("0"), std::nullopt, activation_status::invalid_listen_fds, EINVAL,
       "LISTEN_FDS=\"0\""},
      {self, std::string("9999999999"), std::nullopt, activation_status::invalid_listen_fds, ERANGE,
       "LISTEN_FDS=\"9999999999\""},
      {self, std::string("3"), std::nullopt, activation_status::closed_fd, EBADF, "fd 5 is not open"},
      {self, std::string("2"), std::string("a"), activation_status::names_mismatch, EINVAL, "has 1 name(s)"},
      {self, std::string("2"), std::string("a:\\"), activation_status::invalid_listen_fdnames, EINVAL,
       "lone backslash"},
  };
  for (const expectation& e : cases) {
    const listen_env env(e.pid, e.fds, e.names);
    const sockact::diagnosis d = sockact::diagnose();
    EXPECT_EQ(d.status, e.status) << sockact::status_name(d.status) << ": " << d.summary;
    EXPECT_EQ(d.error.value(), e.err) << d.summary;
    EXPECT_TRUE(contains(d.summary, e.text)) << d.summary;
    // What diagnose() predicts is what listen_fds() then does.
    std::error_code ec;
    (void)sockact::listen_fds({false}, ec);
    EXPECT_EQ(ec.value(), e.err) << d.summary;
  }
}

TEST_F(Diagnose, WarnsAboutNonSocketsAndBlockingListeners) {
  const owned_fd blocking = inet_socket(AF_INET, SOCK_STREAM);
  const owned_fd nonblocking = inet_socket(AF_INET6, SOCK_STREAM);
  ASSERT_EQ(::fcntl(nonblocking.get(), F_SETFL, O_NONBLOCK), 0);
  const owned_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const passed_fds passed({blocking.get(), nonblocking.get(), null.get()});
  const listen_env env(listen_env::self(), "3", "web:admin:dev");
  const sockact::diagnosis d = sockact::diagnose();
  EXPECT_EQ(d.status, activation_status::activated);
  EXPECT_TRUE(d.has_warnings());
  ASSERT_EQ(d.fds.size(), 3u);
  EXPECT_EQ(d.fds[0].name, "web");
  ASSERT_EQ(d.fds[0].warnings.size(), 1u);
  EXPECT_TRUE(contains(d.fds[0].warnings[0], "blocking listening socket"));
  EXPECT_TRUE(d.fds[1].warnings.empty());
  ASSERT_EQ(d.fds[2].warnings.size(), 1u);
  EXPECT_TRUE(contains(d.fds[2].warnings[0], "not a socket but a character device"));
  const std::string text = d.to_string();
  EXPECT_TRUE(contains(text, "fd 4: inet6 stream tcp listening [::1]:")) << text;
  EXPECT_TRUE(contains(text, "name=\"admin\"")) << text;
}

TEST_F(Diagnose, FromASnapshot) {
  sockact::activation_environment env;
  env.listen_pid = "1";
  env.listen_fds = "1";
  EXPECT_EQ(sockact::diagnose(env).status, activation_status::foreign_pid);
  EXPECT_FALSE(listen_env::any_set()) << "a snapshot does not touch the environment";
}

}  // namespace
