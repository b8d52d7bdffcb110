// asio_driver on a real activation: idle exit, the drain on SIGTERM/SIGINT,
// the notify protocol, request deadlines, graceful close, EMFILE back-off,
// Accept=yes, and an io_context run by 4 threads under load (the TSan build
// runs this file). Real sockets on 127.0.0.1, real POSIX clients in threads.
// Built once per Asio flavour.
//
// Timings: the tests assert order and outcomes, and lower bounds (never exit
// before the timeout); upper bounds only where seconds separate the right
// outcome from the wrong one. Signals are raised only once the driver exists.
#include <sockact/asio.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
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
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = sockact::asio_ns;
using namespace std::chrono_literals;
using sockact::asio_error_code;
using sockact_test::check;
using sockact_test::owned_fd;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// How long run() may take before a test gives up: far above any timeout used.
constexpr auto run_limit = std::chrono::seconds(30);
const std::string timeout_reply = sockact::http_timeout_reply;

ms since(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration_cast<ms>(to - from);
}

// The variables of the service manager and the lifecycle are this test's to set.
class AsioDriver : public ::testing::Test {
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
  static constexpr const char* names_[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC",  "WATCHDOG_PID",  "LISTEN_PID",
                                           "LISTEN_FDS",    "LISTEN_FDNAMES", "LISTEN_PIDFDID"};
  std::vector<std::optional<std::string>> saved_;
};

// What the activation logged, for the tests that look.
std::mutex log_mutex;
std::vector<std::string> log_lines;
void log_line(const std::string& line) {
  const std::lock_guard<std::mutex> lock(log_mutex);
  log_lines.push_back(line);
}
bool logged(const std::string& part) {
  const std::lock_guard<std::mutex> lock(log_mutex);
  return std::any_of(log_lines.begin(), log_lines.end(),
                     [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

struct timeouts {
  ms idle{0};
  ms drain{20s};
  ms grace{300ms};
  ms headers{0};
  bool activated = true;  // the idle timeout applies (bound sockets count as activated here)
};

// An activation on a socket bound to 127.0.0.1 (not from LISTEN_*: the
// lifecycle treats it alike when idle_only_when_activated is off).
sockact::activation make_activation(const timeouts& t) {
  sockact::activation_config c;
  c.read_environment = false;
  c.listen.address = "127.0.0.1:0";
  c.lifecycle.idle_timeout = t.idle;
  c.lifecycle.shutdown_timeout = t.drain;
  c.lifecycle.new_connection_grace = t.grace;
  c.lifecycle.headers_timeout = t.headers;
  c.lifecycle.request_timeout = 0ms;
  c.lifecycle.idle_only_when_activated = !t.activated;
  c.timeout_reply = timeout_reply;
  c.log = log_line;
  return sockact::activate(c);
}

int port_of(sockact::activation& act) {
  return sockact_test::local_port(act.sockets().at(0).fd.get());
}

// ---------------------------------------------------------------------------
// A small server on the driver, as an application writes one
// ---------------------------------------------------------------------------

/// Line protocol: "work N\n" answers "done\n" after N ms; "hold\n" is a
/// request that never ends; "close\n" answers "bye\n" and closes. Answers
/// in order, one at a time; while draining, closes after the last answer
/// unless the next request is already here (sockact's keep_alive()).
std::atomic<int> requests_seen{0};

template <class Socket>
class basic_session : public std::enable_shared_from_this<basic_session<Socket>> {
 public:
  explicit basic_session(tcp::socket socket) : stream_(std::move(socket)), work_(stream_.get_executor()) {}

  void start() { read(); }  // the stream registered itself with the driver's activation

 private:
  using std::enable_shared_from_this<basic_session<Socket>>::shared_from_this;

  void read() {
    if (reading_ || done_) return;
    reading_ = true;
    stream_.async_read_some(net::buffer(buf_),
                            [self = shared_from_this()](asio_error_code ec, std::size_t n) {
                              self->reading_ = false;
                              if (ec == net::error::operation_aborted || self->done_) return self->stop();
                              if (ec) return self->close();  // the client went away
                              self->in_.append(self->buf_.data(), n);
                              self->next();
                            });
  }

  void next() {
    if (busy_ || done_) return;
    const std::size_t eol = in_.find('\n');
    if (eol == std::string::npos) return read();
    const std::string line = in_.substr(0, eol);
    in_.erase(0, eol + 1);
    ++requests_seen;
    stream_.connection().request_received();
    busy_ = true;
    if (line == "close") return answer("bye\n", true);
    if (line.rfind("work ", 0) == 0) {
      work_.expires_after(ms(std::stoi(line.substr(5))));
      work_.async_wait([self = shared_from_this()](asio_error_code ec) {
        if (!ec && !self->done_) self->answer("done\n", false);
      });
      return;
    }
    read();  // "hold": busy until closed; the pending read keeps the session
  }

  void answer(const char* text, bool close_after) {
    const bool last = close_after || !stream_.connection().keep_alive(in_.size());
    net::async_write(stream_, net::buffer(text, std::strlen(text)),
                     [self = shared_from_this(), last](asio_error_code ec, std::size_t) {
                       self->busy_ = false;
                       if (ec) return self->close();
                       self->stream_.connection().response_sent(self->in_.size());
                       if (last) return self->close();
                       self->next();
                     });
  }

  void close() {
    if (done_) return;
    stream_.connection().close();
    stop();
  }

  void stop() {
    done_ = true;
    work_.cancel();
  }

  sockact::tracked_stream<Socket> stream_;
  net::steady_timer work_;
  std::array<char, 4096> buf_{};
  std::string in_;
  bool reading_ = false, busy_ = false, done_ = false;
};
using session = basic_session<tcp::socket>;

/// A socket whose reads complete late: the bytes leave the kernel at once,
/// the handler runs `late_by` afterwards, as when every thread of the
/// io_context is busy (or the reactor's thread reads, then queues the
/// handler on a strand that another close runs on).
class late_socket {
 public:
  using executor_type = tcp::socket::executor_type;
  static constexpr ms late_by{300};

  explicit late_socket(tcp::socket s) : socket_(std::move(s)), late_(socket_.get_executor()) {}
  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    socket_.async_read_some(
        buffers, [this, h = std::forward<Handler>(handler)](asio_error_code ec, std::size_t n) mutable {
          if (n == 0) return h(ec, n);  // nothing taken (a cancel, EOF): at once
          late_.expires_after(late_by);
          late_.async_wait([h = std::move(h), ec, n](asio_error_code) mutable { h(ec, n); });
        });
  }
  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler) {
    return socket_.async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  tcp::socket socket_;
  net::steady_timer late_;  // not cancelled by socket().cancel(): the read already happened
};

/// The driver with sessions; counts what it saw.
template <class Socket = tcp::socket>
struct basic_test_server {
  explicit basic_test_server(net::io_context& io, sockact::activation& a)
      : act(a), port(port_of(a)), driver(io, a, [this](tcp::socket s, const sockact::server_socket&) {
          ++connections;
          std::make_shared<basic_session<Socket>>(std::move(s))->start();
        }) {
    requests_seen = 0;
  }
  int requests() const { return requests_seen.load(); }

  sockact::activation& act;
  int port;
  std::atomic<int> connections{0};
  sockact::asio_driver driver;
};
using test_server = basic_test_server<>;

/// An activation with `t`, an io_context and the test server on both;
/// `started` is when the server (and with it the driver) was made.
struct served {
  explicit served(const timeouts& t) : act(make_activation(t)), started(clock_type::now()), srv(io, act) {}
  sockact::activation act;
  net::io_context io;
  clock_type::time_point started;
  test_server srv;
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

/// Everything until EOF; "(timeout)" or "(reset)" or "(error)" appended when it did not end so.
std::string read_to_eof(int fd) {
  std::string got;
  char buf[256];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return got;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return got + (errno == EAGAIN ? "(timeout)" : errno == ECONNRESET ? "(reset)" : "(error)");
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

TEST_F(AsioDriver, IdleTimeoutStopsAcceptingAndRunReturns) {
  served sv({250ms});
  std::string answer;
  clock_type::time_point answered{};
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "work 0\n");
    answer = read_line(c.get());
    answered = clock_type::now();
  });
  const auto returned = clock_type::now();
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_TRUE(sv.io.stopped()) << "run() did not return";
  EXPECT_TRUE(sv.srv.driver.finished());
  EXPECT_LT(since(sv.started, returned), 20s);
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::idle);
  EXPECT_EQ(sv.act.state().current(), sockact::lifecycle::phase::done);
  EXPECT_GE(since(answered, returned), 250ms) << "never before the timeout";
  EXPECT_TRUE(refused(sv.srv.port)) << "the acceptor was not closed";
  EXPECT_EQ(sv.act.connections(), 0u);
}

TEST_F(AsioDriver, SilentConnectionDoesNotKeepItAlive) {
  served sv({250ms});
  std::string got;
  clock_type::time_point closed{};
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);  // sends nothing
    got = read_to_eof(c.get());
    closed = clock_type::now();
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "") << "closed without an answer, with a FIN";
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_EQ(sv.srv.connections.load(), 1);
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(sv.started, closed), 250ms + 300ms) << "closed before its grace was over";
}

TEST_F(AsioDriver, RequestLongerThanTheIdleTimeoutCompletes) {
  served sv({200ms});
  std::string answer;
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "work 700\n");
    answer = read_line(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::idle);
}

TEST_F(AsioDriver, KeepAliveConnectionExitsOneTimeoutAfterItsRequest) {
  // The request comes and goes between two idle deadlines, on a connection
  // that stays open. Right: the exit comes 2 s (at most 2.2 s and a little)
  // after the answer; wrong: at the second deadline, 4 s after the start.
  served sv({2s});
  std::string answer, rest;
  clock_type::time_point answered{}, closed{};
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    std::this_thread::sleep_for(100ms);
    send_text(c.get(), "work 0\n");
    answer = read_line(c.get());
    answered = clock_type::now();
    rest = read_to_eof(c.get());  // closed as idle at the exit
    closed = clock_type::now();
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done\n");
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::idle);
  EXPECT_GE(since(answered, closed), 2s);
  EXPECT_LT(since(answered, closed), 3500ms) << "activity seen only at the next idle deadline";
}

// ---------------------------------------------------------------------------
// SIGTERM and SIGINT
// ---------------------------------------------------------------------------

TEST_F(AsioDriver, SigtermDrainsAndASecondSignalClosesAll) {
  served sv({0ms, 20s});  // no idle exit; a drain of 20 s
  std::string idle_got, busy_got;
  bool busy_open_while_draining = false;
  const auto t0 = clock_type::now();
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd busy = connect_to(sv.srv.port);
    const owned_fd idle = connect_to(sv.srv.port);
    send_text(busy.get(), "hold\n");
    if (!wait_for([&] { return sv.srv.requests() == 1 && sv.act.connections() == 2; }))
      throw std::runtime_error("the server did not see both clients");
    check(::kill(::getpid(), SIGTERM), "kill");
    idle_got = read_to_eof(idle.get());  // closed once its grace is over
    busy_open_while_draining = quiet_for(busy.get(), 300ms);
    check(::kill(::getpid(), SIGINT), "kill");
    busy_got = read_to_eof(busy.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 15s) << "ended by the shutdown timeout, not the second signal";
  EXPECT_EQ(idle_got, "");
  EXPECT_TRUE(busy_open_while_draining);
  EXPECT_EQ(busy_got, "");
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigterm);
  EXPECT_TRUE(refused(sv.srv.port));
}

TEST_F(AsioDriver, DrainEndsWhenTheLastConnectionCloses) {
  served sv({0ms, 20s});
  std::string got;
  const auto t0 = clock_type::now();
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "work 400\n");
    if (!wait_for([&] { return sv.srv.requests() == 1; })) throw std::runtime_error("request not seen");
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());  // the answer, then the close
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 10s) << "waited for the shutdown timeout";
  EXPECT_EQ(got, "done\n");
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigterm);
}

TEST_F(AsioDriver, ShutdownTimeoutClosesTheRest) {
  served sv({0ms, 300ms});
  std::string got;
  clock_type::time_point signalled{}, closed{};
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "hold\n");
    if (!wait_for([&] { return sv.srv.requests() == 1; })) throw std::runtime_error("request not seen");
    signalled = clock_type::now();
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());
    closed = clock_type::now();
  });
  EXPECT_EQ(error, "");
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_EQ(got, "");
  EXPECT_GE(since(signalled, closed), 300ms);
  EXPECT_LT(since(signalled, closed), 5s);
}

TEST_F(AsioDriver, SigintWithNothingOpenFinishesAtOnce) {
  served sv({0ms, 20s});
  ::raise(SIGINT);  // the driver is installed: queued until run()
  const auto t0 = clock_type::now();
  sv.io.run_for(run_limit);
  EXPECT_TRUE(sv.io.stopped());
  EXPECT_LT(since(t0, clock_type::now()), 5s);
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigint);
  EXPECT_TRUE(sv.srv.driver.finished());
}

// ---------------------------------------------------------------------------
// What the drain keeps: requests already received
// ---------------------------------------------------------------------------

TEST_F(AsioDriver, PipelinedRequestsAreAnsweredDuringTheDrain) {
  served sv({0ms, 20s, 2s});
  std::string got;
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    if (!wait_for([&] { return sv.act.connections() == 1; })) throw std::runtime_error("not accepted");
    check(::kill(::getpid(), SIGTERM), "kill");
    if (!wait_for([&] { return sv.act.draining(); })) throw std::runtime_error("not draining");
    send_text(c.get(), "work 0\nwork 50\nwork 0\n");  // three, in one segment
    got = read_to_eof(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "done\ndone\ndone\n") << "every request received is answered, then the connection closes";
  EXPECT_TRUE(sv.io.stopped());
}

TEST_F(AsioDriver, HalfReceivedRequestIsNotClosedAtTheDrain) {
  served sv({0ms, 20s, 200ms});
  std::string got;
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "wor");  // the first bytes of a request
    if (!wait_for([&] { return sv.act.connections() == 1; })) throw std::runtime_error("not accepted");
    std::this_thread::sleep_for(100ms);  // read by the server
    check(::kill(::getpid(), SIGTERM), "kill");
    std::this_thread::sleep_for(600ms);  // well past the grace for silent connections
    send_text(c.get(), "k 0\n");
    got = read_to_eof(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "done\n");
  EXPECT_TRUE(sv.io.stopped());
}

// The drain decides that a connection is unused (or idle) on its strand.
// A read may have taken the request's bytes from the kernel already, its
// handler not yet run: FIONREAD says 0, nothing was reported. Closing then
// would lose a request the client sent (it gets EOF without an answer); the
// read is cancelled instead, and its completion brings the bytes.
TEST_F(AsioDriver, RequestTakenByAReadWhoseHandlerRunsLateIsAnsweredAtTheDrain) {
  sockact::activation act = make_activation({0ms, 20s, 0ms});  // silent connections: no grace at all
  net::io_context io;
  basic_test_server<late_socket> srv(io, act);
  std::string got;
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port);
    if (!wait_for([&] { return act.connections() == 1; })) throw std::runtime_error("not accepted");
    send_text(c.get(), "work 0\n");
    std::this_thread::sleep_for(100ms);  // taken by the read; its handler is due in 200 ms
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "done\n") << "the request in the late read was lost";
  EXPECT_EQ(srv.requests(), 1);
  EXPECT_TRUE(io.stopped());
}

TEST_F(AsioDriver, SilentConnectionWithAReadInFlightIsClosedAtTheDrain) {
  sockact::activation act = make_activation({0ms, 20s, 0ms});
  net::io_context io;
  basic_test_server<late_socket> srv(io, act);
  std::string got;
  clock_type::time_point signalled{}, closed{};
  const std::string error = run_with_client(io, [&] {
    const owned_fd c = connect_to(srv.port);  // sends nothing; the server's read waits
    if (!wait_for([&] { return act.connections() == 1; })) throw std::runtime_error("not accepted");
    std::this_thread::sleep_for(50ms);
    signalled = clock_type::now();
    check(::kill(::getpid(), SIGTERM), "kill");
    got = read_to_eof(c.get());
    closed = clock_type::now();
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "") << "closed with a FIN, nothing sent";
  EXPECT_LT(since(signalled, closed), 5s) << "the cancelled read did not lead to the close";
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(act.connections(), 0u);
}

TEST_F(AsioDriver, PartialRequestIsCutByTheHeadersTimeoutWith408) {
  timeouts t;
  t.headers = 300ms;
  served sv(t);
  std::string got;
  clock_type::time_point sent{}, closed{};
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    send_text(c.get(), "wor");
    sent = clock_type::now();
    got = read_to_eof(c.get());
    closed = clock_type::now();
    check(::kill(::getpid(), SIGTERM), "kill");
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, timeout_reply);
  EXPECT_GE(since(sent, closed), 300ms);
  EXPECT_LT(since(sent, closed), 5s);
  EXPECT_TRUE(sv.io.stopped());
}

TEST_F(AsioDriver, GracefulCloseSendsAFinEvenWithUnreadPipelinedBytes) {
  served sv({});
  std::string got;
  const std::string error = run_with_client(sv.io, [&] {
    const owned_fd c = connect_to(sv.srv.port);
    // "close" and, behind it in the same burst, more than the server reads at
    // once: the server closes with bytes still unread in its socket.
    std::string burst = "close\n" + std::string(512 * 1024, 'x');
    std::thread sender([&] { (void)::send(c.get(), burst.data(), burst.size(), MSG_NOSIGNAL); });
    got = read_to_eof(c.get());
    sender.join();
    check(::kill(::getpid(), SIGTERM), "kill");
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "bye\n") << "a reset would be \"(reset)\" and could destroy the answer";
  EXPECT_TRUE(sv.io.stopped());
}

// ---------------------------------------------------------------------------
// The notify protocol: READY=1, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1
// ---------------------------------------------------------------------------

TEST_F(AsioDriver, NotifiesReadyWatchdogAndStopping) {
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

  served sv({400ms});
  sv.io.run_for(run_limit);
  EXPECT_TRUE(sv.io.stopped());

  std::vector<std::string> got;
  char buf[512];
  for (ssize_t n; (n = ::recv(manager.get(), buf, sizeof buf, 0)) > 0;)
    got.emplace_back(buf, static_cast<std::size_t>(n));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().rfind("READY=1\nSTATUS=serving ", 0), 0u) << got.front();
  const auto stopping = std::find(got.begin(), got.end(), "STOPPING=1\nSTATUS=stopping: IDLE");
  ASSERT_NE(stopping, got.end());
  const auto pings = std::count(got.begin(), stopping, "WATCHDOG=1");
  EXPECT_GE(pings, 2) << "the timer did not follow the watchdog deadline";
}

// ---------------------------------------------------------------------------
// Out of fds: pause accepting, serve the queued clients later
// ---------------------------------------------------------------------------

double cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

TEST_F(AsioDriver, OutOfFdsBacksOffAndServesTheQueuedClients) {
  served sv({});
  constexpr int clients = 24;
  // The clients' sockets exist before the limit comes down; the server then
  // has one fd to spare: one connection at a time.
  std::vector<owned_fd> fds;
  for (int i = 0; i < clients; ++i)
    fds.emplace_back(check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
  rlimit saved{};
  check(::getrlimit(RLIMIT_NOFILE, &saved), "getrlimit");
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 2);
  check(::setrlimit(RLIMIT_NOFILE, &low), "setrlimit");
  std::vector<owned_fd> fillers;  // every number below the limit taken, but one
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.emplace_back(fd);
  ASSERT_EQ(errno, EMFILE);
  ASSERT_FALSE(fillers.empty());
  fillers.pop_back();
  int answered = 0;
  double cpu = 0;
  ms took{};
  const std::string error = run_with_client(sv.io, [&] {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<std::uint16_t>(sv.srv.port));
    const auto t0 = clock_type::now();
    for (owned_fd& c : fds) {
      timeval tv{};
      tv.tv_sec = 20;
      ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      check(::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), "connect");
      // The first holds the one fd for 600 ms: the others wait in the backlog.
      send_text(c.get(), &c == &fds.front() ? "work 600\nclose\n" : "close\n");
    }
    // While the first client holds the fd, the others wait: the server must
    // not burn CPU retrying accept() meanwhile.
    const double cpu0 = cpu_seconds();
    std::this_thread::sleep_for(400ms);
    cpu = cpu_seconds() - cpu0;
    for (owned_fd& c : fds)
      answered += read_to_eof(c.get()) == (&c == &fds.front() ? "done\nbye\n" : "bye\n");
    took = since(t0, clock_type::now());
    check(::kill(::getpid(), SIGTERM), "kill");
  });
  check(::setrlimit(RLIMIT_NOFILE, &saved), "setrlimit");
  EXPECT_EQ(error, "");
  EXPECT_EQ(answered, clients) << "queued clients must be served, not dropped";
  EXPECT_TRUE(logged("pausing accepts for 100 ms")) << "the limit was never hit";
  EXPECT_GE(took, 600ms);
  // Spinning on EMFILE burns a core; the back-off wakes up 4 times in 400 ms.
  EXPECT_LT(cpu, 0.04) << "CPU seconds in 400 ms while out of fds";
  EXPECT_TRUE(sv.io.stopped());
}

// ---------------------------------------------------------------------------
// Accept=yes: the connection the manager accepted is served, then it ends
// ---------------------------------------------------------------------------

TEST_F(AsioDriver, AcceptYesConnectionIsServedThenRunReturns) {
  int pair[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), "socketpair");
  owned_fd conn(pair[0]), client(pair[1]);
  const sockact_test::passed_fds placed({conn.get()});
  const sockact_test::listen_env env(sockact_test::listen_env::self(), "1", "connection");
  sockact::activation_config c;
  c.read_environment = false;
  c.log = log_line;
  sockact::activation act = sockact::activate(c);
  ASSERT_EQ(act.sockets().size(), 1u);
  ASSERT_TRUE(act.sockets()[0].info.connected);
  net::io_context io;
  std::string from;
  sockact::asio_driver driver(
      io, act, [&](net::local::stream_protocol::socket s, const sockact::server_socket& l) {
        from = l.name;
        using stream_type = sockact::tracked_stream<net::local::stream_protocol::socket>;
        auto stream = std::make_shared<stream_type>(std::move(s));  // registers itself
        auto buf = std::make_shared<std::array<char, 16>>();
        stream->async_read_some(net::buffer(*buf), [stream, buf](asio_error_code ec, std::size_t n) {
          if (ec) return stream->connection().close();
          stream->connection().request_received();
          net::async_write(*stream, net::buffer(buf->data(), n), [stream](asio_error_code, std::size_t) {
            stream->connection().response_sent();
            stream->connection().close();
          });
        });
      });
  std::string got;
  const std::string error = run_with_client(io, [&] {
    send_text(client.get(), "echo\n");
    got = read_to_eof(client.get());
    ::shutdown(client.get(), SHUT_WR);  // the client's side of the close (a connection)
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(from, "connection");
  EXPECT_EQ(got, "echo\n");
  EXPECT_TRUE(io.stopped()) << "one connection served: the process is done";
  EXPECT_TRUE(driver.finished());
}

TEST_F(AsioDriver, HandlerThatCannotTakeTheSocketIsAnError) {
  const std::string path = "/tmp/sockact-asio-driver-" + std::to_string(::getpid()) + ".sock";
  owned_fd l = sockact_test::unix_socket(path);
  const sockact_test::passed_fds placed({l.get()});
  const sockact_test::listen_env env(sockact_test::listen_env::self(), "1", "web");
  sockact::activation_config c;
  c.read_environment = false;
  c.log = log_line;
  sockact::activation act = sockact::activate(c);
  net::io_context io;
  std::error_code ec;
  std::string why;
  sockact::asio_driver driver(
      io, act, [](tcp::socket, const sockact::server_socket&) {}, ec, &why);
  EXPECT_EQ(ec, sockact::errc::wrong_type);
  EXPECT_EQ(why.rfind("fd 3 (\"web\") is unix stream", 0), 0u) << why;
  EXPECT_NE(why.find("takes only TCP sockets"), std::string::npos) << why;
  EXPECT_FALSE(driver.finished());
  EXPECT_TRUE(act.sockets()[0].fd) << "left to the activation";
  ::unlink(path.c_str());
}

// ---------------------------------------------------------------------------
// Four threads, strands, many clients (the TSan build runs this)
// ---------------------------------------------------------------------------

TEST_F(AsioDriver, FourThreadsWithStrandsUnderLoad) {
  sockact::activation act = make_activation({0ms, 10s, 300ms});
  net::io_context io(4);
  test_server srv(io, act);
  constexpr int clients = 32, rounds = 30;
  std::atomic<int> answered{0}, failed{0};
  std::vector<std::thread> client_threads;
  for (int i = 0; i < clients; ++i) {
    client_threads.emplace_back([&, i] {
      try {
        owned_fd c = connect_to(srv.port);
        for (int r = 0; r < rounds; ++r) {
          if (r % 5 == 4) c = connect_to(srv.port);                                // some on new connections
          send_text(c.get(), (i + r) % 3 == 0 ? "work 0\nwork 1\n" : "work 0\n");  // some pipelined
          const int expect = (i + r) % 3 == 0 ? 2 : 1;
          for (int k = 0; k < expect; ++k) (read_line(c.get()) == "done\n" ? answered : failed)++;
        }
      } catch (const std::exception&) {
        ++failed;
      }
    });
  }
  // And clients in flight when the drain begins: each is answered, then closed.
  std::vector<std::string> late(8);
  std::thread drainer([&] {
    for (std::thread& t : client_threads) t.join();
    const int before = srv.requests();
    std::vector<owned_fd> cs;
    for (std::size_t k = 0; k < late.size(); ++k) {
      cs.push_back(connect_to(srv.port));
      send_text(cs.back().get(), "work 100\n");
    }
    if (!wait_for([&] { return srv.requests() >= before + static_cast<int>(late.size()); })) failed += 1000;
    check(::kill(::getpid(), SIGTERM), "kill");
    for (std::size_t k = 0; k < late.size(); ++k) late[k] = read_to_eof(cs[k].get());
  });
  std::vector<std::thread> runners;
  for (int t = 0; t < 3; ++t) runners.emplace_back([&] { io.run_for(run_limit); });
  io.run_for(run_limit);
  for (std::thread& t : runners) t.join();
  drainer.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(answered.load(), clients * rounds);
  for (const std::string& g : late) EXPECT_EQ(g, "done\n");
  EXPECT_TRUE(io.stopped());
  EXPECT_TRUE(srv.driver.finished());
  EXPECT_EQ(act.connections(), 0u);
}

}  // namespace
