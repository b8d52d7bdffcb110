// sockact::httplib_server with the real cpp-httplib (Debian's libcpp-httplib):
// it drains without shutdown(2) on the socket, tracks each connection with its
// fd (idle keep-alive connections neither pin the idle exit nor the drain),
// answers half-closed and pipelining clients, bounds and checks request
// bodies, and gives threads held by idle clients to waiting ones.
// SPDX-License-Identifier: MIT
#include <sockact/httplib.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

bool sockact_thread_driver_second_tu(sockact::thread_driver& driver);

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sockact_test::connect_loopback;

sockact::activation make_activation(std::chrono::milliseconds idle, std::chrono::milliseconds shutdown) {
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  sockact::activation_config c = sockact::activation_config::http();
  c.read_environment = false;
  c.listen.address = "127.0.0.1:0";
  c.lifecycle.idle_timeout = idle;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.shutdown_timeout = shutdown;
  c.log = [](const std::string&) {};
  return sockact::activate(c);
}

// A client socket whose reads give up after 5 s.
int client(int port) {
  const int fd = connect_loopback(port);
  const timeval tv{5, 0};
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_text(int fd, const std::string& s) {
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

std::string get_request(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

// The number of whole responses (head and Content-Length body) at the front of `in`.
std::size_t responses_in(const std::string& in) {
  std::size_t n = 0, at = 0;
  for (;;) {
    const std::size_t end = in.find("\r\n\r\n", at);
    if (end == std::string::npos) return n;
    const std::size_t cl = in.find("Content-Length: ", at);
    const std::size_t len =
        cl == std::string::npos || cl > end ? 0 : std::strtoul(in.c_str() + cl + 16, nullptr, 10);
    if (in.size() < end + 4 + len) return n;
    ++n;
    at = end + 4 + len;
  }
}

// Reads until `want` whole responses arrived (0: until EOF); what came.
std::string read_responses(int fd, std::size_t want) {
  std::string in;
  char buf[4096];
  while (want == 0 || responses_in(in) < want) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in;
}

std::string get(int fd, const std::string& path) {
  send_text(fd, get_request(path));
  return read_responses(fd, 1);
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
  fixture(std::chrono::milliseconds idle, std::chrono::milliseconds shutdown, std::size_t threads = 0)
      : act(make_activation(idle, shutdown)), driver(act), svr(driver, 20ms) {
    sockact::server_socket& l = act.sockets().at(0);
    port = sockact_test::local_port(l.fd.get());
    manager_copy = ::fcntl(l.fd.get(), F_DUPFD_CLOEXEC, 3);  // what systemd keeps
    if (threads > 0) svr.set_thread_count(threads);
    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello\n", "text/plain");
    });
    svr.Get("/wait", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [this] { return release; });
      res.set_content("released\n", "text/plain");
    });
    svr.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(std::to_string(req.body.size()) + "\n", "text/plain");
    });
    server = std::thread([this, &l] { svr.serve(l); });
  }
  ~fixture() {
    let_go();
    driver.stop();
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
  const int fd = client(f.port);
  ASSERT_GE(fd, 0);
  EXPECT_NE(get(fd, "/").find("hello"), std::string::npos);
  std::thread c([&] {
    const std::string r = get(fd, "/wait");
    EXPECT_NE(r.find("released"), std::string::npos) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << "keep-alive while draining:\n" << r;
    EXPECT_TRUE(at_eof(fd));
    ::close(fd);
  });
  std::this_thread::sleep_for(200ms);
  f.driver.stop();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(f.driver.finished()) << "the drain must wait for the request in progress";
  f.let_go();
  c.join();
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

TEST(HttplibServer, AnIdleKeepAliveConnectionDoesNotPinTheIdleExit) {
  fixture f(300ms, 5000ms);  // cpp-httplib's keep-alive timeout: 5 s
  const int fd = client(f.port);
  ASSERT_GE(fd, 0);
  const std::string r = get(fd, "/");
  EXPECT_NE(r.find("hello"), std::string::npos);
  EXPECT_EQ(r.find("Connection: close"), std::string::npos) << r;
  const auto answered = steady::now();
  EXPECT_TRUE(at_eof(fd)) << "the idle drain closes the keep-alive connection";
  EXPECT_GE(steady::now() - answered, 250ms) << "closed before the idle timeout";
  EXPECT_LT(steady::now() - answered, 2s) << "closed by cpp-httplib's keep-alive timeout, not the idle drain";
  ::close(fd);
  EXPECT_TRUE(f.driver.wait_for(5s));
  EXPECT_TRUE(f.driver.wait());
  f.server.join();
  EXPECT_TRUE(still_listening(f.manager_copy));
}

TEST(HttplibServer, TheStopDrainClosesIdleKeepAliveConnectionsAtOnce) {
  fixture f(0ms, 10000ms);
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) {
    fds.push_back(client(f.port));
    ASSERT_GE(fds.back(), 0);
    EXPECT_NE(get(fds.back(), "/").find("hello"), std::string::npos);
  }
  std::this_thread::sleep_for(100ms);
  const auto t0 = steady::now();
  f.driver.stop();
  for (const int fd : fds) {
    EXPECT_TRUE(at_eof(fd));
    ::close(fd);
  }
  EXPECT_TRUE(f.driver.wait_for(3s));
  EXPECT_TRUE(f.driver.wait());
  EXPECT_LT(steady::now() - t0, 2s) << "the drain waited for the keep-alive timeout";
}

TEST(HttplibServer, AnswersAClientThatHalfClosedAfterItsRequests) {
  fixture f(0ms, 5000ms);
  for (int pipelined = 1; pipelined <= 2; ++pipelined) {
    const int fd = client(f.port);
    ASSERT_GE(fd, 0);
    std::string reqs;
    for (int i = 0; i < pipelined; ++i) reqs += get_request("/");
    send_text(fd, reqs);
    ::shutdown(fd, SHUT_WR);
    const std::string r = read_responses(fd, 0);
    EXPECT_EQ(responses_in(r), static_cast<std::size_t>(pipelined)) << r;
    ::close(fd);
  }
}

TEST(HttplibServer, AnswersPipelinedRequestsInOrder) {
  fixture f(0ms, 5000ms);
  const int fd = client(f.port);
  ASSERT_GE(fd, 0);
  for (int round = 0; round < 3; ++round) {
    send_text(fd, get_request("/") + get_request("/nothing") + get_request("/"));
    const std::string r = read_responses(fd, 3);
    ASSERT_EQ(responses_in(r), 3u) << r;
    const std::size_t a = r.find("200 OK"), b = r.find("404 Not Found"), c = r.find("200 OK", b);
    EXPECT_TRUE(a < b && b < c && c != std::string::npos) << r;
  }
  ::close(fd);
}

TEST(HttplibServer, BodiesAreBoundedAndChunkedBodiesChecked) {
  fixture f(0ms, 5000ms);
  struct {
    const char* name;
    std::string request;
    const char* status;
    bool closes;
  } cases[] = {
      {"Content-Length over the limit", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n",
       "413", true},
      {"conflicting Content-Length",
       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400", true},
      {"chunk size not hex",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5g\r\nhello\r\n0\r\n\r\n", "400",
       true},
      {"no CRLF after the data",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY\r\n0\r\n\r\n", "400",
       true},
      {"chunk size overflow",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
       "chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
       "413", true},
      {"no body without framing", "POST /echo HTTP/1.1\r\nHost: x\r\n\r\n", "200", false},
      {"a valid chunked body",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
       "200", false},
  };
  for (const auto& c : cases) {
    const int fd = client(f.port);
    ASSERT_GE(fd, 0);
    send_text(fd, c.request);
    const std::string r = read_responses(fd, 1);
    EXPECT_EQ(r.compare(0, 12, std::string("HTTP/1.1 ") + c.status), 0) << c.name << ":\n" << r;
    EXPECT_EQ(r.find("Connection: close") != std::string::npos, c.closes) << c.name << ":\n" << r;
    if (c.closes) {
      EXPECT_TRUE(at_eof(fd)) << c.name;
    }
    ::close(fd);
  }
}

TEST(HttplibServer, IdleKeepAliveConnectionsMakeWayForWaitingOnes) {
  fixture f(0ms, 5000ms, 2);  // two threads, each held by an idle keep-alive client
  const int a = client(f.port), b = client(f.port);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_NE(get(a, "/").find("hello"), std::string::npos);
  EXPECT_NE(get(b, "/").find("hello"), std::string::npos);
  const auto t0 = steady::now();
  const int c = client(f.port);
  ASSERT_GE(c, 0);
  EXPECT_NE(get(c, "/").find("hello"), std::string::npos);
  EXPECT_LT(steady::now() - t0, 2s) << "waited for cpp-httplib's keep-alive timeout (5 s)";
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST(HttplibServer, TheDrainAnswersAConnectionThatWaitedForAThread) {
  fixture f(0ms, 5000ms, 1);
  const int busy = client(f.port), queued = client(f.port);
  ASSERT_GE(busy, 0);
  ASSERT_GE(queued, 0);
  send_text(busy, get_request("/wait"));
  std::this_thread::sleep_for(100ms);
  send_text(queued, get_request("/"));  // the one thread is taken: it waits in the queue
  std::this_thread::sleep_for(100ms);
  f.driver.stop();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(f.driver.finished()) << "the drain must wait for the queued connection";
  f.let_go();
  for (const int fd : {busy, queued}) {
    const std::string r = read_responses(fd, 0);
    EXPECT_EQ(responses_in(r), 1u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    ::close(fd);
  }
  EXPECT_TRUE(f.driver.wait_for(5s));
  EXPECT_TRUE(f.driver.wait());
}

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
  const int fd = client(f.port);
  ASSERT_GE(fd, 0);
  std::thread c([&] { get(fd, "/wait"); });
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  f.driver.stop();
  EXPECT_FALSE(f.driver.wait()) << "a handler still ran at SHUTDOWN_TIMEOUT";
  EXPECT_GE(steady::now() - t0, 250ms);
  f.let_go();
  c.join();
  ::close(fd);
}

// The body checker on its own, fed one byte at a time as cpp-httplib's line reader takes them.
std::pair<std::size_t, sockact::detail::http_body::state> feed(sockact::detail::http_body& b,
                                                               const std::string& s) {
  std::size_t taken = 0;
  while (taken < s.size() && b.take(s.data() + taken, 1) == 1) ++taken;
  return {taken, b.current()};
}

TEST(HttplibBody, ChunkedIsCheckedByteByByte) {
  using state = sockact::detail::http_body::state;
  sockact::detail::http_body b;
  const std::string good = "5;name=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n";
  b.chunked(1 << 20);
  EXPECT_EQ(feed(b, good + "GET"), std::make_pair(good.size(), state::done)) << "stops at the next request";
  b.chunked(1 << 20);
  EXPECT_EQ(b.take(good.data(), good.size()), good.size()) << "the same, taken at once";
  EXPECT_TRUE(b.done());
  struct {
    const char* body;
    std::size_t taken;
    state st;
  } bad[] = {
      {"5g\r\n", 1, state::invalid},
      {"0x5\r\n", 1, state::invalid},
      {"-2\r\n", 0, state::invalid},
      {"\r\n", 0, state::invalid},
      {"5\nhello\r\n", 1, state::invalid},
      {"5\r\nhelloXY", 8, state::invalid},
      {"5\r\nhello\r\r", 9, state::invalid},
      {"0\r\nTrailer: x\r\n\r\n", 3, state::invalid},
      {"5\x01\r\n", 1, state::invalid},
      {"10000000000000000\r\n", 6, state::too_large},
      {"fffffffffffffffe\r\n", 5, state::too_large},
  };
  for (const auto& c : bad) {
    b.chunked(1 << 20);
    EXPECT_EQ(feed(b, c.body), std::make_pair(c.taken, c.st)) << c.body;
    EXPECT_EQ(b.take("\r\n", 2), 0u) << "a failed body takes nothing more";
  }
  b.chunked(10);
  EXPECT_EQ(feed(b, "6\r\nabcdef\r\n5\r\n").second, state::too_large) << "the sizes add up past the limit";
  b.chunked(10);
  EXPECT_EQ(feed(b, "6\r\nabcdef\r\n4\r\nabcd\r\n0\r\n\r\n").second, state::done) << "up to the limit";
}

TEST(HttplibBody, ContentLengthAndNone) {
  sockact::detail::http_body b;
  b.length(5);
  EXPECT_EQ(b.take("helloGET", 8), 5u);
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.take("GET", 3), 0u);
  b.length(0);
  EXPECT_TRUE(b.done());
  b.none();
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.take("x", 1), 0u);
}

TEST(HttplibServer, SecondTranslationUnitLinks) {
  sockact::activation act = make_activation(0ms, 1000ms);
  sockact::thread_driver driver(act);
  EXPECT_TRUE(sockact_thread_driver_second_tu(driver));
}

}  // namespace
