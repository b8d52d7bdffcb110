// libuv_driver with a real uv loop, a real listening TCP socket on 127.0.0.1
// (bound by activate()) and real clients: the idle exit closes the listener
// and the idle connections and uv_run() returns; activity holds it off;
// SIGTERM drains and a second signal closes everything; a drain ends with the
// last connection, or at the shutdown timeout; a pipelined pair that arrives
// when the drain begins between accept and the first read is answered; a
// partial request is cut at HEADERS_TIMEOUT with the timeout reply;
// READY/WATCHDOG/STOPPING reach the notify socket; start errors leave nothing
// open; the driver may go at any time (ASan: no handle or state leaks); a
// handle the program closed itself is never touched by the library. Times
// are checked as order and lower bounds; upper bounds are loose.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>  // first: the header is self-contained

#include <sockact/activation.hpp>
#include <sockact/libuv_server.hpp>

#include <gtest/gtest.h>

#include "uv_run_bounded.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Fault injection: this executable's uv_signal_init() and uv_signal_start()
// come before libuv's (symbol interposition); when a countdown reaches 0, the
// call fails with fault::error instead.
namespace fault {
int signal_init_countdown = 0;
int signal_start_countdown = 0;
int error = UV_EMFILE;

template <typename F>
F next(const char* name) {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (p == nullptr) std::abort();
  F f;
  static_assert(sizeof f == sizeof p);
  std::memcpy(&f, &p, sizeof f);
  return f;
}
bool fails(int& countdown) {
  return countdown > 0 && --countdown == 0;
}
}  // namespace fault

extern "C" int uv_signal_init(uv_loop_t* loop, uv_signal_t* handle) {
  static const auto real = fault::next<int (*)(uv_loop_t*, uv_signal_t*)>("uv_signal_init");
  return fault::fails(fault::signal_init_countdown) ? fault::error : real(loop, handle);
}

extern "C" int uv_signal_start(uv_signal_t* handle, uv_signal_cb cb, int signum) {
  static const auto real = fault::next<int (*)(uv_signal_t*, uv_signal_cb, int)>("uv_signal_start");
  return fault::fails(fault::signal_start_countdown) ? fault::error : real(handle, cb, signum);
}

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

long ms_since(clock_type::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
}

int check(int r, const char* what) {
  if (r < 0) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
  return r;
}

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}

int count_handles(uv_loop_t* loop) {
  int n = 0;
  uv_walk(
      loop, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &n);
  return n;
}

/// Runs `fn` once on the loop after `ms`; the timer closes itself.
void after(uv_loop_t* loop, unsigned ms, std::function<void()> fn) {
  struct job {
    uv_timer_t timer;
    std::function<void()> fn;
  };
  auto* j = new job{uv_timer_t{}, std::move(fn)};
  uv_timer_init(loop, &j->timer);
  j->timer.data = j;
  uv_timer_start(
      &j->timer,
      [](uv_timer_t* t) {
        static_cast<job*>(t->data)->fn();
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<job*>(h->data); });
      },
      ms, 0);
}

void send_signal(int signo) {
  check(::kill(::getpid(), signo), "kill");
}

// ---------------------------------------------------------------------------
// Clients: blocking sockets read by threads until the server closes them
// ---------------------------------------------------------------------------

/// A client connected (into the backlog, before the loop runs) that sends
/// `request` (at once, or `send_after` later) and reads until EOF, for at most 30 s.
class client {
 public:
  client(int port, const std::string& request, clock_type::time_point t0,
         std::chrono::milliseconds send_after = 0ms)
      : t0_(t0) {
    fd_ = check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    check(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), "connect");
    const auto send_request = [this, request] {
      if (!request.empty() && ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0)
        got_ = "send failed";
    };
    if (send_after == 0ms) send_request();
    reader_ = std::thread([this, send_request, send_after] {
      if (send_after > 0ms) {
        std::this_thread::sleep_for(send_after);
        send_request();
      }
      char buf[256];
      for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
          got_.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        eof_ = n == 0;
        eof_at_ = ms_since(t0_);
        return;
      }
    });
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() {
    join();
    ::close(fd_);
  }
  void join() {
    if (reader_.joinable()) reader_.join();
  }
  /// What the server sent; call after join().
  const std::string& got() const { return got_; }
  /// The server closed the connection (rather than a timeout or an error).
  bool eof() const { return eof_; }
  long eof_at() const { return eof_at_; }

 private:
  clock_type::time_point t0_;
  int fd_ = -1;
  std::thread reader_;
  std::string got_;
  bool eof_ = false;
  long eof_at_ = -1;
};

// ---------------------------------------------------------------------------
// The activation: a bound listener, timeouts as given, log lines collected
// ---------------------------------------------------------------------------

std::vector<std::string>& log_lines() {
  static std::vector<std::string> lines;
  return lines;
}

bool logged(const std::string& needle) {
  for (const std::string& l : log_lines())
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

struct timeouts {
  std::chrono::milliseconds idle{0};
  std::chrono::milliseconds shutdown{30s};
  std::chrono::milliseconds grace{300ms};
  std::chrono::milliseconds headers{10s};
};

/// An activation on 127.0.0.1 with a kernel-chosen port (set in `port`);
/// the idle timeout applies although the socket was bound, not passed.
sockact::activation activation_on_loopback(const timeouts& t, int& port) {
  sockact::activation_config c;
  c.listen.address = "127.0.0.1:0";
  c.read_environment = false;
  c.lifecycle.idle_timeout = t.idle;
  c.lifecycle.shutdown_timeout = t.shutdown;
  c.lifecycle.new_connection_grace = t.grace;
  c.lifecycle.headers_timeout = t.headers;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.linger = 500ms;
  c.timeout_reply = "timeout\n";
  c.log = [](const std::string& line) { log_lines().push_back(line); };
  sockact::activation act;
  std::error_code ec;
  std::string why;
  if (!sockact::activate(act, c, ec, &why)) throw std::runtime_error("activate: " + why);
  const std::string& address = act.sockets().at(0).info.local_address;
  port = std::stoi(address.substr(address.rfind(':') + 1));
  return act;
}

// ---------------------------------------------------------------------------
// A small line server on the driver: "fast\n" -> "ok\n" at once; "slow N\n"
// -> "ok N\n" after N ms. What a real server does with sockact: received()
// on each read, request_received() per line, keep_alive() before an answer,
// response_sent() once written, close() after the last answer.
// ---------------------------------------------------------------------------

class line_server {
 public:
  line_server(uv_loop_t* loop, sockact::activation& act) : loop_(loop) {
    driver = sockact::libuv_driver(loop, act, [this](sockact::libuv_accepted& a) { accept(a); });
  }
  line_server(const line_server&) = delete;
  line_server& operator=(const line_server&) = delete;

  sockact::libuv_driver driver;
  std::function<void(const std::string&)> on_request;  // a request line arrived
  std::function<void()> on_accept;                     // a connection was opened
  unsigned read_delay_ms = 0;                          // wait this long before the first read
  int accepted = 0;
  int freed = 0;

 private:
  struct connection {
    line_server* owner = nullptr;
    uv_timer_t timer{};
    std::string in;
    bool waiting = false;
    bool close_after = false;
    int pending_writes = 0;
    unsigned delay = 0;
    sockact::libuv_connection conn;
  };
  struct write_req {
    uv_write_t req{};
    std::string data;
    connection* c = nullptr;
  };

  void accept(sockact::libuv_accepted& a) {
    auto* c = new connection;
    c->owner = this;
    std::error_code ec;
    if (!a.open(c->conn, on_closed, ec)) {
      ADD_FAILURE() << "open: " << ec.message();
      delete c;
      return;
    }
    EXPECT_TRUE(c->conn);
    c->conn.handle()->data = c;
    uv_timer_init(loop_, &c->timer);
    c->timer.data = c;
    ++accepted;
    if (on_accept) on_accept();
    if (read_delay_ms == 0) return start_reading(c);
    uv_timer_start(
        &c->timer, [](uv_timer_t* t) { start_reading(static_cast<connection*>(t->data)); }, read_delay_ms, 0);
  }

  static void start_reading(connection* c) {
    if (uv_is_closing(c->conn.handle())) return;
    uv_read_start(c->conn.stream(), on_alloc, on_read);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto& self = *static_cast<connection*>(h->data)->owner;
    *buf = uv_buf_init(self.buffer_, sizeof self.buffer_);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<connection*>(s->data);
    if (n < 0) return c->conn.close();
    if (n == 0) return;
    c->conn.received(static_cast<std::size_t>(n));
    c->in.append(buf->base, static_cast<std::size_t>(n));
    c->owner->process(c);
  }

  void process(connection* c) {
    while (!c->waiting && !c->close_after && !uv_is_closing(c->conn.handle())) {
      const std::size_t eol = c->in.find('\n');
      if (eol == std::string::npos) break;
      const std::string line = c->in.substr(0, eol);
      c->in.erase(0, eol + 1);
      c->conn.request_received();
      if (on_request) on_request(line);
      if (line.rfind("slow ", 0) == 0) {
        c->waiting = true;
        c->delay = static_cast<unsigned>(std::stoul(line.substr(5)));
        uv_timer_start(&c->timer, on_timer, c->delay, 0);
      } else {
        answer(c, "ok\n");
      }
    }
  }

  static void on_timer(uv_timer_t* t) {
    auto* c = static_cast<connection*>(t->data);
    c->waiting = false;
    c->owner->answer(c, "ok " + std::to_string(c->delay) + "\n");
    c->owner->process(c);
  }

  void answer(connection* c, std::string data) {
    if (!c->conn.keep_alive(c->in.size())) c->close_after = true;  // draining: this is the last one
    auto* w = new write_req;
    w->data = std::move(data);
    w->c = c;
    w->req.data = w;
    const uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, c->conn.stream(), &b, 1, on_written) < 0) {
      delete w;
      return c->conn.close();
    }
    ++c->pending_writes;
  }

  static void on_written(uv_write_t* req, int status) {
    auto* w = static_cast<write_req*>(req->data);
    connection* c = w->c;
    delete w;
    --c->pending_writes;
    if (status < 0 || uv_is_closing(c->conn.handle())) return;
    if (c->pending_writes > 0 || c->waiting) return;
    c->conn.response_sent(c->in.size());
    if (c->close_after) return c->conn.close();
    c->owner->process(c);
  }

  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<connection*>(h->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), [](uv_handle_t* t) {
      auto* dead = static_cast<connection*>(t->data);
      ++dead->owner->freed;
      delete dead;
    });
  }

  uv_loop_t* loop_;
  char buffer_[4096];
};

/// The start time, an activation on loopback with `t` (`port` its port) and
/// a line_server on `loop`.
struct served_lines {
  served_lines(uv_loop_t* loop, const timeouts& t)
      : t0(clock_type::now()), act(activation_on_loopback(t, port)), server(loop, act) {}
  clock_type::time_point t0;
  int port = 0;
  sockact::activation act;
  line_server server;
};

// ---------------------------------------------------------------------------
// The fixture: one loop per test; every handle must be closed by the end
// ---------------------------------------------------------------------------

class LibuvDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    for (const char* v :
         {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"})
      ::unsetenv(v);
    log_lines().clear();
  }
  void TearDown() override {
    EXPECT_EQ(count_handles(&loop_), 0) << "a handle was left open";
    sockact_test::uv_close_everything(&loop_);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC"}) ::unsetenv(v);
  }

  /// uv_run() until it returns by itself; false if it had to be stopped after `ms`.
  bool run_bounded(unsigned ms = 20000) { return sockact_test::uv_run_bounded(&loop_, ms); }

  uv_loop_t loop_{};
};

// ---------------------------------------------------------------------------
// Idle exit
// ---------------------------------------------------------------------------

TEST_F(LibuvDriver, IdleExitClosesTheListenerAndIdleConnectionsAndUvRunReturns) {
  const auto t0 = clock_type::now();
  int port = 0;
  sockact::activation act = activation_on_loopback({250ms}, port);
  const int fd = act.sockets()[0].fd.get();
  line_server server(&loop_, act);
  client silent(port, "", t0);            // connects, sends nothing
  client keep_alive(port, "fast\n", t0);  // answered, then idle on a kept-alive connection

  ASSERT_TRUE(run_bounded()) << "uv_run did not return";
  const long elapsed = ms_since(t0);
  silent.join();
  keep_alive.join();

  EXPECT_EQ(act.state().reason(), sockact::stop_reason::idle);
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::done);
  EXPECT_TRUE(logged("stopping (IDLE), 2 connection(s) open"));
  EXPECT_EQ(server.accepted, 2);
  EXPECT_EQ(server.freed, 2);
  EXPECT_EQ(act.connections(), 0u);
  EXPECT_GE(elapsed, 250);
  EXPECT_TRUE(server.driver.finished());
  EXPECT_FALSE(is_open(fd)) << "the listening socket is closed";
  EXPECT_FALSE(act.sockets()[0].fd) << "... by the activation, which owned it";

  EXPECT_TRUE(silent.eof()) << "closed by the server";
  EXPECT_EQ(silent.got(), "");
  EXPECT_GE(silent.eof_at(), 550) << "a connection that sends nothing does not count as activity,"
                                     " and is closed after the grace";
  EXPECT_TRUE(keep_alive.eof());
  EXPECT_EQ(keep_alive.got(), "ok\n");
  EXPECT_GE(keep_alive.eof_at(), 250);
  EXPECT_LT(keep_alive.eof_at(), silent.eof_at()) << "the idle keep-alive connection goes first";
}

// The idle period counts from the end of the last request: the timer follows
// act.next_deadline(), re-read before the loop waits. Checking only at the
// original deadline would find the request there, start again, and exit at
// about twice the timeout (8 s here).
TEST_F(LibuvDriver, ARequestMovesTheIdleDeadlineToItsEnd) {
  served_lines sv(&loop_, {4s});
  long answered_at = -1;
  long stopped_at = -1;
  sv.server.on_request = [&](const std::string&) {
    after(&loop_, 300, [&] { answered_at = ms_since(sv.t0); });  // about when "ok 300" goes out
  };
  sv.act.state().on_stop([&](sockact::stop_reason) { stopped_at = ms_since(sv.t0); });
  client c(sv.port, "slow 300\n", sv.t0);

  ASSERT_TRUE(run_bounded());
  c.join();
  EXPECT_EQ(c.got(), "ok 300\n");
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::idle);
  EXPECT_GE(stopped_at, answered_at + 3990) << "the idle timeout counts from the answer";
  EXPECT_LT(stopped_at, 7000) << "the deadline did not move with the request";
}

// ---------------------------------------------------------------------------
// Signals and draining
// ---------------------------------------------------------------------------

TEST_F(LibuvDriver, SigtermDrainsAndASecondSignalClosesEverything) {
  served_lines sv(&loop_, {0ms, 30s});
  long drained_at = -1;
  sv.server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  sv.act.state().on_stop([&](sockact::stop_reason) {
    drained_at = ms_since(sv.t0);
    after(&loop_, 100, [] { send_signal(SIGINT); });
  });
  client idle(sv.port, "", sv.t0);
  client slow(sv.port, "slow 20000\n", sv.t0);

  ASSERT_TRUE(run_bounded());
  const long elapsed = ms_since(sv.t0);
  idle.join();
  slow.join();
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigterm) << "the first signal's reason stays";
  EXPECT_TRUE(logged("stopping (SIGTERM), 2 connection(s) open"));
  EXPECT_GE(drained_at, 0);
  EXPECT_TRUE(idle.eof());
  EXPECT_TRUE(slow.eof());
  EXPECT_EQ(slow.got(), "") << "closed before its answer";
  EXPECT_LT(slow.eof_at(), 15000) << "did not wait for the request";
  EXPECT_LT(elapsed, 15000);
}

TEST_F(LibuvDriver, DrainEndsWhenTheLastConnectionCloses) {
  served_lines sv(&loop_, {0ms, 30s});
  sv.server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  client idle(sv.port, "", sv.t0);
  client slow(sv.port, "slow 500\n", sv.t0);

  ASSERT_TRUE(run_bounded());
  const long elapsed = ms_since(sv.t0);
  idle.join();
  slow.join();
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigterm);
  EXPECT_TRUE(idle.eof());
  EXPECT_EQ(idle.got(), "");
  EXPECT_GE(idle.eof_at(), 250) << "the silent connection has its grace";
  EXPECT_TRUE(slow.eof()) << "closed after its answer";
  EXPECT_EQ(slow.got(), "ok 500\n") << "the request in progress completes";
  EXPECT_GE(slow.eof_at(), 480);
  EXPECT_LT(elapsed, 10000) << "waited for the shutdown timeout instead of the last connection";
}

TEST_F(LibuvDriver, TheShutdownTimeoutClosesTheRest) {
  served_lines sv(&loop_, {0ms, 300ms});
  long drained_at = -1;
  sv.server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  sv.act.state().on_stop([&](sockact::stop_reason) { drained_at = ms_since(sv.t0); });
  client slow(sv.port, "slow 20000\n", sv.t0);

  ASSERT_TRUE(run_bounded());
  slow.join();
  EXPECT_TRUE(slow.eof());
  EXPECT_EQ(slow.got(), "");
  EXPECT_GE(slow.eof_at(), drained_at + 290);
  EXPECT_LT(slow.eof_at(), 15000);
}

TEST_F(LibuvDriver, SigintIsAStopReasonToo) {
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  sockact::libuv_driver driver(&loop_, act, [](sockact::libuv_accepted&) {});
  after(&loop_, 10, [] { send_signal(SIGINT); });
  ASSERT_TRUE(run_bounded());
  EXPECT_EQ(act.state().reason(), sockact::stop_reason::sigint);
  EXPECT_TRUE(driver.finished());
}

// When the drain begins the driver stops watching the listening socket and
// closes it: close, never shutdown(2), so that the service manager's copy
// still listens and keeps new clients queued for the next instance.
TEST_F(LibuvDriver, TheDrainClosesTheListenerButTheManagersCopyStillListens) {
  const auto t0 = clock_type::now();
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  // Keep a copy of the listening socket, as systemd does.
  const int managers_copy = check(::fcntl(act.sockets()[0].fd.get(), F_DUPFD_CLOEXEC, 0), "dup");
  const int ours = act.sockets()[0].fd.get();
  sockact::libuv_driver driver(&loop_, act, [](sockact::libuv_accepted&) {});
  after(&loop_, 50, [] { send_signal(SIGTERM); });
  ASSERT_TRUE(run_bounded());
  EXPECT_FALSE(is_open(ours)) << "the activation's fd is closed";
  int listening = 0;
  socklen_t len = sizeof listening;
  EXPECT_EQ(::getsockopt(managers_copy, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1) << "the socket must still listen for the next instance";
  client queued(port, "fast\n", t0);  // connects: queued in the manager's copy
  pollfd p{managers_copy, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "the new client waits for the next instance";
  ::close(managers_copy);  // its reader sees the reset or EOF and ends
}

// The drain begins after the connection was accepted and before its first
// read, with two pipelined requests waiting unread in the socket: the
// connection counts as busy (its unread bytes), both requests are answered,
// the first keeping the connection (the second is already here), and then
// it closes. libuv's server lost the second request this way before.
TEST_F(LibuvDriver, APipelinedPairWaitingWhenTheDrainBeginsIsAnswered) {
  served_lines sv(&loop_, {0ms, 10s, 0ms});  // no grace for silent ones
  sv.server.read_delay_ms = 300;
  sv.server.on_accept = [] { send_signal(SIGTERM); };
  client pair(sv.port, "fast\nfast\n", sv.t0);

  ASSERT_TRUE(run_bounded());
  pair.join();
  EXPECT_EQ(sv.act.state().reason(), sockact::stop_reason::sigterm);
  EXPECT_EQ(pair.got(), "ok\nok\n");
  EXPECT_TRUE(pair.eof());
  EXPECT_GE(pair.eof_at(), 290) << "read after the drain began";
}

// A request that began and did not complete within HEADERS_TIMEOUT gets the
// timeout reply and is closed; the server goes on serving others.
TEST_F(LibuvDriver, APartialRequestIsCutAtHeadersTimeout) {
  const auto t0 = clock_type::now();
  int port = 0;
  timeouts t;
  t.headers = 400ms;
  sockact::activation act = activation_on_loopback(t, port);
  line_server server(&loop_, act);
  client partial(port, "fa", t0);  // no end of line: the request never completes
  long cut_at = -1;
  after(&loop_, 1500, [&] {
    cut_at = ms_since(t0);
    send_signal(SIGTERM);
  });

  ASSERT_TRUE(run_bounded());
  partial.join();
  EXPECT_EQ(partial.got(), "timeout\n");
  EXPECT_TRUE(partial.eof());
  EXPECT_GE(partial.eof_at(), 390);
  EXPECT_LT(partial.eof_at(), cut_at) << "cut by the deadline, not by the drain";
}

// ---------------------------------------------------------------------------
// The notify protocol through the loop
// ---------------------------------------------------------------------------

TEST_F(LibuvDriver, ReadyWatchdogAndStoppingReachTheNotifySocket) {
  // The manager's end, read as it comes (a full queue would block the sender).
  const int manager = check(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string name = "sockact-libuv-driver-" + std::to_string(::getpid());
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  check(::bind(manager, reinterpret_cast<sockaddr*>(&a),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
        "bind");
  timeval tv{20, 0};
  ::setsockopt(manager, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<std::string> messages;
  std::thread reader([&] {
    char buf[512];
    for (ssize_t n; (n = ::recv(manager, buf, sizeof buf, 0)) > 0;) {
      messages.emplace_back(buf, static_cast<std::size_t>(n));
      if (messages.back().rfind("STOPPING=1", 0) == 0) return;
    }
  });
  ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  ::setenv("WATCHDOG_USEC", "100000", 1);  // a ping every 50 ms

  int port = 0;
  sockact::activation act = activation_on_loopback({500ms}, port);
  line_server server(&loop_, act);
  const bool returned = run_bounded();
  reader.join();
  ::close(manager);
  ASSERT_TRUE(returned);

  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front(), "READY=1\nSTATUS=serving 127.0.0.1:0") << "sent by the driver once it serves";
  EXPECT_EQ(messages.back(), "STOPPING=1\nSTATUS=stopping: IDLE");
  int pings = 0;
  for (const std::string& m : messages) pings += m == "WATCHDOG=1" ? 1 : 0;
  EXPECT_GE(pings, 3) << "pinged while serving, with nothing else to do";
}

// ---------------------------------------------------------------------------
// Start errors and lifetimes
// ---------------------------------------------------------------------------

TEST_F(LibuvDriver, StartErrors) {
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  const auto ignore = [](sockact::libuv_accepted&) {};
  std::error_code ec;
  sockact::libuv_driver none(nullptr, act, ignore, ec);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(none.finished());
  EXPECT_EQ(count_handles(&loop_), 0);

  // The listening fd is watched by a handle of this loop already: uv_poll_init() refuses it.
  uv_poll_t other;
  ASSERT_EQ(uv_poll_init(&loop_, &other, act.sockets()[0].fd.get()), 0);
  ASSERT_EQ(uv_poll_start(&other, UV_READABLE, [](uv_poll_t*, int, int) {}), 0);
  sockact::libuv_driver busy(&loop_, act, ignore, ec);
  EXPECT_EQ(ec, std::errc::file_exists) << ec.message();
  try {
    sockact::libuv_driver thrower(&loop_, act, ignore);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_NE(std::string(e.what()).find("sockact::libuv_driver: watching fd " +
                                         std::to_string(act.sockets()[0].fd.get()) + " (\"127.0.0.1:0\")"),
              std::string::npos)
        << e.what();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&other), nullptr);
  ASSERT_TRUE(run_bounded()) << "a handle was left open";
  EXPECT_EQ(count_handles(&loop_), 0);

  sockact::libuv_driver ok(&loop_, act, ignore, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(count_handles(&loop_), 5) << "timer, prepare, SIGTERM, SIGINT, one poll";
  ok.stop();
  EXPECT_TRUE(ok.finished());
  ok.stop();  // idempotent
  ASSERT_TRUE(run_bounded());
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::serving) << "stop() finishes nothing";
}

// uv_signal_init() and uv_signal_start() do not fail on Linux for SIGTERM and
// SIGINT, so this test makes them fail (see the fault injection at the top):
// whatever the driver opened before is closed again and its state freed
// (ASan), and on_connection is never called.
TEST_F(LibuvDriver, AFailedSignalSetupClosesWhatWasOpened) {
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  int calls = 0;
  const auto count = [&](sockact::libuv_accepted&) { ++calls; };
  struct step {
    int* countdown;
    int after_calls;
    int error;
    std::errc want;
    const char* named;
  } steps[] = {
      {&fault::signal_init_countdown, 1, UV_EMFILE, std::errc::too_many_files_open, "uv_signal_init"},
      {&fault::signal_init_countdown, 2, UV_ENOMEM, std::errc::not_enough_memory, "uv_signal_init"},
      {&fault::signal_start_countdown, 1, UV_EINVAL, std::errc::invalid_argument, "uv_signal_start(SIGTERM)"},
      {&fault::signal_start_countdown, 2, UV_EINVAL, std::errc::invalid_argument, "uv_signal_start(SIGINT)"},
  };
  for (const step& s : steps) {
    SCOPED_TRACE(s.named + std::string(" failing at call ") + std::to_string(s.after_calls));
    fault::error = s.error;
    *s.countdown = s.after_calls;
    std::error_code ec;
    sockact::libuv_driver driver(&loop_, act, count, ec);
    ASSERT_EQ(*s.countdown, 0) << "the fault injection did not take (libuv linked statically?)";
    EXPECT_EQ(ec, s.want) << ec.message();
    EXPECT_TRUE(driver.finished());

    *s.countdown = s.after_calls;
    std::string what;
    try {
      sockact::libuv_driver thrower(&loop_, act, count);
    } catch (const std::system_error& e) {
      what = e.what();
      EXPECT_EQ(e.code(), s.want);
    }
    EXPECT_NE(what.find(std::string("sockact::libuv_driver: ") + s.named), std::string::npos) << what;

    ASSERT_TRUE(run_bounded()) << "a handle was left open";
    EXPECT_EQ(count_handles(&loop_), 0);
  }
  EXPECT_EQ(calls, 0);
}

TEST_F(LibuvDriver, DestroyedBeforeTheLoopRunsItLeavesNothingOpen) {
  int port = 0;
  sockact::activation act = activation_on_loopback({100ms}, port);
  {
    sockact::libuv_driver driver(&loop_, act, [](sockact::libuv_accepted&) {});
  }
  ASSERT_TRUE(run_bounded()) << "the driver's handles kept the loop alive";
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::serving) << "never driven";
  EXPECT_TRUE(act.sockets()[0].fd) << "the listener stays with the activation";
}

TEST_F(LibuvDriver, TheDriverMayBeDestroyedInsideItsCallback) {
  const auto t0 = clock_type::now();
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  int calls = 0;
  std::optional<sockact::libuv_driver> driver;
  driver.emplace(&loop_, act, [&](sockact::libuv_accepted&) {
    ++calls;
    driver.reset();  // the server ends its own way; the connection's fd closes with `a`
  });
  client c(port, "", t0);
  ASSERT_TRUE(run_bounded());
  c.join();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(c.eof()) << "the connection nobody opened was closed";
}

TEST_F(LibuvDriver, AMovedDriverKeepsRunning) {
  int port = 0;
  sockact::activation act = activation_on_loopback({100ms}, port);
  sockact::libuv_driver a(&loop_, act, [](sockact::libuv_accepted&) {});
  sockact::libuv_driver b(std::move(a));
  EXPECT_TRUE(a.finished());  // NOLINT(bugprone-use-after-move): a moved-from driver is empty
  EXPECT_FALSE(b.finished());
  a.stop();  // nothing to stop
  sockact::libuv_driver c;
  c = std::move(b);
  EXPECT_FALSE(c.finished());
  ASSERT_TRUE(run_bounded());
  EXPECT_TRUE(c.finished());
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::done);
}

TEST_F(LibuvDriver, StopLetsAServerEndOnItsOwn) {
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  sockact::libuv_driver driver(&loop_, act, [](sockact::libuv_accepted&) {});
  after(&loop_, 50, [&] { driver.stop(); });
  ASSERT_TRUE(run_bounded()) << "the signal handles kept the loop alive";
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::serving);
}

// open() into a libuv_connection that cannot take the fd: false (or a throw)
// with the reason, nothing registered, the handle left uninitialized, the fd
// still the caller's (closed with the libuv_accepted).
TEST_F(LibuvDriver, OpenIntoALibuvConnectionFailsCleanly) {
  int port = 0;
  sockact::activation act = activation_on_loopback({}, port);
  const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(udp, 0);
  {
    sockact::libuv_accepted a(&loop_, &act, sockact::unique_fd(udp), act.sockets().at(0));
    sockact::libuv_connection conn;
    std::error_code ec;
    EXPECT_FALSE(a.open(conn, nullptr, ec));
    EXPECT_EQ(ec, sockact::errc::wrong_type) << ec.message();
    EXPECT_FALSE(conn);
    EXPECT_EQ(act.connections(), 0u);
    EXPECT_EQ(conn.handle()->type, UV_UNKNOWN_HANDLE) << "the handle was initialized";
    EXPECT_EQ(a.fd(), udp) << "the fd stays with the caller on failure";
    EXPECT_THROW(a.open(conn), std::system_error);
  }
  EXPECT_EQ(::fcntl(udp, F_GETFD), -1) << "the libuv_accepted closes the fd it still holds";
  EXPECT_EQ(count_handles(&loop_), 0);
}

// ---------------------------------------------------------------------------
// open(): the library never reaches a handle the program closed itself
// ---------------------------------------------------------------------------

// The program uv_close()s a tracked handle itself (libuv closes the fd at
// once) and keeps the connection until the close callback. Meanwhile the fd
// number goes to another socket and the drain closes every connection: the
// library must skip the closing handle, or it would shut the other socket down.
TEST_F(LibuvDriver, AHandleTheProgramClosesIsNotTouchedAgain) {
  int port = 0;
  sockact::activation act = activation_on_loopback({0ms, 30s}, port);
  int sv[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "socketpair");
  const int number = sv[0];
  struct tracked {
    sockact::libuv_stream handle{};
    sockact::connection conn;
  };
  auto* t = new tracked;
  sockact::server_socket from;
  sockact::libuv_accepted a(&loop_, &act, sockact::unique_fd(sv[0]), from);
  t->conn = a.open(&t->handle, [](uv_handle_t* h) { delete static_cast<tracked*>(h->data); });
  ASSERT_TRUE(t->conn);
  t->handle.handle.data = t;
  EXPECT_EQ(act.connections(), 1u);
  uv_close(&t->handle.handle, [](uv_handle_t* h) { delete static_cast<tracked*>(h->data); });

  int other[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), "socketpair");
  if (other[0] != number && other[1] != number) {
    ::close(other[0]);
    ::close(other[1]);
    ::close(sv[1]);
    uv_run(&loop_, UV_RUN_DEFAULT);
    GTEST_SKIP() << "the fd number was not reused";
  }
  const int reused = number, peer = other[0] == number ? other[1] : other[0];
  act.on_signal(SIGTERM);
  act.on_signal(SIGTERM);  // a second signal: close everything, the closing handle included
  char c;
  EXPECT_EQ(::recv(peer, &c, 1, MSG_DONTWAIT), -1) << "the socket now at fd " << reused << " was shut down";
  EXPECT_EQ(errno, EAGAIN);
  uv_run(&loop_, UV_RUN_DEFAULT);  // the close callback frees it
  EXPECT_EQ(act.connections(), 0u);
  ::close(other[0]);
  ::close(other[1]);
  ::close(sv[1]);
}

}  // namespace
