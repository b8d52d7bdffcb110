// The sd_is_* family and describe_fd() on real fds of every kind.
#include <sockact/socket_info.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <string>

namespace {

using namespace sockact_test;
using sockact::socket_state;

std::string temp_dir() {
  char tmpl[] = "/tmp/sockact-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (d == nullptr) throw std::runtime_error("mkdtemp");
  return d;
}

TEST(IsSocket, FamilyTypeAndListening) {
  const owned_fd tcp = inet_socket(AF_INET6, SOCK_STREAM);
  std::error_code ec;
  EXPECT_TRUE(sockact::is_socket(tcp.get(), 0, 0, socket_state::any, ec));
  EXPECT_TRUE(sockact::is_socket(tcp.get(), AF_INET6, SOCK_STREAM, socket_state::listening, ec));
  EXPECT_FALSE(sockact::is_socket(tcp.get(), AF_INET, 0, socket_state::any, ec));
  EXPECT_FALSE(sockact::is_socket(tcp.get(), 0, SOCK_DGRAM, socket_state::any, ec));
  EXPECT_FALSE(sockact::is_socket(tcp.get(), 0, 0, socket_state::not_listening, ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(sockact::is_socket(-1, 0, 0, socket_state::any, ec));
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_FALSE(sockact::is_socket(tcp.get(), -1, 0, socket_state::any, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_THROW(sockact::is_socket(-1), std::system_error);
}

TEST(IsSocketInet, PortAndFamily) {
  const owned_fd udp = inet_socket(AF_INET, SOCK_DGRAM);
  const auto port = static_cast<std::uint16_t>(local_port(udp.get()));
  std::error_code ec;
  EXPECT_TRUE(sockact::is_socket_inet(udp.get(), AF_INET, SOCK_DGRAM, socket_state::any, port, ec));
  EXPECT_FALSE(sockact::is_socket_inet(udp.get(), AF_INET, SOCK_DGRAM, socket_state::any,
                                       static_cast<std::uint16_t>(port + 1), ec));
  EXPECT_FALSE(sockact::is_socket_inet(udp.get(), AF_INET6, 0, socket_state::any, 0, ec));
  EXPECT_FALSE(sockact::is_socket_inet(udp.get(), AF_UNIX, 0, socket_state::any, 0, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
}

TEST(IsSocketSockaddr, AddressAndPort) {
  const owned_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  sockaddr_in want{};
  want.sin_family = AF_INET;
  want.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::error_code ec;
  const auto* sa = reinterpret_cast<const sockaddr*>(&want);
  EXPECT_TRUE(
      sockact::is_socket_sockaddr(tcp.get(), SOCK_STREAM, sa, sizeof want, socket_state::listening, ec));
  want.sin_port = htons(static_cast<std::uint16_t>(local_port(tcp.get())));
  EXPECT_TRUE(sockact::is_socket_sockaddr(tcp.get(), 0, sa, sizeof want, socket_state::any, ec));
  want.sin_addr.s_addr = htonl(0x7f000002);
  EXPECT_FALSE(sockact::is_socket_sockaddr(tcp.get(), 0, sa, sizeof want, socket_state::any, ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(sockact::is_socket_sockaddr(tcp.get(), 0, sa, 1, socket_state::any, ec));
  EXPECT_EQ(ec, std::errc::no_buffer_space);
  want.sin_family = AF_UNIX;
  EXPECT_FALSE(sockact::is_socket_sockaddr(tcp.get(), 0, sa, sizeof want, socket_state::any, ec));
  EXPECT_EQ(ec, std::error_code(EPFNOSUPPORT, std::generic_category()));
}

TEST(IsSocketUnix, PathAbstractAndUnnamed) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/s.sock";
  const owned_fd named = unix_socket(path);
  const std::string abstract_name = "@sockact-test-" + std::to_string(::getpid());
  const owned_fd abstract = unix_socket(abstract_name);
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const owned_fd p0(pair[0]), p1(pair[1]);
  std::error_code ec;
  EXPECT_TRUE(
      sockact::is_socket_unix(named.get(), SOCK_STREAM, socket_state::listening, path.c_str(), 0, ec));
  EXPECT_FALSE(sockact::is_socket_unix(named.get(), 0, socket_state::any, (path + "x").c_str(), 0, ec));
  std::string raw = abstract_name;
  raw[0] = '\0';
  EXPECT_TRUE(sockact::is_socket_unix(abstract.get(), 0, socket_state::any, raw.data(), raw.size(), ec));
  EXPECT_FALSE(sockact::is_socket_unix(abstract.get(), 0, socket_state::any, raw.data(), raw.size() - 1, ec))
      << "abstract names compare at exact length";
  EXPECT_TRUE(sockact::is_socket_unix(p0.get(), 0, socket_state::not_listening, "", 0, ec)) << "unnamed";
  EXPECT_FALSE(sockact::is_socket_unix(named.get(), 0, socket_state::any, "", 0, ec));
  EXPECT_FALSE(ec);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(IsFifoSpecialMq, FileKinds) {
  const std::string dir = temp_dir();
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const owned_fd f(::open(fifo.c_str(), O_RDWR | O_CLOEXEC));
  const owned_fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  std::error_code ec;
  EXPECT_TRUE(sockact::is_fifo(f.get(), nullptr, ec));
  EXPECT_TRUE(sockact::is_fifo(f.get(), fifo.c_str(), ec));
  EXPECT_FALSE(sockact::is_fifo(f.get(), "/nonexistent/x", ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(sockact::is_fifo(null.get(), nullptr, ec));
  EXPECT_TRUE(sockact::is_special(null.get(), "/dev/null", ec));
  EXPECT_FALSE(sockact::is_special(null.get(), "/dev/zero", ec));
  EXPECT_FALSE(sockact::is_special(f.get(), nullptr, ec));
  EXPECT_FALSE(sockact::is_mq(null.get(), nullptr, ec));
  EXPECT_FALSE(ec);

  const std::string mq_name = "/sockact-test-" + std::to_string(::getpid());
  mq_attr attr{};
  attr.mq_maxmsg = 1;
  attr.mq_msgsize = 16;
  const mqd_t q = ::mq_open(mq_name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600, &attr);
  if (q != static_cast<mqd_t>(-1)) {
    EXPECT_TRUE(sockact::is_mq(q, nullptr, ec));
    if (::access("/dev/mqueue", F_OK) == 0) {
      EXPECT_TRUE(sockact::is_mq(q, mq_name.c_str(), ec)) << ec.message();
    }
    EXPECT_FALSE(sockact::is_mq(q, "relative", ec));
    EXPECT_EQ(ec, std::errc::invalid_argument);
    std::error_code ec2;
    EXPECT_EQ(sockact::describe_fd(q, ec2).kind, sockact::fd_kind::message_queue);
    ::mq_close(q);
    ::mq_unlink(mq_name.c_str());
  }
  EXPECT_FALSE(sockact::is_mq(1000000, nullptr, ec));
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}

TEST(DescribeFd, InetSockets) {
  const owned_fd tcp6 = inet_socket(AF_INET6, SOCK_STREAM);
  const sockact::fd_info i = sockact::describe_fd(tcp6.get());
  EXPECT_EQ(i.kind, sockact::fd_kind::socket);
  EXPECT_EQ(i.family, AF_INET6);
  EXPECT_EQ(i.type, SOCK_STREAM);
  EXPECT_EQ(i.protocol, IPPROTO_TCP);
  EXPECT_TRUE(i.listening);
  EXPECT_FALSE(i.connected);
  EXPECT_FALSE(i.nonblocking);
  EXPECT_TRUE(i.cloexec);
  EXPECT_EQ(i.local_address, "[::1]:" + std::to_string(local_port(tcp6.get())));
  EXPECT_EQ(i.to_string(), "fd " + std::to_string(tcp6.get()) + ": inet6 stream tcp listening [::1]:" +
                               std::to_string(local_port(tcp6.get())) + " blocking");

  const owned_fd udp = inet_socket(AF_INET, SOCK_DGRAM);
  ASSERT_EQ(::fcntl(udp.get(), F_SETFL, O_NONBLOCK), 0);
  const sockact::fd_info u = sockact::describe_fd(udp.get());
  EXPECT_EQ(u.protocol, IPPROTO_UDP);
  EXPECT_TRUE(u.nonblocking);
  EXPECT_FALSE(u.listening);
  EXPECT_NE(u.to_string().find("inet datagram udp 127.0.0.1:"), std::string::npos) << u.to_string();
}

TEST(DescribeFd, ConnectedUnixAndAbstract) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  const owned_fd p0(pair[0]), p1(pair[1]);
  const sockact::fd_info i = sockact::describe_fd(p0.get());
  EXPECT_EQ(i.family, AF_UNIX);
  EXPECT_EQ(i.type, SOCK_SEQPACKET);
  EXPECT_TRUE(i.connected);
  EXPECT_EQ(i.local_address, "");
  EXPECT_NE(i.to_string().find("unix seqpacket connected (unnamed) peer (unnamed)"), std::string::npos)
      << i.to_string();

  const owned_fd abs = unix_socket("@sockact\x01test");
  EXPECT_EQ(sockact::describe_fd(abs.get()).local_address, "@sockact\\x01test");
}

TEST(DescribeFd, ClosedAndNonSockets) {
  std::error_code ec;
  (void)sockact::describe_fd(1000000, ec);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  (void)sockact::describe_fd(-3, ec);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_THROW(sockact::describe_fd(-3), std::system_error);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const owned_fd r(p[0]), w(p[1]);
  EXPECT_EQ(sockact::describe_fd(r.get()).kind, sockact::fd_kind::fifo);
  EXPECT_EQ(sockact::describe_fd(r.get()).to_string(), "fd " + std::to_string(r.get()) + ": fifo blocking");
  const owned_fd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_EQ(sockact::describe_fd(dir.get()).kind, sockact::fd_kind::directory);
}

TEST(AddressToString, Forms) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(80);
  in6.sin6_scope_id = 2;
  ASSERT_EQ(::inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
  EXPECT_EQ(sockact::address_to_string(reinterpret_cast<sockaddr*>(&in6), sizeof in6), "[fe80::1%2]:80");
  EXPECT_EQ(sockact::address_to_string(reinterpret_cast<sockaddr*>(&in6), 1), "");
  EXPECT_EQ(sockact::family_name(AF_INET), "inet");
  EXPECT_EQ(sockact::family_name(12345), "family 12345");
  EXPECT_EQ(sockact::type_name(SOCK_SEQPACKET), "seqpacket");
}

}  // namespace
