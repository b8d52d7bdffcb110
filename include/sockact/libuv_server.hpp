// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_SERVER_HPP
#define SOCKACT_LIBUV_SERVER_HPP

// Everything a libuv server on sockact's driver includes: the activation
// (<sockact/activation.hpp>), the libuv adapter (<sockact/libuv.hpp>, which
// alone stays lean for programs that only adopt passed fds) and
// libuv_connection, a client's handle and connection in one object.

#include <sockact/activation.hpp>
#include <sockact/libuv.hpp>

#include <system_error>

namespace sockact {

/// A client's stream handle and its sockact::connection in one object.
/// libuv_accepted::open() opens the handle (a uv_tcp_t or a uv_pipe_t,
/// whichever kind the connection is) and registers it; the registration goes
/// with the object, so that neither can outlive the other (it cannot be moved
/// out: the connection is a private base). It has the connection's calls
/// (parsed(), keep_alive(), response_sent(), close(), ...), and gives the
/// handle to libuv calls. Not movable: libuv keeps its address.
/// @code
/// struct client { sockact::libuv_connection conn; ... };     // freed in on_closed
/// if (!a.open(c->conn, on_closed, ec)) return delete c;
/// c->conn.handle()->data = c;
/// uv_read_start(c->conn.stream(), on_alloc, on_read);
/// @endcode
class libuv_connection : private connection {
 public:
  libuv_connection() noexcept = default;
  libuv_connection(const libuv_connection&) = delete;
  libuv_connection& operator=(const libuv_connection&) = delete;

  uv_handle_t* handle() noexcept { return &uv_.handle; }
  const uv_handle_t* handle() const noexcept { return &uv_.handle; }
  uv_stream_t* stream() noexcept { return &uv_.stream; }
  const uv_stream_t* stream() const noexcept { return &uv_.stream; }

  using connection::close;
  using connection::draining;
  using connection::fd;
  using connection::headers_received;
  using connection::keep_alive;
  using connection::parsed;
  using connection::received;
  using connection::request_received;
  using connection::response_sent;
  using connection::operator bool;

 private:
  friend class libuv_accepted;
  libuv_stream uv_{};
};

inline bool libuv_accepted::open(libuv_connection& c, uv_close_cb on_closed, std::error_code& ec) {
  static_cast<connection&>(c) = open<libuv_stream, activation>(&c.uv_, on_closed, ec);
  return !ec;
}

#if SOCKACT_HAS_EXCEPTIONS
inline void libuv_accepted::open(libuv_connection& c, uv_close_cb on_closed) {
  static_cast<connection&>(c) = open<libuv_stream, activation>(&c.uv_, on_closed);
}
#endif

}  // namespace sockact

#endif  // SOCKACT_LIBUV_SERVER_HPP
