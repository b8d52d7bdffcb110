// example-asio-http: a socket-activated HTTP/1.1 server on Asio (Boost.Asio
// or standalone asio, whichever <sockact/asio.hpp> selects).
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
// THREADS=<n>: run the io_context on n threads (default 1; 1 to 256, else
// the program says what is wrong with the value and exits 1).
//
// Lines marked `// sockact` are all that sockact adds to a plain Asio server:
// sockact::asio_driver accepts, runs the deadlines and the signals; each
// connection reports its requests through a sockact::connection.
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>  // sockact

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"
#include "../common/thread_count.hpp"

#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;  // Boost.Asio or standalone asio
using error_code = sockact::asio_error_code;
constexpr const char* program = "example-asio-http";
constexpr std::size_t max_output = 1024 * 1024;  // stop reading above this much unsent output
// Reading stops at one maximal request buffered: the parser then always
// decides (a request, or an error), so a connection cannot stall.
constexpr std::size_t max_input = mini_http::limits{}.max_request_bytes();

/// One client connection: reads requests, answers them in order (pipelined
/// ones too), one write at a time; a /delay holds back the requests behind it.
template <class Socket>
class session : public std::enable_shared_from_this<session<Socket>> {
 public:
  session(Socket socket, std::string name)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), name_(std::move(name)) {}

  void start() { read(); }

 private:
  std::size_t buffered() const { return in_.size(); }

  void read() {
    if (reading_ || done_ || eof_ || out_.size() + sending_.size() > max_output || buffered() >= max_input)
      return;
    reading_ = true;
    stream_.async_read_some(
        net::buffer(buf_), [self = this->shared_from_this()](error_code ec, std::size_t n) {
          self->reading_ = false;
          if (ec == net::error::operation_aborted || self->done_) return self->stop();  // closed
          if (ec) self->eof_ = true;  // the client is done sending: answer what came, then close
          self->in_.append(std::string_view(self->buf_.data(), n));
          self->process();
        });
  }

  // Answers every complete request in the buffer, in order.
  void process() {
    while (!waiting_ && !closing_ && !done_) {
      mini_http::request req;
      const mini_http::result r = parser_.parse(in_.unread(), req);
      stream_.connection().parsed(buffered(), r.complete(), r.head_complete());  // sockact
      if (r.failed()) {  // 400, 413, 431, 501, 505: answer and close
        out_ += mini_http::error_response(r.status);
        closing_ = answered_ = true;
        break;
      }
      if (r.send_continue)
        out_ += mini_http::continue_response();  // the client waits for it to send the body
      if (!r.complete()) break;                  // the request deadlines run meanwhile
      in_.consume(r.consumed);
      const mini_http::route route = mini_http::route_for(req);
      if (route.what == mini_http::route::delay) {
        waiting_ = true;
        timer_.expires_after(std::chrono::milliseconds(route.delay_ms));
        timer_.async_wait([self = this->shared_from_this(), req, route](error_code ec) {
          self->waiting_ = false;
          if (ec || self->done_) return;
          self->respond(req, route);
          self->process();
        });
        break;
      }
      respond(req, route);
    }
    flush();
    read();
  }

  void respond(const mini_http::request& req, const mini_http::route& route) {
    const bool draining = !stream_.connection().keep_alive(buffered());  // sockact
    out_ += mini_http::answer(req, route, program, name_, static_cast<long>(::getpid()), draining);
    answered_ = true;
    if (mini_http::connection_for(req, draining) == mini_http::connection_header::close) closing_ = true;
  }

  void flush() {
    if (writing_ || done_) return;
    if (out_.empty()) {
      if (!waiting_ && (closing_ || eof_)) close();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    net::async_write(
        stream_, net::buffer(sending_), [self = this->shared_from_this()](error_code ec, std::size_t) {
          self->writing_ = false;
          self->sending_.clear();
          if (ec) return self->close();
          if (self->out_.empty() && !self->waiting_ && self->answered_) {  // not after a 100 alone
            self->answered_ = false;
            self->stream_.connection().response_sent(self->buffered());  // sockact
          }
          self->flush();
          self->read();
        });
  }

  // After the last response: FIN, then the library lingers for the client's.
  void close() {
    if (done_) return;
    stream_.connection().close();  // sockact
    stop();
  }

  void stop() {
    done_ = true;
    timer_.cancel();
  }

  sockact::tracked_stream<Socket> stream_;  // sockact
  net::steady_timer timer_;
  std::string name_;  // the socket's name: which one the client came in on
  std::array<char, 16384> buf_{};
  mini_http::input_buffer in_;  // received, not yet parsed (linear-time pipelining)
  mini_http::request_parser parser_;
  std::string out_, sending_;
  bool reading_ = false, writing_ = false, waiting_ = false, closing_ = false, eof_ = false, done_ = false;
  bool answered_ = false;  // a final response is in out_ or sending_ (not only a 100 Continue)
};

}  // namespace

int main(int argc, char** argv) try {
  auto config = sockact::activation_config::http();                                    // sockact
  config.listen.address = listen_option::from_arguments_or_exit(argc, argv, program);  // sockact
  const unsigned threads = thread_count::from_environment_or_exit(program, 1);  // before taking the sockets
  sockact::activation act = sockact::activate_or_exit(config);                  // sockact
  net::io_context io(static_cast<int>(threads));
  sockact::asio_driver driver(io, act, [&](auto socket, const sockact::server_socket& from) {  // sockact
    std::make_shared<session<decltype(socket)>>(std::move(socket), from.name)->start();
  });
  std::vector<std::thread> more;
  for (unsigned i = 1; i < threads; ++i) more.emplace_back([&io] { io.run(); });
  io.run();  // returns after the idle exit or the drain
  for (std::thread& t : more) t.join();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
