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
// THREADS=<n>: run the io_context on n threads (default 1).
//
// Lines marked `// sockact` are all that sockact adds to a plain Asio server:
// sockact::asio_driver accepts, runs the deadlines and the signals; each
// connection reports its requests through a sockact::connection.
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>  // sockact

#include "../common/mini_http.hpp"

#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
constexpr std::size_t max_input = mini_http::max_head + mini_http::max_body;

/// The one place that parses: the next request at `in`, or why not.
mini_http::parse_status parse_request(std::string_view in, mini_http::request& req, std::size_t& used) {
  return mini_http::parse(in, req, used);
}

std::string error_response(std::size_t buffered) {
  if (buffered > mini_http::max_head)
    return "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  return mini_http::bad_request();
}

/// One client connection: reads requests, answers them in order (pipelined
/// ones too), one write at a time; a /delay holds back the requests behind it.
template <class Socket>
class session : public std::enable_shared_from_this<session<Socket>> {
 public:
  session(Socket socket, std::string name)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), name_(std::move(name)) {}

  void start() { read(); }

 private:
  std::size_t buffered() const { return in_.size() - pos_; }

  void read() {
    if (reading_ || done_ || eof_ || out_.size() + sending_.size() > max_output || buffered() >= max_input)
      return;
    reading_ = true;
    stream_.async_read_some(
        net::buffer(buf_), [self = this->shared_from_this()](error_code ec, std::size_t n) {
          self->reading_ = false;
          if (ec == net::error::operation_aborted || self->done_) return self->stop();  // closed
          if (ec) self->eof_ = true;  // the client is done sending: answer what came, then close
          self->in_.append(self->buf_.data(), n);
          self->process();
        });
  }

  // Answers every complete request in the buffer, in order.
  void process() {
    while (!waiting_ && !closing_ && !done_) {
      mini_http::request req;
      std::size_t used = 0;
      const mini_http::parse_status status = parse_request(std::string_view(in_).substr(pos_), req, used);
      if (status == mini_http::parse_status::incomplete) break;
      if (status == mini_http::parse_status::bad) {
        out_ += error_response(buffered());
        closing_ = true;
        break;
      }
      pos_ += used;
      stream_.connection().request_received();  // sockact
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
    // Linear in what arrived: drop the consumed prefix only once it is large.
    if (pos_ == in_.size() || pos_ > 64 * 1024) in_.erase(0, std::exchange(pos_, 0));
    flush();
    read();
  }

  void respond(mini_http::request req, const mini_http::route& route) {
    req.keep_alive = req.keep_alive && stream_.connection().keep_alive(buffered());  // sockact
    out_ += mini_http::answer(req, route, program, name_, static_cast<long>(::getpid()));
    if (!req.keep_alive) closing_ = true;
  }

  void flush() {
    if (writing_ || done_) return;
    if (out_.empty()) {
      if (!waiting_ && (closing_ || eof_)) close();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    net::async_write(stream_, net::buffer(sending_),
                     [self = this->shared_from_this()](error_code ec, std::size_t) {
                       self->writing_ = false;
                       self->sending_.clear();
                       if (ec) return self->close();
                       if (self->out_.empty() && !self->waiting_)
                         self->stream_.connection().response_sent(self->buffered());  // sockact
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
  std::string in_, out_, sending_;
  std::size_t pos_ = 0;  // parsed up to here
  bool reading_ = false, writing_ = false, waiting_ = false, closing_ = false, eof_ = false, done_ = false;
};

}  // namespace

int main(int argc, char** argv) try {
  auto config = sockact::activation_config::http();  // sockact
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--listen=", 0) != 0) {
      std::fprintf(stderr, "usage: %s [--listen=ADDRESS[,ADDRESS...]]\n", program);
      return 2;
    }
    config.listen.address = a.substr(9);  // sockact
  }
  sockact::activation act = sockact::activate(config);  // sockact
  const char* threads_env = std::getenv("THREADS");
  const int threads = threads_env != nullptr && std::atoi(threads_env) > 0 ? std::atoi(threads_env) : 1;
  net::io_context io(threads);
  sockact::asio_driver driver(io, act, [&](auto socket, const sockact::listener& from) {  // sockact
    std::make_shared<session<decltype(socket)>>(std::move(socket), from.name)->start();
  });
  std::vector<std::thread> more;
  for (int i = 1; i < threads; ++i) more.emplace_back([&io] { io.run(); });
  io.run();  // returns after the idle exit or the drain
  for (std::thread& t : more) t.join();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
