// sockact::microhttpd_driver with a real libmicrohttpd daemon (a thread per
// connection, and an internal polling thread), a real listening TCP socket on
// 127.0.0.1 (bound by activate()) and real clients in threads: the idle exit
// ends run() and closes the listener and the idle keep-alive connection; a
// connection accepted before the idle deadline that sends its request during
// the drain is answered; SIGTERM lets a slow request finish, and a pipelined
// request MHD has already read is answered too, the last with `Connection:
// close`; a head that stops before its blank line is cut at HEADERS_TIMEOUT
// with the 408; SHUTDOWN_TIMEOUT makes run() return false; start() refuses a
// daemon without threads of its own, and a second one; from() names the
// socket; the server's own completion callback is called. Times are checked as
// order and lower bounds; upper bounds are loose. SPDX-License-Identifier: MIT
#include <sockact/microhttpd.hpp>  // first: the header is self-contained

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <microhttpd.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

std::mutex log_mutex;
std::vector<std::string> log_lines;
void capture_log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mutex);
  log_lines.push_back(line);
}
bool logged(const std::string& part) {
  std::lock_guard<std::mutex> lock(log_mutex);
  for (const std::string& l : log_lines)
    if (l.find(part) != std::string::npos) return true;
  return false;
}

sockact::activation_config config(ms idle, ms shutdown = 5000ms, const char* address = "127.0.0.1:0") {
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDNAMES");
  {
    std::lock_guard<std::mutex> lock(log_mutex);
    log_lines.clear();
  }
  sockact::activation_config c = sockact::activation_config::http(address);
  c.read_environment = false;
  c.lifecycle.idle_timeout = idle;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.shutdown_timeout = shutdown;
  c.lifecycle.new_connection_grace = 300ms;
  c.lifecycle.linger = 300ms;
  c.log = capture_log;
  return c;
}

sockact_test::owned_fd client(int port) {
  sockact_test::owned_fd fd(sockact_test::connect_loopback(port));
  const timeval tv{3, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}
void send_all(int fd, const std::string& s) {
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}
// Everything until EOF (or the 3 s timeout); `eof` says which.
std::string read_to_eof(int fd, bool* eof) {
  std::string in;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *eof = n == 0;
      return in;
    }
    in.append(buf, static_cast<std::size_t>(n));
  }
}
// One response with its Content-Length body.
std::string read_response(int fd) {
  std::string in;
  char buf[4096];
  for (;;) {
    const std::size_t head = in.find("\r\n\r\n");
    if (head != std::string::npos) {
      const std::size_t cl = in.find("Content-Length: ");
      const std::size_t length = cl < head ? std::strtoul(in.c_str() + cl + 16, nullptr, 10) : 0;
      if (in.size() >= head + 4 + length) return in;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in;
    in.append(buf, static_cast<std::size_t>(n));
  }
}
std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n";
}
int count(const std::string& s, const std::string& part) {
  int n = 0;
  for (std::size_t at = s.find(part); at != std::string::npos; at = s.find(part, at + 1)) ++n;
  return n;
}

// The routes: "/" names the socket, "/sleep/<ms>" answers after a sleep.
struct app {
  sockact::microhttpd_driver* driver = nullptr;
  std::atomic<int> completed{0};
};

MHD_Result answer(void* cls, MHD_Connection* connection, const char* url, const char*, const char*,
                  const char*, size_t* upload_data_size, void** con_cls) {
  app& a = *static_cast<app*>(cls);
  if (*con_cls == nullptr) {
    *con_cls = &a;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  const std::string path = url;
  std::string body = "not found";
  unsigned status = 404;
  if (path == "/") {
    const sockact::server_socket* from = a.driver->from(connection);
    body = "hello " + (from != nullptr ? from->name : std::string("?"));
    status = 200;
  } else if (path.rfind("/sleep/", 0) == 0) {
    std::this_thread::sleep_for(ms(std::strtol(path.c_str() + 7, nullptr, 10)));
    body = "slept";
    status = 200;
  }
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!a.driver->keep_alive(connection)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  const MHD_Result ret = MHD_queue_response(connection, status, r);
  MHD_destroy_response(r);
  return ret;
}

void completed(void* cls, MHD_Connection*, void**, MHD_RequestTerminationCode) {
  ++static_cast<app*>(cls)->completed;
}

constexpr unsigned per_connection =
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;

int port_of(sockact::activation& act, std::size_t i = 0) {
  return sockact_test::local_port(act.sockets().at(i).fd.get());
}

TEST(MicrohttpdDriver, IdleExitEndsRunAndClosesTheListenerAndIdleConnections) {
  for (const unsigned flags : {per_connection, unsigned{MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL}}) {
    sockact::activation act = sockact::activate(config(300ms));
    sockact::microhttpd_driver driver(act);  // before any thread: it blocks SIGTERM and SIGINT
    app a;
    a.driver = &driver;
    driver.on_completed(&completed, &a);
    ASSERT_NE(driver.start(flags, &answer, &a), nullptr);
    const int port = port_of(act);
    std::string got;
    bool eof = false;
    std::thread c([&] {
      sockact_test::owned_fd fd = client(port);
      send_all(fd.get(), get("/"));
      got = read_to_eof(fd.get(), &eof);  // keep-alive: then the drain's FIN
    });
    const auto t0 = steady::now();
    EXPECT_TRUE(driver.run());
    c.join();
    EXPECT_GE(steady::now() - t0, 300ms);
    EXPECT_NE(got.find("hello 127.0.0.1:"), std::string::npos) << got;
    EXPECT_TRUE(eof) << "the idle keep-alive connection gets a FIN";
    EXPECT_FALSE(act.sockets().at(0).fd) << "the listener is closed";
    EXPECT_TRUE(logged("stopping (IDLE)"));
    EXPECT_EQ(a.completed.load(), 1);
    EXPECT_EQ(act.connections(), 0u);
  }
}

TEST(MicrohttpdDriver, AConnectionAcceptedBeforeTheIdleDeadlineIsServedDuringTheDrain) {
  sockact::activation act = sockact::activate(config(200ms));
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  ASSERT_NE(driver.start(per_connection, &answer, &a), nullptr);
  const int port = port_of(act);
  std::string got;
  bool eof = false;
  std::thread c([&] {
    sockact_test::owned_fd fd = client(port);
    std::this_thread::sleep_for(320ms);  // past the deadline, within the grace for new connections
    send_all(fd.get(), get("/"));
    got = read_to_eof(fd.get(), &eof);
  });
  EXPECT_TRUE(driver.run());
  c.join();
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_TRUE(logged("stopping (IDLE), 1 connection(s) open"));
}

TEST(MicrohttpdDriver, SigtermLetsASlowRequestAndTheOneReadBehindItFinish) {
  sockact::activation act = sockact::activate(config(0ms));
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  ASSERT_NE(driver.start(per_connection, &answer, &a), nullptr);
  const int port = port_of(act);
  std::string got;
  bool eof = false;
  std::thread c([&] {
    sockact_test::owned_fd fd = client(port);
    send_all(fd.get(), get("/sleep/400") + get("/"));  // one segment: MHD reads both at once
    std::this_thread::sleep_for(100ms);
    ::kill(::getpid(), SIGTERM);
    got = read_to_eof(fd.get(), &eof);
  });
  const auto t0 = steady::now();
  EXPECT_TRUE(driver.run());
  c.join();
  EXPECT_GE(steady::now() - t0, 400ms);
  EXPECT_EQ(count(got, "HTTP/1.1 200"), 2) << got;
  EXPECT_EQ(count(got, "Connection: close"), 1) << got;
  EXPECT_TRUE(eof);
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
}

TEST(MicrohttpdDriver, AHeadWithoutItsBlankLineIsCutAtHeadersTimeout) {
  sockact::activation_config cfg = config(0ms);
  cfg.lifecycle.headers_timeout = 300ms;
  sockact::activation act = sockact::activate(cfg);
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  ASSERT_NE(driver.start(per_connection, &answer, &a), nullptr);
  const int port = port_of(act);
  std::string got;
  bool eof = false;
  ms took{};
  std::thread c([&] {
    sockact_test::owned_fd fd = client(port);
    const auto t0 = steady::now();
    send_all(fd.get(), "GET / HTTP/1.1\r\nHost: t\r\n");
    got = read_to_eof(fd.get(), &eof);
    took = std::chrono::duration_cast<ms>(steady::now() - t0);
    ::kill(::getpid(), SIGTERM);
  });
  EXPECT_TRUE(driver.run());
  c.join();
  EXPECT_NE(got.find("HTTP/1.1 408"), std::string::npos) << got;
  EXPECT_TRUE(eof);
  EXPECT_GE(took, 300ms);
}

TEST(MicrohttpdDriver, RunReturnsFalseWhenTheShutdownTimeoutCutsTheDrain) {
  sockact::activation act = sockact::activate(config(0ms, 200ms));
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  ASSERT_NE(driver.start(per_connection, &answer, &a), nullptr);
  const int port = port_of(act);
  std::thread c([&] {
    sockact_test::owned_fd fd = client(port);
    send_all(fd.get(), get("/sleep/700"));
    std::this_thread::sleep_for(50ms);
    ::kill(::getpid(), SIGTERM);
    bool eof = false;
    (void)read_to_eof(fd.get(), &eof);
  });
  const auto t0 = steady::now();
  EXPECT_FALSE(driver.run());
  const auto took = steady::now() - t0;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 700ms) << "cut at SHUTDOWN_TIMEOUT, not after the handler";
  c.join();
}  // the driver stops the daemon: MHD waits for the handler's thread

TEST(MicrohttpdDriver, FromNamesTheSocketOfEachConnection) {
  sockact::activation act = sockact::activate(config(0ms, 5000ms, "127.0.0.1:0,127.0.0.1:0"));
  ASSERT_EQ(act.sockets().size(), 2u);
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  ASSERT_NE(driver.start(per_connection, &answer, &a), nullptr);
  const int p0 = port_of(act, 0), p1 = port_of(act, 1);
  const std::string n0 = act.sockets()[0].name, n1 = act.sockets()[1].name;
  std::string a0, a1;
  std::thread c([&] {
    sockact_test::owned_fd f0 = client(p0), f1 = client(p1);
    send_all(f1.get(), get("/"));
    send_all(f0.get(), get("/"));
    a1 = read_response(f1.get());
    a0 = read_response(f0.get());
    ::kill(::getpid(), SIGINT);
  });
  EXPECT_TRUE(driver.run());
  c.join();
  EXPECT_NE(a0.find("hello " + n0), std::string::npos) << a0;
  EXPECT_NE(a1.find("hello " + n1), std::string::npos) << a1;
  EXPECT_TRUE(logged("stopping (SIGINT)"));
}

TEST(MicrohttpdDriver, StartRefusesADaemonWithoutThreadsAndASecondOne) {
  sockact::activation act = sockact::activate(config(0ms));
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  std::error_code ec;
  EXPECT_EQ(driver.start(ec, MHD_USE_EPOLL, &answer, &a), nullptr);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(logged("MHD_USE_INTERNAL_POLLING_THREAD"));
  EXPECT_NE(driver.start(ec, per_connection, &answer, &a, MHD_OPTION_CONNECTION_TIMEOUT, 10u), nullptr);
  EXPECT_FALSE(ec);
  EXPECT_EQ(driver.start(ec, per_connection, &answer, &a), nullptr);
  EXPECT_EQ(ec, std::errc::connection_already_in_progress);  // EALREADY
}

}  // namespace
