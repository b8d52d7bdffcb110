// example-beast-http: a socket-activated HTTP/1.1 server on Boost.Beast, in
// Beast's usual asynchronous shape: one io_context run by several threads,
// a strand per connection, a session per connection on a beast::tcp_stream
// (or its unix-socket twin), http::async_read_header, http::async_read for
// the body, and http::async_write.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (a timer on the session's strand)
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
// THREADS=<n>: threads running the io_context (default 2; 1 to 256, else
// the program says what is wrong with the value and exits 1).
//
// Lines marked `// sockact` are all that sockact adds to a Beast server.
// Beast's reads buffer a request's first bytes where sockact cannot see
// them; sockact::tracked_stream, the session's stream, reports every read,
// so a request that has begun is never closed as idle at the drain. The
// session reports the head and then the whole request, so a slow body is
// bounded by REQUEST_TIMEOUT, not HEADERS_TIMEOUT.
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>  // sockact

#include "../common/beast_http.hpp"
#include "../common/listen_option.hpp"
#include "../common/thread_count.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
constexpr const char* program = "example-beast-http";
constexpr std::uint64_t max_body_bytes = 1024 * 1024;  // a larger body gets 413
using namespace beast_http;                            // check_head(), route_for(), ...

/// One connection: reads a request, answers it, reads the next (pipelined
/// ones come from the buffer); one response in flight at a time, so its
/// output never exceeds one response (backpressure comes with the shape).
template <class Protocol>
class session : public std::enable_shared_from_this<session<Protocol>> {
 public:
  session(typename Protocol::socket&& socket, std::string name)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), name_(std::move(name)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::read, this->shared_from_this()));
  }

 private:
  // The head first: it is checked before any byte of the body is read.
  void read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);  // a larger head gets 431
    parser_->body_limit(max_body_bytes);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&session::on_header, this->shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_error(ec);
    const http::status bad = check_head(*parser_);
    if (bad != http::status::ok) return fail(bad);
    if (parser_->is_done()) return on_read({}, 0);  // no body
    received(false);
    // A client that waits for it before sending its body, and has not sent any yet.
    if (buffer_.size() == 0 && expects_continue(parser_->get()))
      return http::async_write(stream_, continue_,
                               beast::bind_front_handler(&session::on_continue, this->shared_from_this()));
    read_body();
  }

  void on_continue(beast::error_code ec, std::size_t) {
    if (ec) return close();
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  // The head, then the whole request: the request deadlines follow them.
  void received(bool whole) { stream_.connection().parsed(0, whole, true); }  // sockact

  void on_error(beast::error_code ec) {
    if (ec == net::error::operation_aborted) return;  // closed for us (drain, deadline)
    if (ec == http::error::end_of_stream) return close();
    if (ec == http::error::header_limit) return fail(http::status::request_header_fields_too_large);
    if (ec == http::error::body_limit) return fail(http::status::payload_too_large);
    if (ec.category() == http::make_error_code(http::error::bad_method).category())
      return fail(http::status::bad_request);
    close();
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_error(ec);
    received(true);
    req_ = parser_->release();
    const route r = route_for(req_);
    if (!r.delay) return answer(r);
    timer_.expires_after(std::chrono::milliseconds(r.delay_ms));
    timer_.async_wait([self = this->shared_from_this(), r](beast::error_code wec) {
      if (!wec) self->answer(r);
    });
  }

  void answer(const route& r) {
    std::string body = "not found\n";
    if (r.status == http::status::bad_request) body = "bad request\n";
    if (r.status == http::status::ok)
      body = r.delay ? "delayed " + std::to_string(r.delay_ms) + " ms\n"
                     : std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                           " socket=" + name_ + "\n";
    send(r.status, std::move(body), req_.keep_alive(), req_.method() == http::verb::head);
  }

  void fail(http::status status) {
    req_ = {};
    send(status, status == http::status::bad_request ? "bad request\n" : "", false, false);
  }

  void send(http::status status, std::string body, bool keep_alive, bool head) {
    res_ = http::response<http::string_body>(status, 11);
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    res_.body() = std::move(body);
    res_.prepare_payload();
    if (head) res_.body().clear();  // Content-Length stays that of the GET
    res_.keep_alive(keep_alive && stream_.connection().keep_alive(buffer_.size()));  // sockact
    http::async_write(stream_, res_, beast::bind_front_handler(&session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return close();
    stream_.connection().response_sent(buffer_.size());  // sockact
    if (!res_.keep_alive()) return close();
    read();
  }

  // FIN after the last response; the library reads and discards what the
  // client still sends, so that it gets no reset.
  void close() {
    timer_.cancel();
    stream_.connection().close();  // sockact
  }

  sockact::tracked_stream<beast::basic_stream<Protocol>> stream_;  // sockact
  net::steady_timer timer_;
  std::string name_;  // the socket's name: which one the client came in on
  beast::flat_buffer buffer_{64 * 1024};
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  const http::response<http::empty_body> continue_{http::status::continue_, 11};
};

}  // namespace

int main(int argc, char** argv) try {
  auto config = sockact::activation_config::http();                                    // sockact
  config.listen.address = listen_option::from_arguments_or_exit(argc, argv, program);  // sockact
  const unsigned threads = thread_count::from_environment_or_exit(program, 2);  // before taking the sockets
  sockact::activation act = sockact::activate_or_exit(config);                  // sockact
  net::io_context ioc{static_cast<int>(threads)};
  sockact::asio_driver driver(ioc, act, [](auto socket, const sockact::server_socket& from) {  // sockact
    using protocol = typename decltype(socket)::protocol_type;
    std::make_shared<session<protocol>>(std::move(socket), from.name)->run();
  });
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned i = threads - 1; i > 0; --i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();  // returns after the idle exit or the drain
  for (std::thread& t : pool) t.join();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
