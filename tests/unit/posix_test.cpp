// The POSIX helpers: O_NONBLOCK, accept classification, unique_fd.
#include <sockact/posix.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>

namespace {

using namespace sockact_test;

TEST(SetNonblocking, OnOffAndErrors) {
  const owned_fd s = inet_socket(AF_INET, SOCK_STREAM);
  std::error_code ec;
  EXPECT_TRUE(sockact::set_nonblocking(s.get(), true, ec));
  EXPECT_NE(::fcntl(s.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_TRUE(sockact::set_nonblocking(s.get(), false, ec));
  EXPECT_EQ(::fcntl(s.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_FALSE(sockact::set_nonblocking(-1, true, ec));
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_THROW(sockact::set_nonblocking(-1), std::system_error);
}

TEST(AcceptConnection, Outcomes) {
  const owned_fd l = inet_socket(AF_INET, SOCK_STREAM);
  sockact::set_nonblocking(l.get());
  EXPECT_EQ(sockact::accept_connection(l.get()).status, sockact::accept_status::would_block);

  const owned_fd client(connect_loopback(local_port(l.get())));
  ASSERT_GE(client.get(), 0) << "connecting to the listener";
  sockact::accept_result r = sockact::accept_connection(l.get());
  ASSERT_EQ(r.status, sockact::accept_status::accepted);
  EXPECT_TRUE(has_cloexec(r.fd.get()));
  EXPECT_NE(::fcntl(r.fd.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_FALSE(r.error);

  const owned_fd udp = inet_socket(AF_INET, SOCK_DGRAM);
  r = sockact::accept_connection(udp.get());
  EXPECT_EQ(r.status, sockact::accept_status::error);
  EXPECT_EQ(r.error, std::errc::operation_not_supported);
  EXPECT_EQ(sockact::accept_connection(-1).status, sockact::accept_status::error);
}

TEST(AcceptConnection, ClassifiesErrnoAsAccept2Says) {
  using sockact::accept_status;
  using sockact::detail::classify_accept_errno;
  for (const int e : {ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                      ENETUNREACH, ETIMEDOUT, ECONNRESET, EPERM})
    EXPECT_EQ(classify_accept_errno(e), accept_status::retry) << e;
  for (const int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM})
    EXPECT_EQ(classify_accept_errno(e), accept_status::fd_limit);
  EXPECT_EQ(classify_accept_errno(EAGAIN), accept_status::would_block);
  for (const int e : {EBADF, ENOTSOCK, EINVAL, EFAULT})
    EXPECT_EQ(classify_accept_errno(e), accept_status::error);
}

TEST(AcceptConnection, EmfileIsReportedAsFdLimit) {
  const owned_fd l = inet_socket(AF_INET, SOCK_STREAM);
  const owned_fd client(connect_loopback(local_port(l.get())));
  ASSERT_GE(client.get(), 0) << "connecting to the listener";
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(l.get() < client.get() ? client.get() : l.get()) + 1;  // no fd left
  std::vector<int> fill;  // use up any gaps below the limit (raw fds: owned_fd would move them)
  for (;;) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    if (static_cast<rlim_t>(fd) >= tight.rlim_cur) {
      ::close(fd);
      break;
    }
    fill.push_back(fd);
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  const sockact::accept_result r = sockact::accept_connection(l.get());
  ::setrlimit(RLIMIT_NOFILE, &old);
  for (const int fd : fill) ::close(fd);
  EXPECT_EQ(r.status, sockact::accept_status::fd_limit);
  EXPECT_EQ(r.error, std::errc::too_many_files_open);
  EXPECT_EQ(sockact::accept_connection(l.get()).status, sockact::accept_status::accepted) << "still queued";
}

TEST(UniqueFd, ClosesExactlyOnce) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    sockact::unique_fd a(raw);
    sockact::unique_fd b(std::move(a));
    EXPECT_EQ(a.get(), -1);
    EXPECT_EQ(b.get(), raw);
    sockact::unique_fd c;
    c = std::move(b);
    EXPECT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
  raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    sockact::unique_fd d(raw);
    EXPECT_EQ(d.release(), raw);
  }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

}  // namespace
