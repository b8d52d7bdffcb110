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
// requests (systemd starts it again on the next connection).
// SIGTERM/SIGINT: stop accepting, close idle connections, let requests in
// progress finish for up to SHUTDOWN_TIMEOUT (default 30 s), exit 0; a second
// signal closes everything at once. Sends READY=1/STOPPING=1 (Type=notify)
// and WATCHDOG=1 when WatchdogSec= is set. sockact::asio_lifecycle_driver
// runs the timer and the signal_set; this program carries out what it is
// told in apply().
// SPDX-License-Identifier: MIT

#include <sockact/asio.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/sockact.hpp>

#include "../common/mini_http.hpp"

#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;
using sockact::asio_error_code;
constexpr const char* program = "example-asio-http";

class server;

/// One client connection: reads requests, answers them in order (pipelined
/// ones too), keeps the connection open unless asked to close, or stopping.
class session {
 public:
  virtual ~session() = default;
  /// A request is in progress: from its first byte to its answer's last.
  virtual bool busy() const = 0;
  /// The client has sent at least one byte.
  virtual bool used() const = 0;
  virtual void stop() = 0;
};

template <class Socket>
class http_session : public session, public std::enable_shared_from_this<http_session<Socket>> {
 public:
  http_session(Socket socket, std::string name, sockact::lifecycle& lifecycle,
               std::function<void(session*)> on_close)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        name_(std::move(name)),
        lifecycle_(lifecycle),
        on_close_(std::move(on_close)) {}

  void start() { read(); }
  bool busy() const override { return static_cast<bool>(busy_); }
  bool used() const override { return used_; }
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
          if (!self->busy_) self->busy_ = self->lifecycle_.tracker().begin();
          self->used_ = true;
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

  void respond(mini_http::request req, const mini_http::route& route) {
    if (lifecycle_.draining()) req.keep_alive = false;  // finish this one, then close
    out_ += mini_http::answer(req, route, program, name_, static_cast<long>(::getpid()));
    if (!req.keep_alive) closing_ = true;
  }

  void flush() {
    if (closed_ || writing_) return;
    if (out_.empty()) {
      if (closing_ && !waiting_) return close();
      if (!waiting_ && in_.empty()) {
        if (lifecycle_.draining()) return close();  // answered; nothing more while stopping
        busy_.end();                                // an idle keep-alive connection is not activity
      }
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
    const auto self = this->shared_from_this();  // on_close_ drops the server's reference
    asio_error_code ignored;
    timer_.cancel();
    socket_.close(ignored);  // a connection of our own: no shutdown() needed
    busy_.end();
    on_close_(this);
  }

  Socket socket_;
  net::steady_timer timer_;
  std::string name_;  // the listener's name: which socket the client came in on
  sockact::lifecycle& lifecycle_;
  sockact::idle_tracker::activity busy_;  // held from a request's first byte to its answer's last
  std::function<void(session*)> on_close_;
  std::array<char, 16384> buf_{};
  std::string in_, out_, sending_;
  bool reading_ = false, writing_ = false, waiting_ = false, closing_ = false, closed_ = false;
  bool used_ = false;  // has sent a byte: a new connection gets its grace until then
};

class server {
 public:
  server(net::io_context& io, const sockact::lifecycle_config& config,
         const std::vector<sockact::listener>& listeners)
      : io_(io),
        lifecycle_(config, sockact::any_activated(listeners), sockact::listening_fds(listeners)),
        driver_(io, lifecycle_, [this](const sockact::lifecycle_actions& a) { apply(a); }) {
    lifecycle_.on_stop([](sockact::stop_reason why) {
      std::fprintf(stderr, "%s: stopping (%s)\n", program, sockact::to_string(why));
    });
  }

  /// Catches SIGTERM and SIGINT from now on and arms the lifecycle's timer.
  bool start() {
    std::error_code ec;
    driver_.start(ec);
    if (ec) std::fprintf(stderr, "%s: cannot catch SIGTERM/SIGINT: %s\n", program, ec.message().c_str());
    return !ec;
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

  /// READY=1: the listeners are set up.
  void ready(std::size_t sockets) { lifecycle_.ready("serving " + std::to_string(sockets) + " socket(s)"); }

 private:
  // Carries out what the lifecycle decided. `finished` needs nothing more:
  // the driver has stopped, and io_context::run() returns when the last
  // handler is done.
  void apply(const sockact::lifecycle_actions& a) {
    if (a.stop_accepting) stop_accepting();
    if (a.close_all || a.close_idle || a.close_new) {
      const auto sessions = sessions_;  // closing one removes it from sessions_
      for (const auto& entry : sessions) {
        const session& s = *entry.second;
        if (a.closes(s.busy(), s.used())) entry.second->stop();
      }
    }
  }

  void stop_accepting() {
    accepting_ = false;
    for (const std::function<void()>& close_acceptor : acceptors_)
      close_acceptor();  // closed, never shut down: systemd keeps its copy
    acceptors_.clear();
  }

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
      if (!accepting_ || ec == net::error::operation_aborted) return;  // a late one is closed here
      if (ec) {  // out of fds and the like: pause instead of spinning on the error
        std::fprintf(stderr, "%s: accept on %s: %s\n", program, name->c_str(), ec.message().c_str());
        auto pause = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(100));
        pause->async_wait([this, a, name, pause](const asio_error_code&) {
          if (accepting_) accept_next(a, name);
        });
        return;
      }
      start_session(std::move(socket), *name, false);
      accept_next(a, name);
    });
  }

  template <class Socket>
  void start_session(Socket socket, const std::string& name, bool single) {
    auto s = std::make_shared<http_session<Socket>>(std::move(socket), name, lifecycle_,
                                                    [this, single](session* gone) { closed(gone, single); });
    sessions_.emplace(s.get(), s);
    driver_.connections_changed(sessions_.size());
    s->start();
  }

  void closed(session* gone, bool single) {
    sessions_.erase(gone);
    driver_.connections_changed(sessions_.size());  // while draining, 0 ends the drain
    if (single && --single_connections_ == 0) {
      // Accept=yes: our one client is done; so is this process.
      driver_.stop();
      stop_accepting();
      const auto sessions = sessions_;
      for (const auto& entry : sessions) entry.second->stop();
    }
  }

  net::io_context& io_;
  sockact::lifecycle lifecycle_;
  sockact::asio_lifecycle_driver driver_;
  std::vector<std::function<void()>> acceptors_;  // each closes one acceptor
  std::unordered_map<session*, std::shared_ptr<session>> sessions_;
  int single_connections_ = 0;
  bool accepting_ = true;
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
  sockact::lifecycle_config lifecycle;  // IDLE_TIMEOUT, SHUTDOWN_TIMEOUT
  if (!sockact::lifecycle_from_environment(lifecycle, ec, &why)) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    return 1;
  }
  std::vector<sockact::listener> listeners = sockact::listen_or_bind(config, ec, &why);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    return 1;
  }

  net::io_context io;
  server srv(io, lifecycle, listeners);
  if (!srv.start()) return 1;
  for (sockact::listener& l : listeners) {
    std::fprintf(stderr, "%s: %s %s on %s\n", program, l.activated ? "serving activated" : "bound",
                 l.name.c_str(), l.info.local_address.c_str());
    if (!srv.add(l)) return 1;
  }
  srv.ready(listeners.size());
  io.run();  // returns once the lifecycle is done (idle, or stopped and drained)
  return 0;
}
