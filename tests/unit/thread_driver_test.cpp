// The thread driver with a real thread-per-connection server: blocking reads,
// an accept loop that polls its listener, real loopback clients, a real unix
// datagram socket as NOTIFY_SOCKET. SPDX-License-Identifier: MIT
#include <sockact/thread_driver.hpp>

#include "driver_test_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

bool sockact_thread_driver_second_tu(sockact::thread_driver& driver);

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
using sockact_test::connect_loopback;

using sockact_test::capture_log;
using sockact_test::logged;
using sockact_test::read_line;
using sockact_test::send_all;

sockact::activation make_activation(ms idle, ms shutdown = 5000ms) {
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDNAMES");
  sockact_test::clear_log();
  sockact::activation_config c;
  c.read_environment = false;
  c.listen.address = "127.0.0.1:0";
  c.lifecycle.idle_timeout = idle;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.shutdown_timeout = shutdown;
  c.lifecycle.new_connection_grace = 300ms;
  c.lifecycle.linger = 500ms;
  c.log = capture_log;
  return sockact::activate(c);
}

// A blocking thread-per-connection server. Protocol: the client sends
// "GET <ms>\n"; the server waits <ms> (or until the connection is closed
// under it) and answers "done <ms>\n", or "done <ms> close\n" when it will
// close the connection (draining).
class blocking_server {
 public:
  blocking_server(sockact::activation& act, sockact::thread_driver& driver) : driver_(driver) {
    for (sockact::server_socket& l : act.sockets()) fd_ = l.fd.get();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~blocking_server() { join(); }
  void join() {
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }
  int port() const { return sockact_test::local_port(fd_); }
  int listening_fd() const { return fd_; }
  std::atomic<int> accept_error{0};
  std::atomic<bool> stopped_by_driver{false};

 private:
  void accept_loop() {
    for (;;) {
      if (driver_.listeners_closed()) {  // the fd is the driver's placeholder now
        stopped_by_driver = true;
        return;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;  // the timeout lets the drain be noticed
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
        accept_error = errno;
        return;
      }
      sockact::thread_connection conn = driver_.track(c);
      std::lock_guard<std::mutex> lock(mutex_);
      threads_.emplace_back([c, conn = std::move(conn)]() mutable { serve(c, conn); });
    }
  }

  static void serve(int c, sockact::thread_connection& conn) {
    sockact_test::serve_lines(c, conn, [c](const std::string& out) {
      send_all(c, out);
      return true;
    });
    conn.reset();  // before close(): the driver never touches a reused number
    ::close(c);
  }

  sockact::thread_driver& driver_;
  int fd_ = -1;
  std::thread accept_thread_;
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

// A client of `port` that has sent `request`; -1 if it could not connect.
int client_sent(int port, const std::string& request) {
  const int fd = connect_loopback(port);
  if (fd >= 0) send_all(fd, request);
  return fd;
}

// make_activation(idle, shutdown), its thread_driver and a blocking_server on it.
struct served {
  sockact::activation act;
  sockact::thread_driver driver;
  blocking_server server;
  explicit served(ms idle, ms shutdown = 5000ms)
      : act(make_activation(idle, shutdown)), driver(act), server(act, driver) {}
  // A keep-alive client whose "GET 0" was answered "done 0"; -1 if it was not.
  int answered_client() {
    const int fd = client_sent(server.port(), "GET 0\n");
    if (fd >= 0 && read_line(fd) == "done 0") return fd;
    if (fd >= 0) ::close(fd);
    return -1;
  }
  // The client `fd` closes; whether the driver then finished within 5 s. The server's threads are joined.
  bool close_and_finish(int fd) {
    ::close(fd);
    const bool finished = driver.wait_for(5s);
    server.join();
    return finished;
  }
};

// Closed, not shut down: the socket still listens through the manager's
// copy, and a client that connects now waits there for the next start.
void expect_still_listening(int manager_copy) {
  int listening = 0;
  socklen_t len = sizeof listening;
  ASSERT_EQ(::getsockopt(manager_copy, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1);
  const int late = connect_loopback(sockact_test::local_port(manager_copy));
  EXPECT_GE(late, 0) << "connect refused: the listener was shut down";
  const int accepted = ::accept4(manager_copy, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0) << std::strerror(errno);
  if (accepted >= 0) ::close(accepted);
  if (late >= 0) ::close(late);
}

TEST(ThreadDriver, IdleExitWithSeveralBlockingClients) {
  served s(400ms);
  // The manager's copy of the listening socket: it must still listen afterwards.
  const int manager_copy = ::fcntl(s.server.listening_fd(), F_DUPFD_CLOEXEC, 3);
  const int port = s.server.port();

  constexpr std::size_t clients = 4;
  std::vector<std::thread> threads;
  std::vector<std::string> got(clients);
  std::atomic<long long> last_answer_ms{0};
  for (std::size_t i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      const int fd = connect_loopback(port);
      if (fd < 0) return;
      for (int r = 0; r < 3; ++r) {
        send_all(fd, "GET 50\n");
        got[i] += read_line(fd) + ";";
        last_answer_ms = std::chrono::duration_cast<ms>(steady::now().time_since_epoch()).count();
      }
      got[i] += "[" + read_line(fd) + "]";  // idle keep-alive: waits for the server to close it
      ::close(fd);
    });
  EXPECT_TRUE(s.driver.wait_for(10s)) << "did not exit when idle";
  const long long done_ms = std::chrono::duration_cast<ms>(steady::now().time_since_epoch()).count();
  for (std::thread& t : threads) t.join();
  s.server.join();

  for (std::size_t i = 0; i < clients; ++i) EXPECT_EQ(got[i], "done 50;done 50;done 50;[]") << "client " << i;
  EXPECT_GE(done_ms - last_answer_ms.load(), 400) << "exited before IDLE_TIMEOUT";
  EXPECT_TRUE(logged("stopping (IDLE)"));
  EXPECT_EQ(s.act.connections(), 0u);
  EXPECT_TRUE(s.server.stopped_by_driver.load());
  EXPECT_EQ(s.server.accept_error.load(), 0) << std::strerror(s.server.accept_error.load());

  expect_still_listening(manager_copy);
  ::close(manager_copy);
}

// A connection the server's own accept loop takes while an idle drain runs
// (held in it by a silent client's grace period) ends the drain: it is served
// with keep-alive, and the process goes idle again later.
TEST(ThreadDriver, ConnectionDuringTheIdleDrainResumesServing) {
  served s(300ms);
  const int silent = connect_loopback(s.server.port());  // keeps the drain open for its grace (300 ms)
  ASSERT_GE(silent, 0);
  const auto end = steady::now() + 3s;
  while (!logged("stopping (IDLE)") && steady::now() < end) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(logged("stopping (IDLE)"));
  EXPECT_FALSE(s.server.stopped_by_driver.load()) << "an idle drain keeps the listener";
  const int fresh = connect_loopback(s.server.port());
  ASSERT_GE(fresh, 0);
  send_all(fresh, "GET 0\n");
  EXPECT_EQ(read_line(fresh), "done 0") << "served with keep-alive, as when serving";
  // Said by the driver's thread when it next looks (within 20 ms while draining).
  const auto said_by = steady::now() + 2s;
  while (!logged("serving again") && steady::now() < said_by) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(logged("a new connection during the idle drain: serving again"));
  EXPECT_FALSE(s.driver.finished());
  send_all(fresh, "GET 0\n");
  EXPECT_EQ(read_line(fresh), "done 0");
  EXPECT_EQ(read_line(silent), "") << "the silent client is closed after its grace";
  EXPECT_EQ(read_line(fresh), "") << "idle again: the keep-alive connection is closed";
  EXPECT_TRUE(s.driver.wait_for(5s)) << "did not exit when idle again";
  s.server.join();
  EXPECT_TRUE(s.server.stopped_by_driver.load()) << "the listener closes once the drain is final";
  ::close(silent);
  ::close(fresh);
}

TEST(ThreadDriver, SigtermLetsTheRequestInFlightFinish) {
  served s(0ms);
  const int fd = connect_loopback(s.server.port());
  ASSERT_GE(fd, 0);
  const int idle = connect_loopback(s.server.port());  // an idle keep-alive connection: closed at once
  ASSERT_GE(idle, 0);
  send_all(idle, "GET 0\n");
  EXPECT_EQ(read_line(idle), "done 0");
  send_all(fd, "GET 800\n");
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  EXPECT_EQ(read_line(idle), "") << "the idle connection was not closed with a FIN";
  EXPECT_LT(steady::now() - t0, 500ms) << "the idle connection was closed late";
  EXPECT_EQ(read_line(fd), "done 800 close");
  EXPECT_EQ(read_line(fd), "");
  // The idle connection's thread was woken (its client still holds it open).
  EXPECT_TRUE(s.driver.wait_for(2s)) << "the drain waited for a thread blocked in read()";
  EXPECT_GE(steady::now() - t0, 550ms) << "did not wait for the request";
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
  ::close(fd);
  ::close(idle);
  s.server.join();
}

TEST(ThreadDriver, SecondSignalClosesEverything) {
  served s(0ms, 30000ms);
  const sockact_test::two_signals sig =
      sockact_test::sigint_twice_in_flight(s.driver, s.server.port(), "GET 8000\n", 200ms, 300ms);
  const int fd = sig.fd;
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sig.sent);
  EXPECT_TRUE(sig.running_after_first) << "the first signal must drain, not stop";
  EXPECT_TRUE(s.driver.wait_for(3s));
  EXPECT_EQ(read_line(fd), "") << "the request in flight must be cut, with a FIN";
  EXPECT_LT(steady::now() - sig.second, 2s);
  ::close(fd);
  s.server.join();
}

TEST(ThreadDriver, StopFromAnotherThreadAndOnStop) {
  sockact::activation act = make_activation(0ms);
  std::atomic<int> on_stop_calls{0};
  sockact::thread_driver driver(act, [&] { ++on_stop_calls; });
  blocking_server server(act, driver);
  const int manager_copy = ::fcntl(server.listening_fd(), F_DUPFD_CLOEXEC, 3);
  std::thread([&] { driver.stop(); }).join();
  EXPECT_TRUE(driver.wait_for(5s));
  server.join();
  EXPECT_EQ(on_stop_calls.load(), 1);
  // The driver's fd is a placeholder now; the socket itself never saw shutdown(2).
  int listening = 0;
  socklen_t len = sizeof listening;
  ::getsockopt(server.listening_fd(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  EXPECT_EQ(listening, 0);
  expect_still_listening(manager_copy);
  ::close(manager_copy);
}

// The response the server wrote before its own close() reaches the client
// even though the client keeps sending: the lingering close, no reset.
TEST(ThreadDriver, AppCloseKeepsTheLingeringClose) {
  served s(0ms);
  const int fd = client_sent(s.server.port(), "GET 300\n");
  ASSERT_GE(fd, 0);
  std::this_thread::sleep_for(100ms);
  s.driver.stop();  // draining: the answer says close, and the server closes
  std::this_thread::sleep_for(400ms);
  send_all(fd, std::string(4096, 'x'));  // after the server's FIN: read and discarded, not reset
  EXPECT_EQ(read_line(fd), "done 300 close");
  EXPECT_EQ(read_line(fd), "");
  EXPECT_TRUE(s.close_and_finish(fd));
}

// The idle close at the drain of a connection registered with track() (as
// cpp-httplib's are) lingers as serve()'s do: a request that crosses the FIN
// is read and discarded, not answered with a reset, and the server's thread
// returns once the client closes. (It used to shut the read side at once.)
TEST(ThreadDriver, TrackedIdleCloseLingers) {
  served s(0ms);
  const int fd = s.answered_client();
  ASSERT_GE(fd, 0) << "GET 0 was not answered";
  s.driver.stop();
  EXPECT_EQ(read_line(fd), "") << "the FIN of the idle close";
  std::this_thread::sleep_for(100ms);
  send_all(fd, "GET 0\n");  // a request that crossed the FIN
  std::this_thread::sleep_for(100ms);
  const sockact_test::tcp_condition crossed = sockact_test::tcp_condition_of(fd);
  const int err = crossed.error;
  EXPECT_EQ(err, 0) << "reset: " << std::strerror(err);
  EXPECT_EQ(crossed.state, TCP_CLOSE_WAIT) << "read and discarded while the close lingers";
  EXPECT_FALSE(s.driver.finished()) << "a lingering close keeps the drain open";
  EXPECT_TRUE(s.close_and_finish(fd));
}

// A client that neither sends nor closes after the idle close: once the
// linger is over the read side is shut, which wakes the blocked read.
TEST(ThreadDriver, TrackedIdleCloseEndsAfterTheLinger) {
  served s(0ms);
  const int fd = s.answered_client();
  ASSERT_GE(fd, 0) << "GET 0 was not answered";
  const auto t0 = steady::now();
  s.driver.stop();
  EXPECT_TRUE(s.driver.wait_for(5s));
  EXPECT_GE(steady::now() - t0, 400ms) << "before the linger (500 ms) was over";
  s.server.join();
  ::close(fd);
}

// A framework that hides its sockets: each connection as one counted task.
TEST(ThreadDriver, CountedTaskKeepsItBusyAndTheDrainWaitsForIt) {
  sockact::activation act = make_activation(300ms);
  sockact::thread_driver driver(act);
  std::this_thread::sleep_for(100ms);
  std::function<void()> task = driver.counted([] { std::this_thread::sleep_for(700ms); });
  EXPECT_EQ(act.connections(), 1u) << "counted from the moment it is made (accept), not when it runs";
  std::thread worker(task);
  worker.join();
  const auto ended = steady::now();
  EXPECT_EQ(act.connections(), 0u);
  EXPECT_FALSE(driver.finished()) << "went idle while the task ran";
  EXPECT_TRUE(driver.wait_for(5s));
  EXPECT_GE(steady::now() - ended, 300ms) << "exited before IDLE_TIMEOUT after the task";
  EXPECT_TRUE(driver.wait()) << "every connection closed: a clean end";
}

TEST(ThreadDriver, ShutdownTimeoutCutsCountedTasks) {
  sockact::activation act = make_activation(0ms, 400ms);
  sockact::thread_driver driver(act);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::thread worker(driver.counted([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return release; });
  }));
  const auto t0 = steady::now();
  driver.stop();
  EXPECT_FALSE(driver.wait()) << "the library cannot close a counted task: the drain must say it was cut";
  EXPECT_GE(steady::now() - t0, 350ms);
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  worker.join();
}

// A stand-in for the manager's notify socket.
class notify_socket {
 public:
  notify_socket() {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string name = "sockact-thread-driver-" + std::to_string(::getpid());
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  }
  ~notify_socket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
  }
  std::string next() {
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? "(nothing)" : std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
};

TEST(ThreadDriver, ReadyWatchdogStopping) {
  notify_socket manager;
  ::setenv("WATCHDOG_USEC", "100000", 1);  // pings every 50 ms
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  std::vector<std::string> got;
  const auto t0 = steady::now();
  while (steady::now() - t0 < 300ms) got.push_back(manager.next());
  driver.stop();
  EXPECT_TRUE(driver.wait_for(5s));
  for (int i = 0; i < 20; ++i) {
    got.push_back(manager.next());
    if (got.back().rfind("STOPPING=1", 0) == 0 || got.back() == "(nothing)") break;
  }
  ASSERT_FALSE(got.empty());
  int ready = 0, pings = 0, stopping = 0;
  for (const std::string& m : got) {
    ready += m.rfind("READY=1", 0) == 0;
    pings += m == "WATCHDOG=1";
    stopping += m.rfind("STOPPING=1", 0) == 0;
  }
  EXPECT_EQ(ready, 1);
  EXPECT_EQ(got.front().rfind("READY=1", 0), 0u) << got.front();
  EXPECT_GE(pings, 3) << "pings at half of WATCHDOG_USEC";
  EXPECT_EQ(stopping, 1);
}

TEST(ThreadDriver, SecondTranslationUnitLinks) {
  sockact::activation act = make_activation(0ms);
  sockact::thread_driver driver(act);
  EXPECT_TRUE(sockact_thread_driver_second_tu(driver));
  EXPECT_EQ(act.connections(), 0u);
}

}  // namespace
