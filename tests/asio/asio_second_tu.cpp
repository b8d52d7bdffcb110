// A second translation unit that includes the adapter again: a function
// defined in the header without `inline` would be a duplicate symbol at link
// time. SPDX-License-Identifier: MIT
#include <sockact/asio.hpp>

#include <string>
#include <system_error>
#include <utility>

// Used by asio_test.cpp.
bool second_tu_adopts_connection(int fd, std::string& why) {
  sockact::asio_ns::io_context io;
  std::error_code ec;
  sockact::unique_fd owner(fd);  // the socket on success; still ours on error
  sockact::asio_ns::local::stream_protocol::socket s =
      sockact::adopt<sockact::asio_ns::local::stream_protocol::socket>(io, std::move(owner), ec, &why);
  if (ec) owner.release();  // the caller keeps it
  return !ec && s.is_open();
}
