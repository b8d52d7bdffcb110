// asio_lifecycle_driver: idle exit, graceful shutdown on SIGTERM/SIGINT and
// the notify protocol, with a real io_context, a real acceptor on 127.0.0.1
// and real POSIX clients in a second thread. Built once per Asio flavour.
//
// Timings: the tests assert order and outcomes, and lower bounds (never exit
// before the timeout); upper bounds only where several seconds separate the
// right outcome from the wrong one. Signals are raised only after start().
#include <sockact/asio.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;
using namespace std::chrono_literals;
using sockact::asio_error_code;
using sockact::lifecycle_actions;
using sockact_test::check;
using sockact_test::owned_fd;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// How long run() may take before a test gives up: far above any timeout used.
constexpr auto run_limit = std::chrono::seconds(30);

ms since(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration_cast<ms>(to - from);
}

sockact::lifecycle_config config(ms idle, ms drain) {
  sockact::lifecycle_config c;
  c.idle_timeout = idle;
  c.shutdown_timeout = drain;
  c.new_connection_grace = 300ms;
  return c;
}

// The service manager's variables are this test's to set: none is inherited.
class LifecycleDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : names_) {
      const char* v = std::getenv(name);
      saved_.emplace_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
  }
  void TearDown() override {
    for (std::size_t i = 0; i < saved_.size(); ++i) {
      if (saved_[i])
        ::setenv(names_[i], saved_[i]->c_str(), 1);
      else
        ::unsetenv(names_[i]);
    }
  }

 private:
  static constexpr const char* names_[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
  std::vector<std::optional<std::string>> saved_;
};

// ---------------------------------------------------------------------------
// A small server on the driver, as an application writes one
// ---------------------------------------------------------------------------

/// Line protocol: "work N\n" answers "done\n" after N ms; "hold\n" is a
/// request that never ends. Activity lasts from a request's first byte to
/// its answer's last; while draining, a connection closes after its answer.
class test_server {
 public:
  struct seen {
    lifecycle_actions actions;
    clock_type::time_point at;
  };

  test_server(net::io_context& io, ms idle, ms drain)
      : listener_(sockact_test::inet_socket(AF_INET, SOCK_STREAM)),
        port_(sockact_test::local_port(listener_.get())),
        lifecycle_(config(idle, drain), /*activated=*/true, {listener_.get()}),
        acceptor_(sockact::make_tcp_acceptor(io, listener_.release())),
        driver_(io, lifecycle_, [this](const lifecycle_actions& a) { on_actions(a); }) {
    lifecycle_.on_stop([this](sockact::stop_reason) { stop_at_ = clock_type::now(); });
  }

  void start() {
    std::error_code ec;
    driver_.start(ec);
    ASSERT_FALSE(ec) << ec.message();  // before any signal is raised
    accept_next();
  }

  int port() const { return port_; }
  sockact::lifecycle& lifecycle() { return lifecycle_; }
  sockact::asio_lifecycle_driver& driver() { return driver_; }
  const std::vector<seen>& actions() const { return seen_; }
  clock_type::time_point stop_at() const { return stop_at_; }
  clock_type::time_point last_answer_at() const { return last_answer_at_; }
  int requests() const { return requests_.load(); }
  int connections() const { return connections_.load(); }

  lifecycle_actions all_actions() const {
    lifecycle_actions all;
    for (const seen& s : seen_) all |= s.actions;
    return all;
  }

 private:
  struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)), work(socket.get_executor()) {}
    tcp::socket socket;
    net::steady_timer work;
    sockact::idle_tracker::activity busy;
    std::array<char, 256> buf{};
    std::string in;
    bool closed = false;
    bool used = false;  // has sent a byte
  };
  using connection_ptr = std::shared_ptr<connection>;

  void accept_next() {
    acceptor_.async_accept([this](const asio_error_code& ec, tcp::socket s) {
      if (ec) return;  // closed by stop_accepting
      auto c = std::make_shared<connection>(std::move(s));
      open_.push_back(c);
      driver_.connections_changed(open_.size());
      ++connections_;
      read(c);
      accept_next();
    });
  }

  void read(const connection_ptr& c) {
    c->socket.async_read_some(net::buffer(c->buf), [this, c](const asio_error_code& ec, std::size_t n) {
      if (ec) return close(c);
      if (!c->busy) c->busy = lifecycle_.tracker().begin();
      c->used = true;
      c->in.append(c->buf.data(), n);
      const std::size_t eol = c->in.find('\n');
      if (eol == std::string::npos) return read(c);
      const std::string line = c->in.substr(0, eol);
      c->in.erase(0, eol + 1);
      ++requests_;
      if (line.rfind("work ", 0) == 0) {
        c->work.expires_after(ms(std::stoi(line.substr(5))));
        c->work.async_wait([this, c](const asio_error_code& wec) {
          if (!wec && !c->closed) answer(c);
        });
      }  // "hold": busy until closed
    });
  }

  void answer(const connection_ptr& c) {
    static constexpr char done[] = "done\n";
    net::async_write(c->socket, net::buffer(done, sizeof done - 1),
                     [this, c](const asio_error_code& ec, std::size_t) {
                       if (ec) return close(c);
                       c->busy.end();
                       last_answer_at_ = clock_type::now();
                       if (lifecycle_.draining()) return close(c);
                       read(c);
                     });
  }

  void close(const connection_ptr& c) {
    if (c->closed) return;
    c->closed = true;
    c->work.cancel();
    asio_error_code ignored;
    c->socket.close(ignored);
    open_.erase(std::remove(open_.begin(), open_.end(), c), open_.end());
    driver_.connections_changed(open_.size());
  }

  void on_actions(const lifecycle_actions& a) {
    EXPECT_FALSE(in_actions_) << "the handler was called from inside itself";
    in_actions_ = true;
    seen_.push_back({a, clock_type::now()});
    if (a.stop_accepting) {
      asio_error_code ignored;
      acceptor_.close(ignored);  // close, never shutdown(2)
    }
    const std::vector<connection_ptr> open = open_;
    for (const connection_ptr& c : open)
      if (a.closes(static_cast<bool>(c->busy), c->used)) close(c);
    in_actions_ = false;
  }

  owned_fd listener_;
  int port_;
  sockact::lifecycle lifecycle_;
  tcp::acceptor acceptor_;
  sockact::asio_lifecycle_driver driver_;
  std::vector<connection_ptr> open_;
  std::vector<seen> seen_;
  clock_type::time_point stop_at_{}, last_answer_at_{};
  std::atomic<int> requests_{0}, connections_{0};
  bool in_actions_ = false;
};

// ---------------------------------------------------------------------------
// Clients (POSIX, blocking, in their own thread)
// ---------------------------------------------------------------------------

owned_fd connect_to(int port) {
  owned_fd c(check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  check(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "connect");
  return c;
}

bool refused(int port) {
  try {
    connect_to(port);
    return false;
  } catch (const std::exception&) {
    return errno == ECONNREFUSED;
  }
}

void send_text(int fd, const std::string& s) {
  check(static_cast<int>(::send(fd, s.data(), s.size(), MSG_NOSIGNAL)), "send");
}

/// Everything until EOF; "(timeout)" or "(error)" appended when it did not end so.
std::string read_to_eof(int fd) {
  std::string got;
  char buf[256];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return got;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return got + (errno == EAGAIN ? "(timeout)" : "(error)");
    got.append(buf, static_cast<std::size_t>(n));
  }
}

/// Reads one "\n"-terminated line.
std::string read_line(int fd) {
  std::string got;
  char c = 0;
  while (got.empty() || got.back() != '\n') {
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return got + "(eof or timeout)";
    got += c;
  }
  return got;
}

bool quiet_for(int fd, ms how_long) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(how_long.count())) == 0;
}

bool wait_for(const std::function<bool()>& condition) {
  const auto until = clock_type::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// Runs `client` in a thread while the io_context runs (for at most
/// run_limit); returns the client's error, if it threw.
std::string run_with_client(net::io_context& io, const std::function<void()>& client) {
  std::string error;
  std::thread t([&] {
    try {
      client();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  io.run_for(run_limit);
  t.join();
  return error;
}

// ---------------------------------------------------------------------------
// Idle timeout
// ---------------------------------------------------------------------------

TEST_F(LifecycleDriver, IdleTimeoutStopsAcceptingAndRunReturns) {
  net::io_context io;
  const auto t0 = clock_type::now();
  test_server srv(io, 250ms, 10s);
  srv.start();
  std::string answer;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());
    send_text(c.get(), "work 0\n");
    answer = read_line(c.get());
  });
  const auto returned = clock_type::now();
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_TRUE(io.stopped()) << "run() did not return";
  EXPECT_LT(since(t0, returned), 20s);
  ASSERT_EQ(srv.lifecycle().reason(), sockact::stop_reason::idle);
  EXPECT_EQ(srv.lifecycle().current(), sockact::lifecycle::phase::done);
  EXPECT_FALSE(srv.driver().running());
  ASSERT_FALSE(srv.actions().empty());
  EXPECT_TRUE(srv.actions().front().actions.stop_accepting);
  EXPECT_TRUE(srv.actions().front().actions.close_idle);
  EXPECT_TRUE(srv.actions().back().actions.finished);
  EXPECT_FALSE(srv.all_actions().close_all);
  // Never before the timeout: counted from the last answer.
  EXPECT_GE(since(srv.last_answer_at(), srv.stop_at()), 250ms);
  EXPECT_GE(since(t0, srv.actions().front().at), 250ms);
  EXPECT_TRUE(refused(srv.port())) << "the acceptor was not closed";
}

TEST_F(LifecycleDriver, SilentConnectionDoesNotKeepItAlive) {
  net::io_context io;
  const auto t0 = clock_type::now();
  test_server srv(io, 250ms, 10s);
  srv.start();
  std::string got;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());  // sends nothing
    got = read_to_eof(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "") << "closed as idle, without an answer";
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(srv.connections(), 1);
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(t0, srv.stop_at()), 250ms);
  EXPECT_TRUE(srv.all_actions().close_idle);
  EXPECT_TRUE(srv.all_actions().close_new) << "closed once its grace was over";
  ASSERT_GE(srv.actions().size(), 2u);
  EXPECT_FALSE(srv.actions().front().actions.close_new) << "the grace starts at the stop";
  EXPECT_GE(since(srv.stop_at(), srv.actions().back().at), 300ms) << "not before new_connection_grace";
  EXPECT_FALSE(srv.all_actions().close_all);
  EXPECT_TRUE(srv.all_actions().finished);
}

TEST_F(LifecycleDriver, ActivityGuardHoldsOffTheIdleExitUntilReleased) {
  net::io_context io;
  test_server srv(io, 200ms, 10s);
  auto guard = std::make_shared<sockact::idle_tracker::activity>(srv.lifecycle().tracker().begin());
  srv.start();
  net::steady_timer release(io, 800ms);  // four idle timeouts
  clock_type::time_point released{};
  std::optional<sockact::lifecycle::phase> phase_at_release;
  release.async_wait([&](const asio_error_code&) {
    phase_at_release = srv.lifecycle().current();
    guard->end();
    released = clock_type::now();
  });
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(phase_at_release, sockact::lifecycle::phase::serving);
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(released, srv.stop_at()), 200ms);
}

TEST_F(LifecycleDriver, RequestLongerThanTheIdleTimeoutCompletes) {
  net::io_context io;
  test_server srv(io, 200ms, 10s);
  srv.start();
  std::string answer;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());
    send_text(c.get(), "work 700\n");
    answer = read_line(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(srv.last_answer_at(), srv.stop_at()), 200ms);
}

TEST_F(LifecycleDriver, KeepAliveConnectionExitsOneTimeoutAfterItsRequest) {
  // The request comes and goes between two idle deadlines, on a connection that
  // stays open: the driver hears of no change. Right: the exit comes about
  // 4 s (at most 4.4 s) after the answer; wrong: at the second deadline, 8 s
  // after the start.
  net::io_context io;
  test_server srv(io, 4s, 10s);
  srv.start();
  std::string answer, rest;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());
    std::this_thread::sleep_for(100ms);
    send_text(c.get(), "work 0\n");
    answer = read_line(c.get());
    rest = read_to_eof(c.get());  // closed as idle at the exit
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(srv.last_answer_at(), srv.stop_at()), 4s);
  EXPECT_LT(since(srv.last_answer_at(), srv.stop_at()), 6s) << "activity seen only at the next idle deadline";
}

// ---------------------------------------------------------------------------
// SIGTERM and SIGINT
// ---------------------------------------------------------------------------

TEST_F(LifecycleDriver, SigtermDrainsAndASecondSignalClosesAll) {
  net::io_context io;
  test_server srv(io, 0ms, 20s);  // no idle exit; a drain that would last 20 s
  srv.start();
  std::string idle_got, busy_got;
  bool busy_open_while_draining = false;
  const auto t0 = clock_type::now();
  const std::string error = run_with_client(io, [&] {
    const owned_fd busy = connect_to(srv.port());
    const owned_fd idle = connect_to(srv.port());
    send_text(busy.get(), "hold\n");
    if (!wait_for([&] { return srv.requests() == 1 && srv.connections() == 2; }))
      throw std::runtime_error("the server did not see both clients");
    check(::kill(::getpid(), SIGTERM), "kill");
    idle_got = read_to_eof(idle.get());  // closed as new (sent nothing) once its grace is over
    busy_open_while_draining = quiet_for(busy.get(), 300ms);
    check(::kill(::getpid(), SIGINT), "kill");
    busy_got = read_to_eof(busy.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 15s) << "ended by the shutdown timeout, not the second signal";
  EXPECT_EQ(idle_got, "");
  EXPECT_TRUE(busy_open_while_draining);
  EXPECT_EQ(busy_got, "");
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::sigterm);
  ASSERT_EQ(srv.actions().size(), 3u);
  const lifecycle_actions& first = srv.actions()[0].actions;
  EXPECT_TRUE(first.stop_accepting && first.close_idle);
  EXPECT_FALSE(first.close_new || first.close_all || first.finished);
  const lifecycle_actions& grace = srv.actions()[1].actions;
  EXPECT_TRUE(grace.close_new && !grace.close_all && !grace.finished);
  EXPECT_GE(since(srv.actions()[0].at, srv.actions()[1].at), 300ms);
  const lifecycle_actions& second = srv.actions()[2].actions;
  EXPECT_TRUE(second.close_all && second.finished);
  EXPECT_TRUE(refused(srv.port()));
}

TEST_F(LifecycleDriver, DrainEndsWhenTheLastConnectionCloses) {
  net::io_context io;
  test_server srv(io, 0ms, 20s);
  srv.start();
  std::string got;
  const auto t0 = clock_type::now();
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());
    send_text(c.get(), "work 400\n");
    if (!wait_for([&] { return srv.requests() == 1; })) throw std::runtime_error("request not seen");
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());  // the answer, then the close
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 15s) << "waited for the shutdown timeout";
  EXPECT_EQ(got, "done\n");
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::sigterm);
  ASSERT_GE(srv.actions().size(), 2u);
  EXPECT_TRUE(srv.actions().front().actions.stop_accepting && srv.actions().front().actions.close_idle);
  EXPECT_TRUE(srv.actions().back().actions.finished);
  EXPECT_FALSE(srv.all_actions().close_all);
  EXPECT_GE(srv.actions().back().at, srv.last_answer_at());
}

TEST_F(LifecycleDriver, ShutdownTimeoutClosesTheRest) {
  net::io_context io;
  test_server srv(io, 0ms, 300ms);
  srv.start();
  std::string got;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port());
    send_text(c.get(), "hold\n");
    if (!wait_for([&] { return srv.requests() == 1; })) throw std::runtime_error("request not seen");
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(got, "");
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::sigterm);
  ASSERT_EQ(srv.actions().size(), 2u);
  EXPECT_TRUE(srv.actions()[0].actions.stop_accepting && srv.actions()[0].actions.close_idle);
  EXPECT_FALSE(srv.actions()[0].actions.close_all);
  EXPECT_TRUE(srv.actions()[1].actions.close_all && srv.actions()[1].actions.finished);
  EXPECT_GE(since(srv.actions()[0].at, srv.actions()[1].at), 300ms);
}

TEST_F(LifecycleDriver, SigintWithNothingOpenFinishesAtOnce) {
  net::io_context io;
  test_server srv(io, 0ms, 20s);
  srv.start();
  ::raise(SIGINT);  // the driver is installed: queued until run()
  const auto t0 = clock_type::now();
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 15s);
  EXPECT_EQ(srv.lifecycle().reason(), sockact::stop_reason::sigint);
  ASSERT_EQ(srv.actions().size(), 1u);
  const lifecycle_actions& a = srv.actions()[0].actions;
  EXPECT_TRUE(a.stop_accepting && a.close_idle && a.finished);
  EXPECT_FALSE(a.close_all);
}

// ---------------------------------------------------------------------------
// The notify protocol: READY=1, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1
// ---------------------------------------------------------------------------

TEST_F(LifecycleDriver, NotifiesReadyWatchdogAndStopping) {
  const owned_fd manager(check(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket"));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string name = "sockact-asio-driver-" + std::to_string(::getpid());
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  check(::bind(manager.get(), reinterpret_cast<sockaddr*>(&a),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
        "bind");
  int big = 1 << 20;
  ::setsockopt(manager.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  ::setenv("WATCHDOG_USEC", "100000", 1);  // a ping every 50 ms

  net::io_context io;
  test_server srv(io, 400ms, 10s);
  srv.start();
  srv.lifecycle().ready("serving 1 socket(s)");
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped());

  std::vector<std::string> got;
  char buf[512];
  for (ssize_t n; (n = ::recv(manager.get(), buf, sizeof buf, 0)) > 0;)
    got.emplace_back(buf, static_cast<std::size_t>(n));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front(), "READY=1\nSTATUS=serving 1 socket(s)");
  const auto stopping = std::find(got.begin(), got.end(), "STOPPING=1\nSTATUS=stopping: IDLE");
  ASSERT_NE(stopping, got.end());
  const auto pings = std::count(got.begin(), stopping, "WATCHDOG=1");
  EXPECT_GE(pings, 2) << "the timer did not follow the watchdog deadline";
}

// ---------------------------------------------------------------------------
// The driver itself
// ---------------------------------------------------------------------------

TEST_F(LifecycleDriver, KeepsRunGoingUntilStoppedOnAStrand) {
  net::io_context io;
  sockact::lifecycle lc(config(0ms, 1s), true, {});
  int calls = 0;
  sockact::asio_lifecycle_driver driver(net::make_strand(io), lc, [&](const lifecycle_actions&) { ++calls; });
  EXPECT_FALSE(driver.running());
  driver.start();
  EXPECT_TRUE(driver.running());
  io.run_for(300ms);
  EXPECT_FALSE(io.stopped()) << "the signal wait should keep run() going";
  net::post(io, [&] { driver.stop(); });
  io.restart();
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped());
  EXPECT_FALSE(driver.running());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(lc.current(), sockact::lifecycle::phase::serving);
  driver.start();  // stopped for good
  EXPECT_FALSE(driver.running());
}

TEST_F(LifecycleDriver, DestroyedWhileWaitingReleasesTheLoop) {
  net::io_context io;
  sockact::lifecycle lc(config(60s, 1s), true, {});
  {
    sockact::asio_lifecycle_driver driver(io.get_executor(), lc, [](const lifecycle_actions&) {});
    std::error_code ec = std::make_error_code(std::errc::io_error);
    driver.start(ec);
    EXPECT_FALSE(ec);
    sockact::asio_lifecycle_driver moved(std::move(driver));
    EXPECT_TRUE(moved.running());
    EXPECT_FALSE(driver.running());  // NOLINT(bugprone-use-after-move): moved-from is empty
    driver.poke();                   // and harmless
    driver.connections_changed(3);
  }
  const auto t0 = clock_type::now();
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 10s) << "a cancelled wait kept run() going";
}

TEST_F(LifecycleDriver, MoveAssignmentStopsTheOverwrittenDriver) {
  net::io_context io;
  sockact::lifecycle a_lc(config(60s, 1s), true, {}), b_lc(config(60s, 1s), true, {});
  sockact::asio_lifecycle_driver a(io, a_lc, nullptr), b(io, b_lc, nullptr);
  a.start();
  b.start();
  a = std::move(b);
  EXPECT_TRUE(a.running());
  a.stop();
  io.run_for(run_limit);
  EXPECT_TRUE(io.stopped()) << "the overwritten driver still waits";
}

}  // namespace
