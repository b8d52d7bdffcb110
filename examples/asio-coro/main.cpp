// example-asio-coro: a socket-activated HTTP/1.1 server on Asio's C++20
// coroutines (co_spawn, awaitable, use_awaitable), Boost.Asio or standalone
// asio, whichever <sockact/asio.hpp> selects. One coroutine per connection.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// Accept=yes: serves its one connection and exits when it closes.
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without
// requests. SIGTERM/SIGINT: stop accepting, answer what was received, close,
// exit 0 (at most SHUTDOWN_TIMEOUT, default 30 s; a second signal closes all
// at once). HEADERS_TIMEOUT/REQUEST_TIMEOUT: a stuck request gets a 408.
//
// Lines marked `// sockact` are all that sockact adds to a coroutine server:
// sockact::asio_driver accepts (in place of the acceptor's co_await loop),
// runs the deadlines and catches SIGTERM and SIGINT; each session's stream
// is a sockact::tracked_stream, which reports every read. No signal_set of
// the server's own: the driver's is the one that drains. driver.run() runs
// the io_context (as io.run() would) until the drain is over, even if
// something else calls io_context::stop() meanwhile.
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>  // sockact

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"

#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace {

namespace net = sockact::asio_ns;  // Boost.Asio or standalone asio
using error_code = sockact::asio_error_code;
constexpr const char* program = "example-asio-coro";

/// One client connection: answers the requests in its buffer, in order
/// (pipelined ones too), writes the answers, reads more. One write at a
/// time and no read while it runs: its output never outgrows what one read
/// brought in (backpressure comes with the shape).
template <class Socket>
net::awaitable<void> session(Socket socket, std::string name) {
  sockact::tracked_stream<Socket> stream(std::move(socket));  // sockact
  net::steady_timer timer(stream.get_executor());
  std::array<char, 16384> buf{};
  mini_http::input_buffer in;  // received, not yet parsed (linear-time pipelining)
  mini_http::request_parser parser;
  std::string out;
  bool answered = false, closing = false, eof = false;
  error_code ec;
  for (;;) {
    mini_http::request req;
    const mini_http::result r = parser.parse(in.unread(), req);
    stream.connection().parsed(in.size(), r.complete(), r.head_complete());  // sockact
    if (r.failed()) {  // 400, 413, 431, 501, 505: answer and close
      out += mini_http::error_response(r.status);
      closing = true;
    } else if (r.send_continue) {
      out += mini_http::continue_response();  // the client waits for it to send the body
    }
    if (r.complete()) {
      in.consume(r.consumed);
      const mini_http::route route = mini_http::route_for(req);
      if (route.what == mini_http::route::delay) {
        timer.expires_after(std::chrono::milliseconds(route.delay_ms));
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return;
      }
      const bool draining = !stream.connection().keep_alive(in.size());  // sockact
      out += mini_http::answer(req, route, program, name, static_cast<long>(::getpid()), draining);
      answered = true;
      closing = mini_http::connection_for(req, draining) == mini_http::connection_header::close;
      if (!closing) continue;  // the next request may be in the buffer already
    }
    if (!out.empty()) {
      co_await net::async_write(stream, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
      out.clear();
      if (ec) co_return;  // the client is gone, or the connection was closed for us
      if (answered) stream.connection().response_sent(in.size());  // sockact
      answered = false;
    }
    if (closing || eof) break;
    const std::size_t n =
        co_await stream.async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
    if (ec == net::error::operation_aborted) co_return;  // closed for us (drain, deadline)
    eof = static_cast<bool>(ec);  // the client is done sending: answer what came, then close
    in.append(std::string_view(buf.data(), n));
  }
  // After the last response: FIN, then the library lingers for the client's.
  stream.connection().close();  // sockact
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  net::io_context io(1);
  sockact::asio_driver driver(io, act, [](auto socket, const sockact::server_socket& from) {  // sockact
    net::co_spawn(socket.get_executor(), session(std::move(socket), from.name), net::detached);
  });
  // io.run(), and on until the drain is over even if something calls io.stop(); returns after
  // the idle exit or the drain.
  driver.run();  // sockact
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
