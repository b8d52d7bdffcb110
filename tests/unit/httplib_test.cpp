// sockact::httplib_server with the real cpp-httplib (Debian's libcpp-httplib):
// it drains without shutdown(2) on the socket, counts keep-alive connections,
// and says when SHUTDOWN_TIMEOUT cut the drain. SPDX-License-Identifier: MIT
#include <sockact/httplib.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

bool sockact_thread_driver_second_tu(sockact::thread_driver& driver);

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sockact_test::connect_loopback;

sockact::activation make_activation(std::chrono::milliseconds idle, std::chrono::milliseconds shutdown) {
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  sockact::activation_config c;
  c.read_environment = false;
  c.listen.address = "127.0.0.1:0";
  c.lifecycle.idle_timeout = idle;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.shutdown_timeout = shutdown;
  c.log = [](const std::string&) {};
  return sockact::activate(c);
}

// Sends a GET and reads one response (head and Content-Length body); "" at EOF.
std::string get(int fd, const std::string& path) {
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[1024];
  for (;;) {
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      const std::size_t cl = in.find("Content-Length: ");
      const std::size_t len = cl == std::string::npos ? 0 : std::strtoul(in.c_str() + cl + 16, nullptr, 10);
      if (in.size() >= end + 4 + len) return in;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in;
    in.append(buf, static_cast<std::size_t>(n));
  }
}

bool at_eof(int fd) {
  char c;
  return ::recv(fd, &c, 1, 0) == 0;
}

bool still_listening(int fd) {
  int on = 0;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on == 1;
}

struct fixture {
  fixture(std::chrono::milliseconds idle, std::chrono::milliseconds shutdown)
      : act(make_activation(idle, shutdown)), driver(act), svr(driver, 20ms) {
    sockact::server_socket& l = act.sockets().at(0);
    port = sockact_test::local_port(l.fd.get());
    manager_copy = ::fcntl(l.fd.get(), F_DUPFD_CLOEXEC, 3);  // what systemd keeps
    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello\n", "text/plain");
    });
    svr.Get("/wait", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [this] { return release; });
      res.set_content("released\n", "text/plain");
    });
    server = std::thread([this, &l] { svr.serve(l); });
  }
  ~fixture() {
    {
      std::lock_guard<std::mutex> lock(m);
      release = true;
    }
    cv.notify_all();
    if (server.joinable()) server.join();
    ::close(manager_copy);
  }
  void let_go() {
    {
      std::lock_guard<std::mutex> lock(m);
      release = true;
    }
    cv.notify_all();
  }

  sockact::activation act;
  sockact::thread_driver driver;
  sockact::httplib_server svr;
  int port = 0;
  int manager_copy = -1;
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::thread server;
};

TEST(HttplibServer, DrainAnswersWithConnectionCloseAndNeverShutsTheSocketDown) {
  fixture f(0ms, 5000ms);
  const int fd = connect_loopback(f.port);
  ASSERT_GE(fd, 0);
  EXPECT_NE(get(fd, "/").find("hello"), std::string::npos);
  std::thread client([&] {
    const std::string r = get(fd, "/wait");
    EXPECT_NE(r.find("released"), std::string::npos) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << "keep-alive while draining:\n" << r;
    ::close(fd);  // as clients do after Connection: close
  });
  std::this_thread::sleep_for(200ms);
  f.driver.stop();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(f.driver.finished()) << "the drain must wait for the connection";
  f.let_go();
  client.join();
  EXPECT_TRUE(f.driver.wait_for(5s));
  EXPECT_TRUE(f.driver.wait()) << "a clean end: every connection closed";
  f.server.join();  // serve() returned: the accept loop saw the closed listener
  EXPECT_TRUE(still_listening(f.manager_copy)) << "the listener was shut down";
  const int late = connect_loopback(f.port);
  EXPECT_GE(late, 0);
  const int accepted = ::accept4(f.manager_copy, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0) << "the next activation could not accept";
  if (accepted >= 0) ::close(accepted);
  if (late >= 0) ::close(late);
}

TEST(HttplibServer, AKeepAliveConnectionCountsUntilHttplibClosesIt) {
  fixture f(300ms, 5000ms);
  f.svr.set_keep_alive_timeout(1);
  const int fd = connect_loopback(f.port);
  ASSERT_GE(fd, 0);
  EXPECT_NE(get(fd, "/").find("hello"), std::string::npos);
  EXPECT_TRUE(at_eof(fd)) << "cpp-httplib's keep-alive timeout closes it";
  const auto closed = steady::now();
  EXPECT_TRUE(f.driver.wait_for(5s));
  EXPECT_GE(steady::now() - closed, 250ms) << "went idle while a connection was open";
  ::close(fd);
  f.server.join();
  EXPECT_TRUE(still_listening(f.manager_copy));
}

// sockact passes O_NONBLOCK sockets; cpp-httplib's accept loop retries EAGAIN
// at once unless it polls first (the idle interval).
TEST(HttplibServer, TheAcceptLoopDoesNotSpinOnANonBlockingSocket) {
  fixture f(0ms, 5000ms);
  ASSERT_NE(::fcntl(f.manager_copy, F_GETFL) & O_NONBLOCK, 0);
  std::this_thread::sleep_for(100ms);
  auto cpu = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
  };
  const long before = cpu();
  std::this_thread::sleep_for(1s);
  const long used_us = cpu() - before;
  EXPECT_LT(used_us, 30000) << "the idle server used " << used_us / 1000 << " ms of CPU in 1 s";
  f.driver.stop();
  EXPECT_TRUE(f.driver.wait_for(5s));
}

TEST(HttplibServer, ShutdownTimeoutCutsTheDrainAndSaysSo) {
  fixture f(0ms, 300ms);
  const int fd = connect_loopback(f.port);
  ASSERT_GE(fd, 0);
  std::thread client([&] { get(fd, "/wait"); });
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  f.driver.stop();
  EXPECT_FALSE(f.driver.wait()) << "a connection the library cannot close was open at SHUTDOWN_TIMEOUT";
  EXPECT_GE(steady::now() - t0, 250ms);
  f.let_go();
  client.join();
  ::close(fd);
}

TEST(HttplibServer, SecondTranslationUnitLinks) {
  sockact::activation act = make_activation(0ms, 1000ms);
  sockact::thread_driver driver(act);
  EXPECT_TRUE(sockact_thread_driver_second_tu(driver));
}

}  // namespace
