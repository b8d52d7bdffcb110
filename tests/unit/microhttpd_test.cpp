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

#include "driver_test_support.hpp"

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
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

sockact::activation_config config(ms idle, ms shutdown = 5000ms, const char* address = "127.0.0.1:0") {
  return sockact_test::test_config(sockact::activation_config::http(address), idle, shutdown);
}

// What a client read until EOF (or the 3 s timeout), whether it was EOF, and
// how long from its first send.
struct reply {
  std::string got;
  bool eof = false;
  ms took{};
};

// A client of `port` on a thread of its own: `talk(fd)` sends, then all that
// comes until EOF is read into `r`; `then()` after that.
template <class Talk>
std::thread client_thread(int port, reply& r, Talk talk, std::function<void()> then = nullptr) {
  return std::thread([port, &r, talk, then] {
    sockact_test::owned_fd fd = sockact_test::http_client(port);
    const auto t0 = steady::now();
    talk(fd.get());
    r.got = sockact_test::read_responses(fd.get(), 0, &r.eof);
    r.took = std::chrono::duration_cast<ms>(steady::now() - t0);
    if (then) then();
  });
}
std::string get(const std::string& path) {
  return sockact_test::http_get(path);
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

// An activation from `c`, its driver and the routes (with the completion
// callback), the daemon started with `flags`: null if start() failed.
struct served {
  sockact::activation act;
  sockact::microhttpd_driver driver;  // before any thread: it blocks SIGTERM and SIGINT
  app routes;
  MHD_Daemon* daemon = nullptr;
  explicit served(const sockact::activation_config& c, unsigned flags = per_connection)
      : act(sockact::activate(c)), driver(act) {
    routes.driver = &driver;
    driver.on_completed(&completed, &routes);
    daemon = driver.start(flags, &answer, &routes);
  }
  int port(std::size_t i = 0) { return port_of(act, i); }
};

TEST(MicrohttpdDriver, IdleExitEndsRunAndClosesTheListenerAndIdleConnections) {
  for (const unsigned flags : {per_connection, unsigned{MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL}}) {
    served s(config(300ms), flags);
    ASSERT_NE(s.daemon, nullptr);
    reply r;  // keep-alive: then the drain's FIN
    std::thread c = client_thread(s.port(), r, [](int fd) { sockact_test::send_all(fd, get("/")); });
    const auto t0 = steady::now();
    EXPECT_TRUE(s.driver.run());
    c.join();
    EXPECT_GE(steady::now() - t0, 300ms);
    EXPECT_NE(r.got.find("hello 127.0.0.1:"), std::string::npos) << r.got;
    EXPECT_TRUE(r.eof) << "the idle keep-alive connection gets a FIN";
    EXPECT_FALSE(s.act.sockets().at(0).fd) << "the listener is closed";
    EXPECT_TRUE(sockact_test::logged("stopping (IDLE)"));
    EXPECT_EQ(s.routes.completed.load(), 1);
    EXPECT_EQ(s.act.connections(), 0u);
  }
}

TEST(MicrohttpdDriver, AConnectionAcceptedBeforeTheIdleDeadlineIsServedDuringTheDrain) {
  served s(config(200ms));
  ASSERT_NE(s.daemon, nullptr);
  reply r;
  std::thread c = client_thread(s.port(), r, [](int fd) {
    std::this_thread::sleep_for(320ms);  // past the deadline, within the grace for new connections
    sockact_test::send_all(fd, get("/"));
  });
  EXPECT_TRUE(s.driver.run());
  c.join();
  EXPECT_NE(r.got.find("HTTP/1.1 200"), std::string::npos) << r.got;
  EXPECT_NE(r.got.find("Connection: close"), std::string::npos) << r.got;
  EXPECT_TRUE(sockact_test::logged("stopping (IDLE), 1 connection(s) open"));
}

TEST(MicrohttpdDriver, SigtermLetsASlowRequestAndTheOneReadBehindItFinish) {
  served s(config(0ms));
  ASSERT_NE(s.daemon, nullptr);
  reply r;
  std::thread c = client_thread(s.port(), r, [](int fd) {
    sockact_test::send_all(fd, get("/sleep/400") + get("/"));  // one segment: MHD reads both at once
    std::this_thread::sleep_for(100ms);
    ::kill(::getpid(), SIGTERM);
  });
  const auto t0 = steady::now();
  EXPECT_TRUE(s.driver.run());
  c.join();
  EXPECT_GE(steady::now() - t0, 400ms);
  EXPECT_EQ(count(r.got, "HTTP/1.1 200"), 2) << r.got;
  EXPECT_EQ(count(r.got, "Connection: close"), 1) << r.got;
  EXPECT_TRUE(r.eof);
  EXPECT_TRUE(sockact_test::logged("stopping (SIGTERM)"));
}

TEST(MicrohttpdDriver, AHeadWithoutItsBlankLineIsCutAtHeadersTimeout) {
  sockact::activation_config cfg = config(0ms);
  cfg.lifecycle.headers_timeout = 300ms;
  served s(cfg);
  ASSERT_NE(s.daemon, nullptr);
  reply r;
  std::thread c = client_thread(
      s.port(), r, [](int fd) { sockact_test::send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\n"); },
      [] { ::kill(::getpid(), SIGTERM); });
  EXPECT_TRUE(s.driver.run());
  c.join();
  EXPECT_NE(r.got.find("HTTP/1.1 408"), std::string::npos) << r.got;
  EXPECT_TRUE(r.eof);
  EXPECT_GE(r.took, 300ms);
}

TEST(MicrohttpdDriver, RunReturnsFalseWhenTheShutdownTimeoutCutsTheDrain) {
  served s(config(0ms, 200ms));
  ASSERT_NE(s.daemon, nullptr);
  reply r;
  std::thread c = client_thread(s.port(), r, [](int fd) {
    sockact_test::send_all(fd, get("/sleep/700"));
    std::this_thread::sleep_for(50ms);
    ::kill(::getpid(), SIGTERM);
  });
  const auto t0 = steady::now();
  EXPECT_FALSE(s.driver.run());
  const auto took = steady::now() - t0;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 700ms) << "cut at SHUTDOWN_TIMEOUT, not after the handler";
  c.join();
}  // the driver stops the daemon: MHD waits for the handler's thread

TEST(MicrohttpdDriver, FromNamesTheSocketOfEachConnection) {
  served s(config(0ms, 5000ms, "127.0.0.1:0,127.0.0.1:0"));
  ASSERT_EQ(s.act.sockets().size(), 2u);
  ASSERT_NE(s.daemon, nullptr);
  const int p0 = s.port(0), p1 = s.port(1);
  const std::string n0 = s.act.sockets()[0].name, n1 = s.act.sockets()[1].name;
  std::string a0, a1;
  std::thread c([&] {
    sockact_test::owned_fd f0 = sockact_test::http_client(p0), f1 = sockact_test::http_client(p1);
    sockact_test::send_all(f1.get(), get("/"));
    sockact_test::send_all(f0.get(), get("/"));
    a1 = sockact_test::read_responses(f1.get(), 1);
    a0 = sockact_test::read_responses(f0.get(), 1);
    ::kill(::getpid(), SIGINT);
  });
  EXPECT_TRUE(s.driver.run());
  c.join();
  EXPECT_NE(a0.find("hello " + n0), std::string::npos) << a0;
  EXPECT_NE(a1.find("hello " + n1), std::string::npos) << a1;
  EXPECT_TRUE(sockact_test::logged("stopping (SIGINT)"));
}

TEST(MicrohttpdDriver, StartRefusesADaemonWithoutThreadsAndASecondOne) {
  sockact::activation act = sockact::activate(config(0ms));
  sockact::microhttpd_driver driver(act);
  app a;
  a.driver = &driver;
  std::error_code ec;
  EXPECT_EQ(driver.start(ec, MHD_USE_EPOLL, &answer, &a), nullptr);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(sockact_test::logged("MHD_USE_INTERNAL_POLLING_THREAD"));
  EXPECT_NE(driver.start(ec, per_connection, &answer, &a, MHD_OPTION_CONNECTION_TIMEOUT, 10u), nullptr);
  EXPECT_FALSE(ec);
  EXPECT_EQ(driver.start(ec, per_connection, &answer, &a), nullptr);
  EXPECT_EQ(ec, std::errc::connection_already_in_progress);  // EALREADY
}

}  // namespace
