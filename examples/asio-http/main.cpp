// example-asio-http: a socket-activated HTTP/1.1 server on Asio (Boost.Asio
// or standalone asio, whichever <sockact/asio.hpp> selects).
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// Accept=yes: serves its one connection and exits when it closes.
// SIGTERM/SIGINT: stop accepting, close connections, exit 0.
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>
#include <sockact/sockact.hpp>

#include "../common/mini_http.hpp"

#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;
using sockact::asio_error_code;
constexpr const char* program = "example-asio-http";

class server;

/// One client connection: reads requests, answers them in order (pipelined
/// ones too), keeps the connection open unless asked to close.
class session {
 public:
  virtual ~session() = default;
  virtual void stop() = 0;
};

template <class Socket>
class http_session : public session, public std::enable_shared_from_this<http_session<Socket>> {
 public:
  http_session(Socket socket, std::string name, std::function<void()> on_close)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        name_(std::move(name)),
        on_close_(std::move(on_close)) {}

  void start() { read(); }
  void stop() override { close(); }

 private:
  void read() {
    if (reading_ || waiting_ || closing_ || closed_) return;
    reading_ = true;
    socket_.async_read_some(
        net::buffer(buf_), [self = this->shared_from_this()](const asio_error_code& ec, std::size_t n) {
          self->reading_ = false;
          if (ec) {  // the client closed (or reset) the connection: finish what is pending
            self->closing_ = true;
            return self->flush();
          }
          self->in_.append(self->buf_.data(), n);
          self->process();
        });
  }

  // Answers every complete request in the buffer; a /delay request holds back
  // the ones behind it until its timer fires.
  void process() {
    while (!waiting_ && !closing_ && !closed_) {
      mini_http::request req;
      std::size_t used = 0;
      const mini_http::parse_status status = mini_http::parse(in_, req, used);
      if (status == mini_http::parse_status::incomplete) break;
      if (status == mini_http::parse_status::bad) {
        out_ += mini_http::bad_request();
        closing_ = true;
        break;
      }
      in_.erase(0, used);
      const mini_http::route route = mini_http::route_for(req);
      if (route.what == mini_http::route::delay) {
        waiting_ = true;
        timer_.expires_after(std::chrono::milliseconds(route.delay_ms));
        timer_.async_wait([self = this->shared_from_this(), req, route](const asio_error_code& ec) {
          self->waiting_ = false;
          if (ec || self->closed_) return;
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
    out_ += mini_http::answer(req, route, program, name_, static_cast<long>(::getpid()));
    if (!req.keep_alive) closing_ = true;
  }

  void flush() {
    if (closed_ || writing_) return;
    if (out_.empty()) {
      if (closing_ && !waiting_) close();
      return;
    }
    writing_ = true;
    sending_ = std::move(out_);
    out_.clear();
    net::async_write(socket_, net::buffer(sending_),
                     [self = this->shared_from_this()](const asio_error_code& ec, std::size_t) {
                       self->writing_ = false;
                       if (ec) return self->close();
                       self->sending_.clear();
                       self->flush();
                       self->read();
                     });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio_error_code ignored;
    timer_.cancel();
    socket_.close(ignored);  // a connection of our own: no shutdown() needed
    on_close_();
  }

  Socket socket_;
  net::steady_timer timer_;
  std::string name_;  // the listener's name: which socket the client came in on
  std::function<void()> on_close_;
  std::array<char, 16384> buf_{};
  std::string in_, out_, sending_;
  bool reading_ = false, writing_ = false, waiting_ = false, closing_ = false, closed_ = false;
};

class server {
 public:
  explicit server(net::io_context& io) : io_(io), signals_(io, SIGINT, SIGTERM) {
    signals_.async_wait([this](const asio_error_code& ec, int) {
      if (!ec) stop();
    });
  }

  /// Serves one listener; false (after a message) when it is of a kind this
  /// server cannot serve. The adapter checks what the fd really is.
  bool add(sockact::listener& l) {
    const std::string name = l.name;
    const bool inet = l.info.family == AF_INET || l.info.family == AF_INET6;
    std::error_code ec;
    std::string why;
    if (l.info.connected && l.info.type == SOCK_STREAM) {  // Accept=yes: one client's connection
      ++single_connections_;
      if (inet) {
        net::ip::tcp::socket s = sockact::make_tcp_connection(io_, std::move(l), ec, &why);
        if (!ec) start_session(std::move(s), name, true);
      } else {
        net::local::stream_protocol::socket s = sockact::make_unix_connection(io_, std::move(l), ec, &why);
        if (!ec) start_session(std::move(s), name, true);
      }
    } else if (inet) {
      net::ip::tcp::acceptor a = sockact::make_tcp_acceptor(io_, std::move(l), ec, &why);
      if (!ec) accept_on(std::move(a), name);
    } else {
      net::local::stream_protocol::acceptor a = sockact::make_unix_acceptor(io_, std::move(l), ec, &why);
      if (!ec) accept_on(std::move(a), name);
    }
    if (ec) std::fprintf(stderr, "%s: cannot serve %s: %s\n", program, name.c_str(), why.c_str());
    return !ec;
  }

  /// Stops accepting and closes every connection; io_context::run() returns
  /// once their handlers have finished.
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    signals_.cancel();
    for (const std::function<void()>& close_acceptor : acceptors_)
      close_acceptor();  // closed, never shut down
    const std::vector<std::weak_ptr<session>> sessions = std::move(sessions_);
    for (const std::weak_ptr<session>& s : sessions)
      if (const std::shared_ptr<session> alive = s.lock()) alive->stop();
  }

 private:
  template <class Acceptor>
  void accept_on(Acceptor acceptor, const std::string& name) {
    auto a = std::make_shared<Acceptor>(std::move(acceptor));
    acceptors_.push_back([a] {
      asio_error_code ignored;
      a->close(ignored);
    });
    accept_next(a, std::make_shared<const std::string>(name));
  }

  template <class Acceptor>
  void accept_next(std::shared_ptr<Acceptor> a, std::shared_ptr<const std::string> name) {
    a->async_accept([this, a, name](const asio_error_code& ec, auto socket) {
      if (stopping_ || ec == net::error::operation_aborted) return;
      if (ec) {  // out of fds and the like: pause instead of spinning on the error
        std::fprintf(stderr, "%s: accept on %s: %s\n", program, name->c_str(), ec.message().c_str());
        auto pause = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(100));
        pause->async_wait([this, a, name, pause](const asio_error_code&) {
          if (!stopping_) accept_next(a, name);
        });
        return;
      }
      start_session(std::move(socket), *name, false);
      accept_next(a, name);
    });
  }

  template <class Socket>
  void start_session(Socket socket, const std::string& name, bool single) {
    auto s = std::make_shared<http_session<Socket>>(std::move(socket), name, [this, single] {
      if (single && --single_connections_ == 0) stop();  // Accept=yes: our one client is done
    });
    sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                   [](const std::weak_ptr<session>& w) { return w.expired(); }),
                    sessions_.end());
    sessions_.push_back(s);
    s->start();
  }

  net::io_context& io_;
  net::signal_set signals_;
  std::vector<std::function<void()>> acceptors_;  // each closes one acceptor
  std::vector<std::weak_ptr<session>> sessions_;
  int single_connections_ = 0;
  bool stopping_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  sockact::listen_config config;
  // Asio sets O_NONBLOCK itself when it first waits on a socket.
  config.nonblocking = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--listen=", 0) == 0) {
      config.address = a.substr(9);
    } else {
      std::fprintf(stderr, "usage: %s [--listen=ADDRESS[,ADDRESS...]]\n", program);
      return 2;
    }
  }
  std::error_code ec;
  std::string why;
  std::vector<sockact::listener> listeners = sockact::listen_or_bind(config, ec, &why);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    return 1;
  }

  net::io_context io;
  server srv(io);
  for (sockact::listener& l : listeners) {
    std::fprintf(stderr, "%s: %s %s on %s\n", program, l.activated ? "serving activated" : "bound",
                 l.name.c_str(), l.info.local_address.c_str());
    if (!srv.add(l)) return 1;
  }
  io.run();
  return 0;
}
