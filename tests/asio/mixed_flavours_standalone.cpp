// The standalone asio half of the mixed-flavour program (see mixed_flavours_boost.cpp).
// SPDX-License-Identifier: MIT
#define SOCKACT_ASIO_STANDALONE 1
#include <sockact/asio.hpp>

#include <string>
#include <system_error>

bool standalone_adopts(int fd, std::string& why) {
  asio::io_context io;
  std::error_code ec;
  {
    const asio::ip::udp::socket wrong = sockact::make_udp_socket(io, fd, ec, &why);
    if (ec != sockact::errc::wrong_family) return false;
  }
  asio::local::stream_protocol::socket s = sockact::make_unix_connection(io, fd, ec, &why);
  return !ec && s.is_open();
}
