// One program, two flavours: this file uses Boost.Asio, mixed_flavours_standalone.cpp
// standalone asio. Each flavour's names sit in their own inline namespace.
// SPDX-License-Identifier: MIT
#define SOCKACT_ASIO_BOOST 1
#include <sockact/asio.hpp>

#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

bool standalone_adopts(int fd, std::string& why);  // mixed_flavours_standalone.cpp

namespace {
bool boost_adopts(int fd, std::string& why) {
  boost::asio::io_context io;
  std::error_code ec;
  sockact::unique_fd owner(fd);  // the socket on success; still ours on error
  {
    const boost::asio::ip::udp::socket wrong =
        sockact::adopt<boost::asio::ip::udp::socket>(io, std::move(owner), ec, &why);
    if (ec != sockact::errc::wrong_family) return false;
  }
  boost::asio::local::stream_protocol::socket s =
      sockact::adopt<boost::asio::local::stream_protocol::socket>(io, std::move(owner), ec, &why);
  if (ec) owner.release();  // the caller keeps it
  return !ec && s.is_open();
}
}  // namespace

int main() {
  int a[2], b[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0) return 1;
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) < 0) return 1;
  std::string why;
  if (!boost_adopts(a[0], why)) return std::printf("FAIL boost: %s\n", why.c_str()), 1;
  if (!standalone_adopts(b[0], why)) return std::printf("FAIL standalone: %s\n", why.c_str()), 1;
  ::close(a[1]);
  ::close(b[1]);
  std::printf("ok\n");
  return 0;
}
