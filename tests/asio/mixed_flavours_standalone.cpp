// The standalone asio half of the mixed-flavour program (see mixed_flavours_boost.cpp).
// SPDX-License-Identifier: MIT
#define SOCKACT_ASIO_STANDALONE 1
#include <sockact/asio.hpp>

#include <string>
#include <system_error>
#include <utility>

bool standalone_adopts(int fd, std::string& why) {
  asio::io_context io;
  std::error_code ec;
  sockact::unique_fd owner(fd);  // the socket on success; still ours on error
  {
    const asio::ip::udp::socket wrong = sockact::adopt<asio::ip::udp::socket>(io, std::move(owner), ec, &why);
    if (ec != sockact::errc::wrong_family) return false;
  }
  asio::local::stream_protocol::socket s =
      sockact::adopt<asio::local::stream_protocol::socket>(io, std::move(owner), ec, &why);
  if (ec) owner.release();  // the caller keeps it
  return !ec && s.is_open();
}
