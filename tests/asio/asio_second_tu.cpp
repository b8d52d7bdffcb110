// A second translation unit that includes the adapter again: a function
// defined in the header without `inline` would be a duplicate symbol at link
// time. SPDX-License-Identifier: MIT
#include <sockact/asio.hpp>

#include <string>
#include <system_error>

// Used by asio_test.cpp.
bool second_tu_adopts_connection(int fd, std::string& why) {
  sockact::asio_ns::io_context io;
  std::error_code ec;
  sockact::asio_ns::local::stream_protocol::socket s = sockact::make_unix_connection(io, fd, ec, &why);
  return !ec && s.is_open();
}
