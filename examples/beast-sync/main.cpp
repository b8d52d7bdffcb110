// example-beast-sync: a socket-activated HTTP/1.1 server on Boost.Beast, in
// Beast's synchronous shape: a thread per connection, http::read_header,
// http::read for the body, and http::write, all blocking.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (its thread sleeps; others go on)
// Targets in absolute form (http://host/path) are routed by their path.
// Beast's parser takes a request whose Transfer-Encoding does not end in
// chunked as bodiless (its body would then run as the next request), and
// lets a missing or repeated Host through: the session refuses these with
// 400 and closes (RFC 9112 §6.3, §3.2), as the other examples do. A body over
// 1 MiB gets 413; Expect: 100-continue gets 100 Continue before the body.
// Accept=yes: serves its one connection and exits when it closes.
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without
// requests. SIGTERM/SIGINT: stop accepting, answer what was received, close,
// exit 0 (at most SHUTDOWN_TIMEOUT, default 30 s; a second signal closes all
// at once). HEADERS_TIMEOUT/REQUEST_TIMEOUT: a stuck request gets a 408.
//
// Lines marked `// sockact` are all that sockact adds to a synchronous Beast
// server. Its blocking acceptor.accept() loop goes: a thread blocked in
// accept() cannot be woken when the drain closes the listener, so the
// server would never exit. The thread driver accepts instead
// (driver.serve()), tracks each connection as it accepts it, and calls the
// session on a thread of its own with a sockact::sync_stream in place of the
// tcp::socket: Beast's http::read and http::write take it unchanged, and it
// reports every read, so a request that has begun is never closed as idle.
// The session reports the head and then the whole request, so a slow body is
// bounded by REQUEST_TIMEOUT, not HEADERS_TIMEOUT.
// SPDX-License-Identifier: MIT

#include <sockact/sync_stream.hpp>  // sockact

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "../common/beast_http.hpp"
#include "../common/listen_option.hpp"

#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <string>
#include <string_view>
#include <thread>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
constexpr const char* program = "example-beast-sync";
constexpr std::uint64_t max_body_bytes = 1024 * 1024;  // a larger body gets 413
using namespace beast_http;                            // check_head(), route_for(), ...

// What a read error is answered with before the close; ok: nothing (EOF, a reset).
http::status refusal(beast::error_code ec) {
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return http::status::ok;
  if (ec.category() == http::make_error_code(http::error::bad_method).category())
    return http::status::bad_request;
  return http::status::ok;
}

http::response<http::string_body> response(http::status status, std::string body, bool head) {
  http::response<http::string_body> res(status, 11);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the GET
  return res;
}

/// One connection, on a thread of its own: reads a request (the head, checked
/// before any byte of the body is read, then the body), answers it, reads the
/// next (pipelined ones come from the buffer), until one side closes.
void session(sockact::sync_stream& stream, const std::string& name) {  // sockact
  beast::error_code ec;
  beast::flat_buffer buffer{64 * 1024};
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);  // a larger head gets 431
    parser.body_limit(max_body_bytes);
    http::read_header(stream, buffer, parser, ec);
    http::status bad = ec ? refusal(ec) : check_head(parser);
    if (!ec && bad == http::status::ok && !parser.is_done()) {
      stream.connection()->headers_received();  // sockact
      // A client that waits for it before sending its body, and has not sent any yet.
      if (buffer.size() == 0 && expects_continue(parser.get()))
        http::write(stream, http::response<http::empty_body>(http::status::continue_, 11), ec);
      if (!ec) http::read(stream, buffer, parser, ec);
      if (ec) bad = refusal(ec);
    }
    if (bad != http::status::ok) {  // 400, 413, 431, 501: answer and close
      auto res = response(bad, bad == http::status::bad_request ? "bad request\n" : "", false);
      res.keep_alive(false);
      http::write(stream, res, ec);
      break;
    }
    if (ec) break;                            // EOF, a reset, or closed for us (drain, deadline)
    stream.connection()->request_received();  // sockact
    const http::request<http::string_body>& req = parser.get();
    const route r = route_for(req);
    if (r.delay) std::this_thread::sleep_for(std::chrono::milliseconds(r.delay_ms));
    std::string body = "not found\n";
    if (r.status == http::status::bad_request) body = "bad request\n";
    if (r.status == http::status::ok)
      body = r.delay ? "delayed " + std::to_string(r.delay_ms) + " ms\n"
                     : std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                           " socket=" + name + "\n";
    auto res = response(r.status, std::move(body), req.method() == http::verb::head);
    res.keep_alive(req.keep_alive() && stream.connection()->keep_alive(buffer.size()));  // sockact
    http::write(stream, res, ec);
    if (ec) break;
    stream.connection()->response_sent(buffer.size());  // sockact
    if (!res.keep_alive()) break;
  }
  // FIN after the last response; the library reads and discards what the
  // client still sends, so that it gets no reset.
  stream.close();  // sockact
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  // Before any thread starts: it blocks SIGTERM and SIGINT, and the threads inherit that.
  sockact::thread_driver driver(act);  // sockact
  // Accepts on every socket; each connection gets a thread of its own.
  const bool drained =
      driver.serve([](sockact::sync_stream stream, const sockact::server_socket& from) {  // sockact
        session(stream, from.name);
      });
  // The drain was cut (SHUTDOWN_TIMEOUT, a second signal): end now, the kernel closes what is left.
  if (!drained) std::_Exit(0);  // sockact
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
