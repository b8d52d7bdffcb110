// asio_driver::run() against an application that stops the io_context
// itself: its own signal_set calling io_context::stop() on SIGTERM (both sets
// are notified), or a stop for a reason of its own. With driver.run() the
// request in flight is answered and the drain ends as with SIGTERM; with a
// plain io.run() it is cut, and the driver says so when it is destroyed.
// Real sockets on 127.0.0.1, a real signal, clients in threads.
// SPDX-License-Identifier: MIT
#include <sockact/asio.hpp>

#include "driver_test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;
using namespace std::chrono_literals;
using tcp = net::ip::tcp;
using sockact_test::connect_loopback;

using sockact_test::logged;
using sockact_test::read_all;
using sockact_test::send_all;

sockact::activation make_activation() {
  for (const char* v : sockact_test::listen_variables) ::unsetenv(v);
  ::unsetenv("NOTIFY_SOCKET");
  sockact_test::clear_log();
  sockact::activation_config c;
  c.read_environment = false;
  c.listen.address = "127.0.0.1:0";
  c.lifecycle.shutdown_timeout = 10s;
  c.lifecycle.linger = 500ms;
  c.log = sockact_test::capture_log;
  return sockact::activate(c);
}

// One line per request: "wait" is answered "done" after 400 ms ("done
// close" while draining, then the close); "stop" stops the io_context.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, net::io_context& io)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), io_(io) {}
  void start() { read(); }

 private:
  void read() {
    stream_.async_read_some(net::buffer(buf_),
                            [self = shared_from_this()](sockact::asio_error_code ec, std::size_t n) {
                              if (ec) return;  // EOF, or closed for us
                              self->in_.append(self->buf_.data(), n);
                              const std::size_t eol = self->in_.find('\n');
                              if (eol == std::string::npos) return self->read();
                              const std::string line = self->in_.substr(0, eol);
                              self->in_.erase(0, eol + 1);
                              self->stream_.connection().request_received();
                              if (line == "stop") self->io_.stop();  // the application's own reason
                              self->timer_.expires_after(line == "stop" ? 0ms : 400ms);
                              self->timer_.async_wait([self](sockact::asio_error_code) { self->answer(); });
                            });
  }
  void answer() {
    const bool keep = stream_.connection().keep_alive(in_.size());
    out_ = keep ? "done\n" : "done close\n";
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this(), keep](sockact::asio_error_code ec, std::size_t) {
                       if (ec) return;
                       self->stream_.connection().response_sent(self->in_.size());
                       if (!keep) return self->stream_.connection().close();
                       self->read();
                     });
  }

  sockact::tracked_stream<tcp::socket> stream_;
  net::steady_timer timer_;
  net::io_context& io_;
  std::array<char, 256> buf_{};
  std::string in_, out_;
};

// A client that sends "wait", and `then` 100 ms later; what it got.
std::thread client(int port, std::string& got, std::function<void()> then) {
  return std::thread([port, &got, then = std::move(then)] {
    const int fd = connect_loopback(port);
    if (fd < 0) return;
    send_all(fd, "wait\n");
    std::this_thread::sleep_for(100ms);
    then();
    got = read_all(fd);
    ::close(fd);
  });
}

// The driver's handler: a session per connection.
std::function<void(tcp::socket)> start_session(net::io_context& io) {
  return [&io](tcp::socket s) { std::make_shared<session>(std::move(s), io)->start(); };
}

void send_sigterm() {
  ::kill(::getpid(), SIGTERM);
}

int port_of(sockact::activation& act) {
  return sockact_test::local_port(act.sockets().at(0).fd.get());
}

// The usual Asio shape: a signal_set of the application's that stops the
// io_context on SIGTERM, beside the driver's own.
struct app_signals {
  explicit app_signals(net::io_context& io) : set(io, SIGTERM) {
    set.async_wait([&io](sockact::asio_error_code ec, int) {
      if (!ec) io.stop();
    });
  }
  net::signal_set set;
};

TEST(AsioDriverRun, AppSignalSetStopDoesNotCutTheRequest) {
  sockact::activation act = make_activation();
  const int port = port_of(act);  // before the driver takes the socket
  std::string got;
  std::thread c;
  {
    net::io_context io;
    app_signals app(io);
    sockact::asio_driver driver(io, act, start_session(io));
    c = client(port, got, send_sigterm);
    EXPECT_TRUE(driver.run()) << "the activation is done when run() returns";
    EXPECT_TRUE(driver.finished());
    EXPECT_EQ(act.connections(), 0u);
  }
  c.join();
  EXPECT_EQ(got, "done close\n") << "the request in flight at the application's io_context::stop() was cut";
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
  EXPECT_TRUE(logged("the io_context was stopped from outside the driver"));
  EXPECT_FALSE(logged("error:"));
}

TEST(AsioDriverRun, PlainRunIsCutAndTheDriverSaysSo) {
  sockact::activation act = make_activation();
  const int port = port_of(act);
  std::string got = "?";
  std::thread c;
  {
    net::io_context io;
    app_signals app(io);
    sockact::asio_driver driver(io, act, start_session(io));
    c = client(port, got, send_sigterm);
    io.run();  // returns at the application's stop, the drain not over
    EXPECT_FALSE(driver.finished());
  }
  c.join();
  EXPECT_EQ(got, "") << "this shape cuts the request (the test shows what run() prevents)";
  EXPECT_TRUE(logged("error: the driver ends before the drain is over, 1 connection(s) open"));
}

// A stop for the application's own reason, with a request in flight on
// another connection: a graceful stop. A SIGTERM right after it is the same
// stop, not a second signal that would cut the drain.
TEST(AsioDriverRun, OutsideStopWithoutASignalDrains) {
  sockact::activation act = make_activation();
  const int port = port_of(act);
  std::string got, stopper;
  std::thread c, s;
  {
    net::io_context io;
    sockact::asio_driver driver(io, act, start_session(io));
    c = client(port, got, [] {});
    s = std::thread([port, &stopper] {
      std::this_thread::sleep_for(100ms);
      const int fd = connect_loopback(port);
      send_all(fd, "stop\n");
      std::this_thread::sleep_for(50ms);
      ::kill(::getpid(), SIGTERM);
      stopper = read_all(fd);
      ::close(fd);
    });
    EXPECT_TRUE(driver.run());
  }
  c.join();
  s.join();
  EXPECT_EQ(got, "done close\n");
  EXPECT_EQ(stopper, "done close\n");
  EXPECT_TRUE(logged("the io_context was stopped from outside the driver"));
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
}

// An outside stop while an idle drain waits for a silent client: the same
// stop as a first SIGTERM, so the listener closes (an idle drain keeps it
// open, and a new connection would resume serving) while the client's
// request, sent afterwards, is still answered.
TEST(AsioDriverRun, OutsideStopDuringAnIdleDrainClosesTheListener) {
  sockact::activation_config c;
  c.listen.address = "127.0.0.1:0";
  c = sockact_test::test_config(c, 300ms, 10s);
  c.lifecycle.new_connection_grace = 5s;  // the silent client may send late
  sockact::activation act = sockact::activate(c);
  const int port = port_of(act);
  std::string got;
  int late = -2;
  std::thread silent, stopper;
  {
    net::io_context io;
    sockact::asio_driver driver(io, act, start_session(io));
    silent = std::thread([port, &got] {
      const int fd = connect_loopback(port);
      for (int i = 0; i < 300 && !logged("stopped from outside"); ++i) std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(300ms);
      send_all(fd, "wait\n");
      got = read_all(fd);
      ::close(fd);
    });
    stopper = std::thread([port, &io, &late] {
      for (int i = 0; i < 300 && !logged("stopping (IDLE)"); ++i) std::this_thread::sleep_for(10ms);
      io.stop();
      for (int i = 0; i < 300 && !logged("stopped from outside"); ++i) std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(100ms);
      late = connect_loopback(port);
      if (late >= 0) ::close(late);
    });
    EXPECT_TRUE(driver.run());
  }
  silent.join();
  stopper.join();
  EXPECT_TRUE(logged("stopping (IDLE)"));
  EXPECT_TRUE(logged("the io_context was stopped from outside the driver"));
  EXPECT_LT(late, 0) << "the listener was still open after the outside stop";
  EXPECT_EQ(got, "done close\n");
}

TEST(AsioDriverRun, SeveralThreads) {
  sockact::activation act = make_activation();
  const int port = port_of(act);
  std::string got;
  std::thread c;
  {
    net::io_context io(4);
    app_signals app(io);
    sockact::asio_driver driver(io, act, start_session(io));
    std::atomic<int> done{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < 3; ++i) pool.emplace_back([&] { done += driver.run() ? 1 : 0; });
    c = client(port, got, send_sigterm);
    done += driver.run() ? 1 : 0;
    for (std::thread& t : pool) t.join();
    EXPECT_EQ(done.load(), 4) << "every thread's run() returns once the activation is done";
  }
  c.join();
  EXPECT_EQ(got, "done close\n");
}

}  // namespace
