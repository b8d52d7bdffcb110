// libuv_lifecycle_driver with a real uv loop, a real listening TCP socket on
// 127.0.0.1 and real clients: the idle exit closes the listener and the idle
// connections and uv_run() returns; activity holds it off; SIGTERM drains and a
// second signal closes everything; a drain ends with the last connection, or
// at the shutdown timeout; READY/WATCHDOG/STOPPING reach the notify socket;
// start errors leave nothing open; the driver may go at any time (ASan: no
// handle or state leaks). Times are checked as order and lower bounds; upper
// bounds are loose, as machines here are noisy.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>  // first: the header is self-contained

#include <gtest/gtest.h>

#include "uv_run_bounded.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
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

sockact::lifecycle_config config(std::chrono::milliseconds idle, std::chrono::milliseconds drain = 30s,
                                 std::chrono::milliseconds grace = 300ms) {
  sockact::lifecycle_config c;
  c.idle_timeout = idle;
  c.shutdown_timeout = drain;
  c.new_connection_grace = grace;
  return c;
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

/// A listening socket on 127.0.0.1 with a kernel-chosen port.
int listening_socket(int& port) {
  const int fd = check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
  check(::listen(fd, 16), "listen");
  socklen_t len = sizeof a;
  check(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), "getsockname");
  port = ntohs(a.sin_port);
  return fd;
}

// ---------------------------------------------------------------------------
// A small line server on the driver: "fast\n" -> "ok\n" at once; "slow N\n"
// -> "ok N\n" after N ms. A request is activity from its first byte to its
// answer's last; while draining, a connection closes once answered. As the
// lifecycle asks, close_idle closes connections between requests, close_new
// those that have sent nothing yet.
// ---------------------------------------------------------------------------

class line_server {
 public:
  struct event {
    long at_ms;
    sockact::lifecycle_actions actions;
    std::size_t open_after;  // connections not closing once the actions were carried out
  };

  line_server(uv_loop_t* loop, sockact::lifecycle& lc, int listen_fd, clock_type::time_point t0)
      : loop_(loop), lc_(lc), t0_(t0) {
    sockact::open_tcp(loop_, &listener_, listen_fd);
    listener_.data = this;
    check(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), SOMAXCONN, on_connection), "uv_listen");
    driver.start(loop_, lc_, [this](const sockact::lifecycle_actions& a) { apply(a); });
  }
  line_server(const line_server&) = delete;
  line_server& operator=(const line_server&) = delete;

  sockact::libuv_lifecycle_driver driver;
  std::vector<event> events;
  int depth = 0, max_depth = 0;                                        // on_actions is not re-entered
  std::function<void(const std::string&)> on_request;                  // a request line arrived
  std::function<void(const sockact::lifecycle_actions&)> after_apply;  // test hook

 private:
  struct connection {
    line_server* owner = nullptr;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    int open_handles = 2;
    std::string in;
    bool waiting = false;
    bool closing = false;
    int pending_writes = 0;
    unsigned delay = 0;
    sockact::idle_tracker::activity busy;
    bool used = false;  // has sent a byte
  };
  struct write_req {
    uv_write_t req{};
    std::string data;
    connection* c = nullptr;
  };

  void apply(const sockact::lifecycle_actions& a) {
    max_depth = std::max(max_depth, ++depth);
    if (a.stop_accepting) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    std::vector<connection*> to_close;
    for (auto& [c, owned] : connections_)
      if (a.closes(static_cast<bool>(c->busy), c->used)) to_close.push_back(c);
    for (connection* c : to_close) close(c);
    std::size_t open = 0;
    for (auto& [c, owned] : connections_) open += c->closing ? 0 : 1;
    events.push_back({ms_since(t0_), a, open});
    driver.connections_changed(connections_.size());  // none: done (delivered after this returns)
    if (after_apply) after_apply(a);
    --depth;
  }

  static void on_connection(uv_stream_t* l, int status) {
    auto& self = *static_cast<line_server*>(l->data);
    if (status < 0) return;
    auto owned = std::make_unique<connection>();
    connection* c = owned.get();
    c->owner = &self;
    uv_tcp_init(self.loop_, &c->tcp);
    uv_timer_init(self.loop_, &c->timer);
    c->tcp.data = c->timer.data = c;
    self.connections_.emplace(c, std::move(owned));
    if (uv_accept(l, reinterpret_cast<uv_stream_t*>(&c->tcp)) < 0) return self.close(c);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto& self = *static_cast<connection*>(h->data)->owner;
    *buf = uv_buf_init(self.buffer_, sizeof self.buffer_);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<connection*>(s->data);
    line_server& self = *c->owner;
    if (n < 0) return self.close(c);
    if (n == 0) return;
    if (!c->busy) c->busy = self.lc_.tracker().begin();
    c->used = true;
    c->in.append(buf->base, static_cast<std::size_t>(n));
    self.process(c);
  }

  void process(connection* c) {
    while (!c->waiting && !c->closing) {
      const std::size_t eol = c->in.find('\n');
      if (eol == std::string::npos) break;
      const std::string line = c->in.substr(0, eol);
      c->in.erase(0, eol + 1);
      if (on_request) on_request(line);
      if (c->closing) return;
      if (line.rfind("slow ", 0) == 0) {
        c->waiting = true;
        c->delay = static_cast<unsigned>(std::stoul(line.substr(5)));
        uv_timer_start(&c->timer, on_timer, c->delay, 0);
      } else {
        send(c, "ok\n");
      }
    }
    answered(c);
  }

  static void on_timer(uv_timer_t* t) {
    auto* c = static_cast<connection*>(t->data);
    c->waiting = false;
    c->owner->send(c, "ok " + std::to_string(c->delay) + "\n");
    c->owner->process(c);
  }

  void send(connection* c, std::string data) {
    auto* w = new write_req;
    w->data = std::move(data);
    w->c = c;
    w->req.data = w;
    const uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, on_written) < 0) {
      delete w;
      return close(c);
    }
    ++c->pending_writes;
  }

  static void on_written(uv_write_t* req, int status) {
    auto* w = static_cast<write_req*>(req->data);
    connection* c = w->c;
    delete w;
    --c->pending_writes;
    if (status < 0) return c->owner->close(c);
    c->owner->answered(c);
  }

  // All answered: the activity ends; while draining, so does the connection.
  void answered(connection* c) {
    if (c->closing || c->pending_writes > 0 || c->waiting || !c->in.empty()) return;
    c->busy.end();
    if (lc_.draining()) close(c);
  }

  void close(connection* c) {
    if (c->closing) return;
    c->closing = true;
    c->busy.end();
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_closed);
  }

  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<connection*>(h->data);
    if (--c->open_handles > 0) return;
    line_server& self = *c->owner;
    self.connections_.erase(c);
    self.driver.connections_changed(self.connections_.size());
  }

  uv_loop_t* loop_;
  sockact::lifecycle& lc_;
  clock_type::time_point t0_;
  uv_tcp_t listener_{};
  std::map<connection*, std::unique_ptr<connection>> connections_;
  char buffer_[4096];
};

// ---------------------------------------------------------------------------
// The fixture: one loop per test; every handle must be closed by the end
// ---------------------------------------------------------------------------

class LibuvLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS"})
      ::unsetenv(v);
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

TEST_F(LibuvLifecycle, IdleExitClosesTheListenerAndIdleConnectionsAndUvRunReturns) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(250ms), true, {fd}, t0);
  std::optional<sockact::stop_reason> hooked;
  lc.on_stop([&](sockact::stop_reason r) { hooked = r; });
  line_server server(&loop_, lc, fd, t0);
  client silent(port, "", t0);            // connects, sends nothing
  client keep_alive(port, "fast\n", t0);  // answered, then idle on a kept-alive connection
  lc.ready();

  ASSERT_TRUE(run_bounded()) << "uv_run did not return";
  const long elapsed = ms_since(t0);
  silent.join();
  keep_alive.join();

  EXPECT_EQ(hooked, sockact::stop_reason::idle);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::idle);
  EXPECT_EQ(lc.current(), sockact::lifecycle::phase::done);
  ASSERT_EQ(server.events.size(), 3u);
  const auto& stop = server.events[0];
  EXPECT_TRUE(stop.actions.stop_accepting && stop.actions.close_idle);
  EXPECT_FALSE(stop.actions.close_all || stop.actions.close_new || stop.actions.finished);
  EXPECT_GE(stop.at_ms, 250) << "not before the idle timeout";
  EXPECT_EQ(stop.open_after, 1u) << "the kept-alive connection closed; the silent one gets its grace";
  const auto& grace = server.events[1];
  EXPECT_TRUE(grace.actions.close_new && !grace.actions.close_all);
  EXPECT_GE(grace.at_ms, stop.at_ms + 300) << "not before new_connection_grace";
  EXPECT_EQ(grace.open_after, 0u);
  EXPECT_TRUE(server.events[2].actions.finished) << "the last connection closed: done";
  EXPECT_FALSE(server.events[2].actions.close_all);
  EXPECT_EQ(server.max_depth, 1) << "on_actions was re-entered";
  EXPECT_GE(elapsed, 250);
  EXPECT_FALSE(server.driver.running());
  EXPECT_FALSE(is_open(fd)) << "the listening socket is closed";

  EXPECT_TRUE(silent.eof()) << "closed by the server";
  EXPECT_EQ(silent.got(), "");
  EXPECT_GE(silent.eof_at(), 550) << "a connection that sends nothing does not count as activity,"
                                     " and is closed after the grace";
  EXPECT_TRUE(keep_alive.eof());
  EXPECT_EQ(keep_alive.got(), "ok\n");
  EXPECT_GE(keep_alive.eof_at(), 250);
  EXPECT_LT(keep_alive.eof_at(), silent.eof_at()) << "the idle keep-alive connection goes first";
}

TEST_F(LibuvLifecycle, AnActivityGuardHoldsOffTheIdleExitUntilReleased) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(200ms), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  auto busy = lc.tracker().begin();
  long released_at = -1;
  after(&loop_, 700, [&] {
    EXPECT_TRUE(server.events.empty()) << "stopped while the activity was held";
    released_at = ms_since(t0);
    busy.end();
  });

  ASSERT_TRUE(run_bounded());
  ASSERT_GE(server.events.size(), 1u);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::idle);
  EXPECT_GT(released_at, 0) << "(a uv timer may fire a millisecond before steady_clock says)";
  EXPECT_GE(server.events[0].at_ms, released_at + 200) << "a whole idle timeout after the release";
  EXPECT_TRUE(server.events.back().actions.finished);
  EXPECT_EQ(server.max_depth, 1) << "no connections: finished came from inside on_actions, and re-entered it";
}

// The idle period counts from the end of the last request, which the driver
// learns from no event of its own: it re-reads the deadline before the loop
// waits. Checking only at the original deadline would find the request there,
// start again, and exit at about twice the timeout (8 s here).
TEST_F(LibuvLifecycle, ARequestMovesTheIdleDeadlineToItsEnd) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(4s), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  long answered_at = -1;
  server.on_request = [&](const std::string&) {
    after(&loop_, 300, [&] { answered_at = ms_since(t0); });  // about when "ok 300" goes out
  };
  client c(port, "slow 300\n", t0);

  ASSERT_TRUE(run_bounded());
  c.join();
  EXPECT_EQ(c.got(), "ok 300\n");
  ASSERT_GE(server.events.size(), 1u);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::idle);
  EXPECT_GE(server.events[0].at_ms, answered_at + 4000) << "the idle timeout counts from the answer";
  EXPECT_LT(server.events[0].at_ms, 7000) << "the deadline did not move with the request";
}

// ---------------------------------------------------------------------------
// Signals and draining
// ---------------------------------------------------------------------------

TEST_F(LibuvLifecycle, SigtermDrainsAndASecondSignalClosesEverything) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(0ms, 30s), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  server.after_apply = [&](const sockact::lifecycle_actions& a) {
    if (a.stop_accepting) after(&loop_, 100, [] { send_signal(SIGINT); });
  };
  client idle(port, "", t0);
  client slow(port, "slow 20000\n", t0);

  ASSERT_TRUE(run_bounded());
  idle.join();
  slow.join();
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigterm) << "the first signal's reason stays";
  ASSERT_EQ(server.events.size(), 2u);
  const auto& drain = server.events[0].actions;
  EXPECT_TRUE(drain.stop_accepting && drain.close_idle && !drain.close_all && !drain.finished);
  EXPECT_EQ(server.events[0].open_after, 2u) << "neither the busy one nor the new one (in its grace) closed";
  const auto& all = server.events[1].actions;
  EXPECT_TRUE(all.close_all && all.finished);
  EXPECT_EQ(server.events[1].open_after, 0u);
  EXPECT_GE(server.events[1].at_ms, server.events[0].at_ms);
  EXPECT_FALSE(is_open(fd));
  EXPECT_TRUE(idle.eof());
  EXPECT_TRUE(slow.eof());
  EXPECT_EQ(slow.got(), "") << "closed before its answer";
  EXPECT_LT(slow.eof_at(), 15000) << "did not wait for the request";
}

TEST_F(LibuvLifecycle, DrainEndsWhenTheLastConnectionCloses) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(0ms, 30s), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  client idle(port, "", t0);
  client slow(port, "slow 500\n", t0);

  ASSERT_TRUE(run_bounded());
  const long elapsed = ms_since(t0);
  idle.join();
  slow.join();
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigterm);
  ASSERT_EQ(server.events.size(), 3u);
  EXPECT_TRUE(server.events[0].actions.stop_accepting && server.events[0].actions.close_idle);
  EXPECT_EQ(server.events[0].open_after, 2u) << "the silent connection has its grace";
  EXPECT_TRUE(server.events[1].actions.close_new);
  EXPECT_EQ(server.events[1].open_after, 1u) << "the silent connection closed after the grace";
  EXPECT_TRUE(server.events[2].actions.finished);
  EXPECT_FALSE(server.events[2].actions.close_all) << "nothing left to close";
  EXPECT_TRUE(idle.eof());
  EXPECT_EQ(idle.got(), "");
  EXPECT_TRUE(slow.eof()) << "closed after its answer";
  EXPECT_EQ(slow.got(), "ok 500\n") << "the request in progress completes";
  // After the 500 ms answer; libuv counts its timers from the loop time it
  // cached before t0 was taken, so they may fire a few ms early by t0's clock.
  EXPECT_GE(server.events[2].at_ms, 480);
  EXPECT_LT(elapsed, 20000) << "waited for the shutdown timeout instead of the last connection";
}

TEST_F(LibuvLifecycle, TheShutdownTimeoutClosesTheRest) {
  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(0ms, 300ms), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  server.on_request = [](const std::string&) { send_signal(SIGTERM); };
  client slow(port, "slow 20000\n", t0);

  ASSERT_TRUE(run_bounded());
  slow.join();
  ASSERT_EQ(server.events.size(), 2u);
  EXPECT_EQ(server.events[0].open_after, 1u);
  const auto& timeout = server.events[1].actions;
  EXPECT_TRUE(timeout.close_all && timeout.finished);
  EXPECT_GE(server.events[1].at_ms, server.events[0].at_ms + 300);
  EXPECT_TRUE(slow.eof());
  EXPECT_EQ(slow.got(), "");
  EXPECT_LT(slow.eof_at(), 15000);
}

TEST_F(LibuvLifecycle, SigintIsAStopReasonToo) {
  sockact::lifecycle lc(config(0ms), false, {});
  std::vector<sockact::lifecycle_actions> got;
  int depth = 0, max_depth = 0;
  sockact::libuv_lifecycle_driver driver(&loop_, lc, [&](const sockact::lifecycle_actions& a) {
    max_depth = std::max(max_depth, ++depth);
    got.push_back(a);
    if (a.stop_accepting) driver.connections_changed(0);  // no connections: done, once this returns
    --depth;
  });
  after(&loop_, 10, [] { send_signal(SIGINT); });
  ASSERT_TRUE(run_bounded());
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigint);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].stop_accepting && !got[0].finished);
  EXPECT_TRUE(got[1].finished);
  EXPECT_EQ(max_depth, 1) << "on_actions was re-entered";
}

// ---------------------------------------------------------------------------
// The notify protocol through the loop
// ---------------------------------------------------------------------------

TEST_F(LibuvLifecycle, ReadyWatchdogAndStoppingReachTheNotifySocket) {
  // The manager's end, read as it comes (a full queue would block the sender).
  const int manager = check(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string name = "sockact-libuv-lifecycle-" + std::to_string(::getpid());
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

  const auto t0 = clock_type::now();
  int port = 0;
  const int fd = listening_socket(port);
  sockact::lifecycle lc(config(500ms), true, {fd}, t0);
  line_server server(&loop_, lc, fd, t0);
  lc.ready("serving 1 socket(s)");
  const bool returned = run_bounded();
  reader.join();
  ::close(manager);
  ASSERT_TRUE(returned);

  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front(), "READY=1\nSTATUS=serving 1 socket(s)");
  EXPECT_EQ(messages.back(), "STOPPING=1\nSTATUS=stopping: IDLE");
  int pings = 0;
  for (const std::string& m : messages) pings += m == "WATCHDOG=1" ? 1 : 0;
  EXPECT_GE(pings, 3) << "pinged while serving, with nothing else to do";
}

// ---------------------------------------------------------------------------
// Start errors and lifetimes
// ---------------------------------------------------------------------------

TEST_F(LibuvLifecycle, StartErrors) {
  sockact::lifecycle lc(config(0ms), false, {});
  const auto ignore = [](const sockact::lifecycle_actions&) {};
  sockact::libuv_lifecycle_driver driver;
  std::error_code ec;
  EXPECT_FALSE(driver.start(nullptr, lc, ignore, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(driver.start(&loop_, lc, nullptr, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(driver.running());
  EXPECT_EQ(count_handles(&loop_), 0);

  ASSERT_TRUE(driver.start(&loop_, lc, ignore, ec)) << ec.message();
  EXPECT_TRUE(driver.running());
  EXPECT_EQ(count_handles(&loop_), 4) << "timer, prepare, SIGTERM, SIGINT";
  EXPECT_FALSE(driver.start(&loop_, lc, ignore, ec));
  EXPECT_EQ(ec, std::errc::device_or_resource_busy);
  try {
    driver.start(&loop_, lc, ignore);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
    EXPECT_NE(std::string(e.what()).find("libuv_lifecycle_driver::start: already running"), std::string::npos)
        << e.what();
  }
  driver.stop();
  EXPECT_FALSE(driver.running());
  driver.stop();  // idempotent
  ASSERT_TRUE(driver.start(&loop_, lc, ignore, ec)) << "starts again once closed: " << ec.message();
  driver.stop();
  ASSERT_TRUE(run_bounded());
}

// uv_signal_init() and uv_signal_start() do not fail on Linux for SIGTERM and
// SIGINT (uv_loop_init() already made the loop's signal pipe), so this test
// makes them fail (see the fault injection at the top): whatever the driver
// opened before is closed again and its state freed (ASan), and on_actions
// is never called.
TEST_F(LibuvLifecycle, AFailedSignalSetupClosesWhatWasOpened) {
  sockact::lifecycle lc(config(0ms), false, {});
  int calls = 0;
  const auto count = [&](const sockact::lifecycle_actions&) { ++calls; };
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
    sockact::libuv_lifecycle_driver driver;
    std::error_code ec;
    const bool started = driver.start(&loop_, lc, count, ec);
    ASSERT_EQ(*s.countdown, 0) << "the fault injection did not take (libuv linked statically?)";
    if (started) driver.stop();
    EXPECT_FALSE(started);
    EXPECT_EQ(ec, s.want) << ec.message();
    EXPECT_FALSE(driver.running());

    *s.countdown = s.after_calls;
    std::string what;
    try {
      sockact::libuv_lifecycle_driver thrower(&loop_, lc, count);
    } catch (const std::system_error& e) {
      what = e.what();
      EXPECT_EQ(e.code(), s.want);
    }
    EXPECT_NE(what.find(std::string("libuv_lifecycle_driver::start: ") + s.named), std::string::npos) << what;

    ASSERT_TRUE(run_bounded()) << "a handle was left open";
    EXPECT_EQ(count_handles(&loop_), 0);
  }
  EXPECT_EQ(calls, 0);
}

TEST_F(LibuvLifecycle, DestroyedBeforeTheLoopRunsItLeavesNothingOpen) {
  sockact::lifecycle lc(config(100ms), true, {});
  int calls = 0;
  {
    sockact::libuv_lifecycle_driver driver(&loop_, lc, [&](const sockact::lifecycle_actions&) { ++calls; });
  }
  ASSERT_TRUE(run_bounded()) << "the driver's handles kept the loop alive";
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(lc.current(), sockact::lifecycle::phase::serving) << "never driven";
}

TEST_F(LibuvLifecycle, TheDriverMayBeDestroyedInsideItsHandler) {
  sockact::lifecycle lc(config(100ms), true, {});
  int calls = 0;
  std::optional<sockact::libuv_lifecycle_driver> driver;
  driver.emplace(&loop_, lc, [&](const sockact::lifecycle_actions& a) {
    ++calls;
    EXPECT_TRUE(a.stop_accepting);
    driver.reset();  // the server ends its own way
  });
  ASSERT_TRUE(run_bounded());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::idle);
}

TEST_F(LibuvLifecycle, AMovedDriverKeepsRunning) {
  sockact::lifecycle lc(config(100ms), true, {});
  int calls = 0;
  sockact::libuv_lifecycle_driver* current = nullptr;
  sockact::libuv_lifecycle_driver a(&loop_, lc, [&](const sockact::lifecycle_actions& act) {
    ++calls;
    if (act.stop_accepting) current->connections_changed(0);  // no connections: done
  });
  sockact::libuv_lifecycle_driver b(std::move(a));
  EXPECT_FALSE(a.running());  // NOLINT(bugprone-use-after-move): a moved-from driver is empty
  EXPECT_TRUE(b.running());
  a.stop();  // nothing to stop
  sockact::libuv_lifecycle_driver c;
  c = std::move(b);
  current = &c;
  EXPECT_TRUE(c.running());
  ASSERT_TRUE(run_bounded());
  EXPECT_EQ(calls, 2) << "stop_accepting + close_idle, then finished";
  EXPECT_FALSE(c.running());
  EXPECT_EQ(lc.current(), sockact::lifecycle::phase::done);
}

TEST_F(LibuvLifecycle, StopLetsAServerEndOnItsOwn) {
  sockact::lifecycle lc(config(0ms), true, {});
  sockact::libuv_lifecycle_driver driver(&loop_, lc, [](const sockact::lifecycle_actions&) {});
  after(&loop_, 50, [&] { driver.stop(); });  // e.g. an Accept=yes connection served
  ASSERT_TRUE(run_bounded()) << "the signal handles kept the loop alive";
  EXPECT_EQ(lc.current(), sockact::lifecycle::phase::serving);
  driver.connections_changed(0);  // after close: nothing happens
}

}  // namespace
