// SOCKACT_ADOPT's addresses (tools/adopt/address.cpp): every form
// docs/adopting.md documents reads as the bind() it stands for, through the
// library's own grammar; the forms it refuses are refused with the reason.
#include "../../tools/adopt/adopt.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cstddef>
#include <cstring>
#include <string>

namespace {

using sockact_adopt::address;

address parsed(const std::string& s) {
  address a;
  std::string problem;
  EXPECT_TRUE(sockact_adopt::parse_address(s, a, problem)) << s << ": " << problem;
  EXPECT_EQ(problem, "") << s;
  return a;
}

std::string refused(const std::string& s) {
  address a;
  std::string problem;
  EXPECT_FALSE(sockact_adopt::parse_address(s, a, problem)) << s << " was taken";
  EXPECT_NE(problem, "") << s << ": refused without a reason";
  return problem;
}

// What a program's bind() to HOST:PORT reads as.
address bound_inet(int family, const char* host, std::uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET, host, &in.sin_addr), 1) << host;
    len = sizeof in;
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET6, host, &in6.sin6_addr), 1) << host;
    len = sizeof in6;
  }
  address a;
  EXPECT_TRUE(sockact_adopt::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len, a));
  return a;
}

// What a program's bind() to a unix path or an abstract name (with '@') reads as.
address bound_unix(const std::string& s) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, s.data(), s.size());
  if (s[0] == '@') un.sun_path[0] = '\0';
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.size() + (s[0] == '@' ? 0 : 1));
  address a;
  EXPECT_TRUE(sockact_adopt::from_sockaddr(reinterpret_cast<const sockaddr*>(&un), len, a));
  return a;
}

TEST(AdoptAddress, Ipv4IsTheBindToIt) {
  const address a = parsed("127.0.0.1:8080");
  EXPECT_EQ(a.family, AF_INET);
  EXPECT_EQ(a.port, 8080);
  EXPECT_FALSE(a.any_host);
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET, "127.0.0.1", 8080)));
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET6, "::ffff:127.0.0.1", 8080)));
  EXPECT_FALSE(sockact_adopt::same_address(a, bound_inet(AF_INET, "127.0.0.2", 8080)));
  EXPECT_FALSE(sockact_adopt::same_address(a, bound_inet(AF_INET, "127.0.0.1", 8081)));
  EXPECT_TRUE(parsed("1.2.3.4:1").port == 1 && parsed("1.2.3.4:65535").port == 65535);
}

TEST(AdoptAddress, AnyIpv4IsAnyIpv6) {
  const address a = parsed("0.0.0.0:3000");
  EXPECT_TRUE(a.any_ip());
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET6, "::", 3000)));
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET6, "::ffff:0.0.0.0", 3000)));
}

TEST(AdoptAddress, Ipv6IsTheBindToIt) {
  const address a = parsed("[::1]:80");
  EXPECT_EQ(a.family, AF_INET6);
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET6, "::1", 80)));
  EXPECT_FALSE(sockact_adopt::same_address(a, bound_inet(AF_INET, "127.0.0.1", 80)));
  const address any = parsed("[::]:3000");  // docs/adopting.md's example
  EXPECT_TRUE(any.any_ip());
  EXPECT_TRUE(sockact_adopt::same_address(any, bound_inet(AF_INET, "0.0.0.0", 3000)));
  EXPECT_TRUE(
      sockact_adopt::same_address(parsed("[::ffff:10.0.0.1]:80"), bound_inet(AF_INET, "10.0.0.1", 80)));
}

TEST(AdoptAddress, StarIsAnyHostOfThatPort) {
  const address a = parsed("*:80");
  EXPECT_TRUE(a.any_host);
  EXPECT_TRUE(a.is_inet());
  EXPECT_EQ(a.port, 80);
  EXPECT_TRUE(parsed("*:65535").any_host);
}

TEST(AdoptAddress, PortAloneIsTheLibrarysAnyIpv4) {
  const address a = parsed("8080");  // as in parse_endpoints(): 0.0.0.0:8080
  EXPECT_FALSE(a.any_host);
  EXPECT_TRUE(a.any_ip());
  EXPECT_TRUE(sockact_adopt::same_address(a, bound_inet(AF_INET, "0.0.0.0", 8080)));
  EXPECT_FALSE(sockact_adopt::same_address(a, bound_inet(AF_INET, "127.0.0.1", 8080)));
}

TEST(AdoptAddress, UnixPathAndAbstractNameAreTheBindToThem) {
  const std::string longest_path = "/" + std::string(106, 'p'), longest_name = "@" + std::string(107, 'a');
  for (const std::string& s : {std::string("/run/app.sock"), std::string("@app"), std::string("./app.sock"),
                               longest_path, longest_name}) {
    const address a = parsed(s);
    EXPECT_TRUE(a.is_unix()) << s;
    EXPECT_EQ(a.path_len, s.size()) << s;
    EXPECT_TRUE(sockact_adopt::same_address(a, bound_unix(s))) << s;
  }
  EXPECT_EQ(parsed("@app").path[0], '\0');
  EXPECT_FALSE(sockact_adopt::same_address(parsed("@app"), bound_unix("/app")));
  EXPECT_FALSE(sockact_adopt::same_address(parsed("/run/app.sock"), bound_unix("/run/app.sock2")));
}

TEST(AdoptAddress, RefusedWithTheReason) {
  EXPECT_EQ(refused(""), "is empty");
  EXPECT_EQ(refused("*:"), "port \"\" is not a number from 0 to 65535");
  EXPECT_EQ(refused("*:65536"), "port \"65536\" is not a number from 0 to 65535");
  EXPECT_EQ(refused("*:x80"), "port \"x80\" is not a number from 0 to 65535");
  EXPECT_EQ(refused("1.2.3.4:65536"), "port \"65536\" is not a number from 0 to 65535");
  EXPECT_EQ(refused("1.2.3.4:"), "port \"\" is not a number from 0 to 65535");
  EXPECT_EQ(refused("localhost:80"), "\"localhost\" is not an IPv4 address");
  EXPECT_EQ(refused("[::1]"), "expected [IPv6]:PORT");
  EXPECT_EQ(refused("[nope]:80"), "\"nope\" is not an IPv6 address");
  EXPECT_EQ(refused("::1:80"), "an IPv6 address needs brackets: [ADDRESS]:PORT");
  EXPECT_EQ(refused("@"), "abstract socket name must be 1..107 bytes");
  EXPECT_EQ(refused("@" + std::string(108, 'a')), "abstract socket name must be 1..107 bytes");
  EXPECT_EQ(refused("/" + std::string(107, 'p')), "unix socket path is 108 bytes, the limit is 107");
  for (const char* s : {"sd-listen", "sd-listen:*", "sd-listen:web"})
    EXPECT_EQ(refused(s), "names passed sockets, not an address a program binds") << s;
  for (const char* s : {"*:0", "0", "1.2.3.4:0", "[::1]:0"})
    EXPECT_EQ(refused(s), "port 0 asks for any free port, as clients do: give the port the program binds")
        << s;
}

}  // namespace
