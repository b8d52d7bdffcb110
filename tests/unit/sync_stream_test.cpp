// thread_driver::serve(), thread_socket and sockact::sync_stream with real
// loopback clients: Beast's http::read/http::write unchanged on the stream,
// the accept loop that stops when the drain is final, the lingering close
// (FIN, then late bytes are discarded, not reset), a new client during an
// idle drain, the drain on SIGTERM, a cut drain, Accept=yes, and writes to a
// client that reset. Signals are raised only while a driver exists.
// SPDX-License-Identifier: MIT
#include <sockact/sync_stream.hpp>

#include "driver_test_support.hpp"

#include <gtest/gtest.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = sockact::asio_ns;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
using sockact_test::connect_loopback;

static_assert(beast::is_sync_read_stream<sockact::sync_stream>::value, "a Beast SyncReadStream");
static_assert(beast::is_sync_write_stream<sockact::sync_stream>::value, "a Beast SyncWriteStream");

using sockact_test::logged;
using sockact_test::read_all;
using sockact_test::read_line;
using sockact_test::send_all;

bool wait_logged(const std::string& part, ms limit = 5000ms) {
  const auto end = steady::now() + limit;
  while (!logged(part) && steady::now() < end) std::this_thread::sleep_for(5ms);
  return logged(part);
}

sockact::activation make_activation(ms idle, ms shutdown = 5000ms, ms linger = 2000ms) {
  sockact::activation_config c;
  c.listen.address = "127.0.0.1:0";
  c = sockact_test::test_config(std::move(c), idle, shutdown);
  c.lifecycle.linger = linger;
  return sockact::activate(c);
}

int port_of(sockact::activation& act) {
  return sockact_test::local_port(act.sockets().at(0).fd.get());
}

// The handler's protocol: "GET <ms>\n" is answered "done <ms>\n" after <ms>
// (or "done <ms> close\n" while draining, then the server's close).
// handlers_running counts it until its socket is unregistered and closed.
std::atomic<int> handlers_running{0};
void line_session(sockact::thread_socket& s) {
  ++handlers_running;
  sockact_test::serve_lines(s.fd(), s.connection(),
                            [&s](const std::string& out) { return s.write(out.data(), out.size()) >= 0; });
  s.reset();
  --handlers_running;
}

void wait_handlers_done() {
  const auto end = steady::now() + 10s;
  while (handlers_running.load() > 0 && steady::now() < end) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(handlers_running.load(), 0) << "a connection's thread is still running";
}

// serve() on a thread of the test's, and its result.
struct server {
  explicit server(sockact::thread_driver& d)
      : thread([this, &d] {
          result = d.serve([](sockact::thread_socket s, const sockact::server_socket&) { line_session(s); })
                       ? 1
                       : 0;
        }) {}
  ~server() {
    if (thread.joinable()) thread.join();
  }
  bool join() {
    thread.join();
    return result.load() == 1;
  }
  std::atomic<int> result{-1};
  std::thread thread;
};

TEST(SyncStream, BeastReadsAndWritesUnchanged) {
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  std::atomic<int> answered{0};
  std::thread serving([&] {
    EXPECT_TRUE(driver.serve([&](sockact::sync_stream stream, const sockact::server_socket& from) {
      beast::flat_buffer buffer;
      beast::error_code ec;
      for (;;) {
        http::request<http::string_body> req;
        http::read(stream, buffer, req, ec);
        if (ec) break;
        stream.connection()->request_received();
        http::response<http::string_body> res(http::status::ok, 11);
        res.body() = std::string(req.target()) + " " + std::string(req.body()) + " from " + from.name;
        res.prepare_payload();
        res.keep_alive(req.keep_alive() && stream.connection()->keep_alive(buffer.size()));
        http::write(stream, res, ec);
        if (ec) break;
        ++answered;
        stream.connection()->response_sent(buffer.size());
        if (!res.keep_alive()) break;
      }
      EXPECT_EQ(ec, http::error::end_of_stream) << ec.message();
      stream.close();
    }));
  });
  const int fd = connect_loopback(port_of(act));
  ASSERT_GE(fd, 0);
  // Two pipelined requests, the second with a body, in pieces.
  send_all(fd, "GET /one HTTP/1.1\r\nHost: t\r\n\r\nPOST /two HTTP/1.1\r\nHost: t\r\nContent-Le");
  std::this_thread::sleep_for(50ms);
  send_all(fd, "ngth: 4\r\n\r\nbo");
  std::this_thread::sleep_for(50ms);
  send_all(fd, "dy");
  ::shutdown(fd, SHUT_WR);
  const std::string got = read_all(fd);
  EXPECT_NE(got.find("/one  from 127.0.0.1:"), std::string::npos) << got;
  EXPECT_NE(got.find("/two body from 127.0.0.1:"), std::string::npos) << got;
  EXPECT_EQ(answered.load(), 2);
  ::close(fd);
  driver.stop();
  serving.join();
  EXPECT_EQ(act.connections(), 0u);
}

TEST(SyncStream, ReadSomeWriteSomeAndEof) {
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  std::thread serving([&] {
    driver.serve([](sockact::sync_stream stream) {
      std::string line;
      net::read_until(stream, net::dynamic_buffer(line), '\n');  // Asio's own sync algorithm
      // Several buffers in one write_some (sendmsg), empty ones skipped.
      const std::array<net::const_buffer, 3> parts{net::buffer("got ", 4), net::const_buffer(),
                                                   net::buffer(line)};
      EXPECT_EQ(stream.write_some(parts), 4 + line.size());
      std::array<char, 16> buf{};
      sockact::asio_error_code ec;
      EXPECT_EQ(stream.read_some(net::buffer(buf), ec), 0u);
      EXPECT_EQ(ec, net::error::eof) << ec.message();
      EXPECT_EQ(stream.read_some(net::mutable_buffer(), ec), 0u) << "an empty buffer reads nothing";
      EXPECT_FALSE(ec);
#if SOCKACT_HAS_EXCEPTIONS
      EXPECT_THROW(stream.read_some(net::buffer(buf)), std::exception) << "the throwing overload";
#endif
      stream.close();
    });
  });
  const int fd = connect_loopback(port_of(act));
  ASSERT_GE(fd, 0);
  send_all(fd, "hello\n");
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_all(fd), "got hello\n");
  ::close(fd);
  driver.stop();
  serving.join();
}

// A pooled keep-alive client at an idle drain: FIN; what it sends after that
// is read and discarded (no reset); a new client meanwhile is served by this
// process, and the drain ends once both are done.
TEST(ThreadDriverServe, IdleCloseLingersAndANewClientResumesServing) {
  sockact::activation act = make_activation(300ms);
  sockact::thread_driver driver(act);
  server srv(driver);
  const int port = port_of(act);
  const int pooled = connect_loopback(port);
  ASSERT_GE(pooled, 0);
  send_all(pooled, "GET 0\n");
  EXPECT_EQ(read_line(pooled), "done 0");
  EXPECT_TRUE(wait_logged("stopping (IDLE)"));
  EXPECT_EQ(read_line(pooled), "") << "the idle keep-alive connection gets a FIN";
  send_all(pooled, "GET 0\n");  // crosses the FIN: discarded by the linger
  std::this_thread::sleep_for(100ms);
  const sockact_test::tcp_condition crossed = sockact_test::tcp_condition_of(pooled);
  EXPECT_EQ(crossed.error, 0) << "reset: " << std::strerror(crossed.error);
  EXPECT_NE(crossed.state, TCP_CLOSE) << "reset";
  EXPECT_FALSE(driver.finished()) << "the linger holds the idle drain open";
  EXPECT_FALSE(driver.listeners_closed()) << "an idle drain keeps the listeners";
  const int fresh = connect_loopback(port);
  ASSERT_GE(fresh, 0);
  send_all(fresh, "GET 0\n");
  EXPECT_EQ(read_line(fresh), "done 0") << "served with keep-alive by this process";
  EXPECT_TRUE(wait_logged("a new connection during the idle drain: serving again"));
  ::close(pooled);  // its FIN ends the linger; its thread returns
  ::close(fresh);
  EXPECT_TRUE(srv.join()) << "serve() ends once the drain is over and the threads are done";
  EXPECT_TRUE(driver.listeners_closed());
  EXPECT_EQ(act.connections(), 0u);
  wait_handlers_done();
}

// A client that keeps its connection and sends nothing: the read side is
// shut when the linger is over, so its thread returns and the process exits.
TEST(ThreadDriverServe, LingerEndsForAClientThatNeverCloses) {
  sockact::activation act = make_activation(200ms, 5000ms, 400ms);
  sockact::thread_driver driver(act);
  server srv(driver);
  const int silent = connect_loopback(port_of(act));
  ASSERT_GE(silent, 0);
  send_all(silent, "GET 0\n");
  EXPECT_EQ(read_line(silent), "done 0");
  const auto t0 = steady::now();
  EXPECT_TRUE(srv.join());
  EXPECT_LT(steady::now() - t0, 3s) << "waited beyond idle + linger";
  EXPECT_GE(steady::now() - t0, 550ms) << "did not linger (IDLE_TIMEOUT 200 ms + linger 400 ms)";
  EXPECT_EQ(read_line(silent), "");
  ::close(silent);
  wait_handlers_done();
}

TEST(ThreadDriverServe, SigtermLetsTheRequestInFlightFinish) {
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  server srv(driver);
  const int port = port_of(act);
  // The manager's copy of the listening socket: it must still listen afterwards.
  const int manager_copy = ::fcntl(act.sockets().at(0).fd.get(), F_DUPFD_CLOEXEC, 3);
  const int busy = connect_loopback(port);
  ASSERT_GE(busy, 0);
  send_all(busy, "GET 600\n");
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  EXPECT_EQ(read_line(busy), "done 600 close");
  EXPECT_EQ(read_line(busy), "");
  ::close(busy);  // ends the server's lingering close at once
  EXPECT_TRUE(srv.join());
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
  // Closed in place, never shut down: the manager's copy still takes clients.
  const int late = connect_loopback(sockact_test::local_port(manager_copy));
  EXPECT_GE(late, 0) << "connect refused: the listener was shut down";
  ::close(late);
  ::close(manager_copy);
  wait_handlers_done();
}

// A handler that does not return when its connection is closed under it
// (a sleep, a computation): the drain is cut at the second signal, and
// serve() says so rather than waiting for the thread.
TEST(ThreadDriverServe, SecondSignalCutsAndServeSaysSo) {
  sockact::activation act = make_activation(0ms, 30000ms);
  sockact::thread_driver driver(act);
  std::atomic<bool> release{false};
  std::atomic<bool> handler_done{false};
  std::atomic<int> serve_result{-1};
  std::thread serving([&] {
    serve_result = driver.serve([&](sockact::thread_socket s) {
      char c = 0;
      (void)s.read(&c, 1);
      s.connection()->request_received();
      while (!release.load()) std::this_thread::sleep_for(5ms);  // does not look at the socket
      s.reset();
      handler_done = true;
    })
                       ? 1
                       : 0;
  });
  const sockact_test::two_signals sig =
      sockact_test::sigint_twice_in_flight(driver, port_of(act), "x", 150ms, 200ms);
  const int fd = sig.fd;
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sig.sent);
  EXPECT_TRUE(sig.running_after_first) << "the first signal must drain, not stop";
  EXPECT_EQ(read_line(fd), "") << "the request in flight is cut, with a FIN";
  const auto end = steady::now() + 5s;
  while (serve_result.load() < 0 && steady::now() < end) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(serve_result.load(), 0) << "cut with a connection's thread still running: false, as wait()";
  EXPECT_LT(steady::now() - sig.second, 2s);
  release = true;
  serving.join();
  while (!handler_done.load()) std::this_thread::sleep_for(5ms);
  ::close(fd);
}

// Accept=yes: the manager's one connection is served the same way; then the
// drain begins by itself.
TEST(ThreadDriverServe, AcceptYesConnection) {
  sockact_test::clear_slots_once();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  sockact_test::owned_fd client(pair[0]);  // both moved above the slots
  sockact_test::owned_fd server_side(pair[1]);
  {
    sockact_test::passed_fds passed({server_side.get()});
    server_side.reset();
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::unsetenv("LISTEN_FDNAMES");
    sockact::activation_config c;
    c.read_environment = false;
    c.log = sockact_test::capture_log;
    sockact::activation act = sockact::activate(c);
    ASSERT_EQ(act.sockets().size(), 1u);
    sockact::thread_driver driver(act);
    std::thread serving([&] {
      EXPECT_TRUE(
          driver.serve([](sockact::thread_socket s, const sockact::server_socket&) { line_session(s); }));
    });
    send_all(client.get(), "GET 0\nGET 0\n");
    EXPECT_EQ(read_line(client.get()), "done 0");
    EXPECT_EQ(read_line(client.get()), "done 0");
    ::shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(read_line(client.get()), "");
    serving.join();
    EXPECT_TRUE(driver.finished());
  }
  for (const char* v : sockact_test::listen_variables) ::unsetenv(v);
  wait_handlers_done();
}

// A write to a client that reset fails (EPIPE or ECONNRESET) instead of
// killing the process with SIGPIPE.
TEST(ThreadSocket, WriteToAResetClientFails) {
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  std::atomic<int> write_errno{0};
  std::thread serving([&] {
    driver.serve([&](sockact::thread_socket s) {
      char c = 0;
      (void)s.read(&c, 1);
      std::this_thread::sleep_for(200ms);  // meanwhile the client resets
      const std::string big(1 << 20, 'x');
      for (int i = 0; i < 8; ++i)
        if (s.write(big.data(), big.size()) < 0) {
          write_errno = errno;
          break;
        }
    });
  });
  const int fd = connect_loopback(port_of(act));
  ASSERT_GE(fd, 0);
  send_all(fd, "x");
  std::this_thread::sleep_for(50ms);
  const ::linger zero{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &zero, sizeof zero);
  ::close(fd);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(write_errno == EPIPE || write_errno == ECONNRESET) << std::strerror(write_errno);
  driver.stop();
  serving.join();
}

}  // namespace
