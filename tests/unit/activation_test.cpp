// activation: the connection registry, the drain it carries out, request
// deadlines and the graceful close, on real loopback TCP connections.
#include <sockact/activation.hpp>
#include <sockact/notify.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

// The send-queue look-ups (TIOCOUTQ) this process makes, counted by the
// ioctl() below; `during_outq` runs inside the next one.
std::atomic<int> outq_calls{0};
std::function<void()> during_outq;
std::atomic<bool> during_outq_armed{false};

}  // namespace

// ioctl(2) for the whole test program: the real one, after counting TIOCOUTQ.
extern "C" int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  using real_ioctl = int (*)(int, unsigned long, ...);
  static const auto real = reinterpret_cast<real_ioctl>(::dlsym(RTLD_NEXT, "ioctl"));
  if (request == TIOCOUTQ) {
    ++outq_calls;
    if (during_outq_armed.exchange(false)) during_outq();
  }
  return real(fd, request, arg);
}

namespace {

using namespace std::chrono_literals;
using clock_type = sockact::activation::clock;

// HOST/PORT for a bound listener on loopback, and no LISTEN_* around.
class Env {
 public:
  Env() {
    ::setenv("HOST", "127.0.0.1", 1);
    ::setenv("PORT", "0", 1);
    for (const char* v : sockact_test::listen_variables) ::unsetenv(v);
    for (const char* v : {"IDLE_TIMEOUT", "SHUTDOWN_TIMEOUT", "HEADERS_TIMEOUT", "REQUEST_TIMEOUT",
                          "SEND_TIMEOUT", "NOTIFY_SOCKET"})
      ::unsetenv(v);
  }
  ~Env() {
    for (const char* v : {"HOST", "PORT", "HEADERS_TIMEOUT"}) ::unsetenv(v);
  }
};

std::string log_lines;
void capture(const std::string& line) {
  log_lines += line + "\n";
}

sockact::activation make(sockact::activation_config c = sockact::activation_config::http()) {
  c.log = capture;
  sockact::activation act;
  std::error_code ec;
  std::string why;
  EXPECT_TRUE(sockact::activate(act, c, ec, &why)) << why;
  return act;
}

// A client connected to the activation's listener, and the server's side.
struct Pair {
  sockact::unique_fd client, server;
};

Pair connect_to(sockact::activation& act) {
  const int lfd = act.sockets().at(0).fd.get();
  Pair p;
  p.client = sockact::unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(sockact_test::local_port(lfd)));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(p.client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  p.server = sockact::unique_fd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_GE(p.server.get(), 0);
  return p;
}

// Registers the server side of `p`; a close by the library resets it.
sockact::connection track_server(sockact::activation& act, Pair& p) {
  return act.track(p.server.get(), [&p] { p.server.reset(); });
}

// An activation that binds its own socket (the environment not read), with
// the lifecycle settings that `set` makes.
template <class Set>
sockact::activation make_own(Set set) {
  auto cfg = sockact::activation_config::http();
  cfg.read_environment = false;
  set(cfg.lifecycle);
  return make(cfg);
}

void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// Reads until EOF or error (2 s at most). Returns the bytes; `err` the errno of a failure.
std::string read_all(int fd, int& err) {
  std::string out;
  err = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) {
      err = ETIMEDOUT;
      return out;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return out;
    if (n < 0) {
      err = errno;
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

bool server_closed(const Pair& p) {
  int err = 0;
  read_all(p.client.get(), err);
  return err != ETIMEDOUT;
}

// Runs the timers until `pred` or 3 s.
template <class Pred>
void run_until(sockact::activation& act, Pred pred) {
  const auto end = clock_type::now() + 3s;
  while (!pred() && clock_type::now() < end) {
    act.on_timer();
    std::this_thread::sleep_for(5ms);
  }
}

TEST(Activation, BindsFromHostAndPortAndLogsWhatItServes) {
  Env env;
  log_lines.clear();
  sockact::activation act = make();
  ASSERT_EQ(act.sockets().size(), 1u);
  EXPECT_FALSE(act.activated());
  EXPECT_NE(log_lines.find("serving bound 127.0.0.1:0 on 127.0.0.1:"), std::string::npos) << log_lines;
}

// A malformed variable that activate() reads fails it, naming the variable and value.
TEST(Activation, BadVariableNamesIt) {
  Env env;
  for (const auto& [name, value, expected] : {
           std::tuple{"HEADERS_TIMEOUT", "soon", "HEADERS_TIMEOUT=\"soon\""},
           std::tuple{"SOCKACT_ALLOW_PARENT_PID", "yes", "SOCKACT_ALLOW_PARENT_PID=\"yes\" is neither 1"},
       }) {
    ::setenv(name, value, 1);
    sockact::activation act;
    std::error_code ec;
    std::string why;
    EXPECT_FALSE(sockact::activate(act, {}, ec, &why)) << name;
    ::unsetenv(name);
    EXPECT_EQ(ec, std::errc::invalid_argument) << name;
    EXPECT_NE(why.find(expected), std::string::npos) << why;
  }
}

// The variable only widens the check the program chose.
TEST(Activation, AllowParentPidOnlyWidens) {
  std::error_code ec;
  for (const auto& [value, from, to] : {
           std::tuple{"1", sockact::listen_pid_check::strict, sockact::listen_pid_check::allow_parent},
           std::tuple{"1", sockact::listen_pid_check::allow_any, sockact::listen_pid_check::allow_any},
           std::tuple{"0", sockact::listen_pid_check::allow_parent, sockact::listen_pid_check::allow_parent},
           std::tuple{"", sockact::listen_pid_check::allow_parent, sockact::listen_pid_check::allow_parent},
       }) {
    ::setenv("SOCKACT_ALLOW_PARENT_PID", value, 1);
    sockact::listen_pid_check check = from;
    EXPECT_TRUE(sockact::detail::pid_check_from_environment(check, ec, nullptr)) << value;
    EXPECT_EQ(check, to) << "SOCKACT_ALLOW_PARENT_PID=" << value;
  }
  ::unsetenv("SOCKACT_ALLOW_PARENT_PID");
}

// A child whose LISTEN_PID is its parent's (an init such as tini in
// between): SOCKACT_ALLOW_PARENT_PID=1 takes the fd, =0 or unset does not
// (and then activate() neither takes nor binds, and says how to opt in).
// The child allocates after fork(): the other tests of this program join
// their threads before they end, so none is running here.
TEST(Activation, AllowParentPidFromTheEnvironment) {
  Env env;
  const sockact_test::owned_fd l = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  for (const char* value : {"1", "0", ""}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::dup2(l.get(), 3) != 3) ::_exit(10);
      ::setenv("LISTEN_PID", std::to_string(::getppid()).c_str(), 1);
      ::setenv("LISTEN_FDS", "1", 1);
      ::setenv("SOCKACT_ALLOW_PARENT_PID", value, 1);
      auto cfg = sockact::activation_config::http();
      cfg.log = [](const std::string&) {};
      sockact::activation act;
      std::error_code ec;
      std::string why;
      const bool ok = sockact::activate(act, cfg, ec, &why);
      if (*value == '1') ::_exit(ok && act.activated() && act.sockets().at(0).fd.get() == 3 ? 0 : 11);
      ::_exit(!ok && why.find("SOCKACT_ALLOW_PARENT_PID=1") != std::string::npos ? 0 : 12);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "SOCKACT_ALLOW_PARENT_PID=\"" << value << "\": child status " << status;
  }
}

// The quick start with an fd store: a memfd the program stored comes back
// after its socket. activate() refuses it, leaves both fds as they were, and
// says how to take only the socket (sd-listen:NAME).
TEST(Activation, StoredFdAfterTheSocketSaysHowToSelectTheSocket) {
  Env env;
  const sockact_test::owned_fd l = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::dup2(l.get(), 3) != 3) ::_exit(10);
    const int stored = ::memfd_create("state", MFD_CLOEXEC);  // after fd 3 is the socket: 4 or above
    if (stored < 0 || (stored != 4 && ::dup2(stored, 4) != 4)) ::_exit(10);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "web:state", 1);
    auto cfg = sockact::activation_config::http();
    cfg.log = [](const std::string&) {};
    sockact::activation act;
    std::error_code ec;
    std::string why;
    if (sockact::activate(act, cfg, ec, &why)) ::_exit(11);
    const bool says = why.find("fd 4 (\"state\")") != std::string::npos &&
                      why.find("fd store") != std::string::npos &&
                      why.find("sd-listen:NAME") != std::string::npos;
    const bool left = ::fcntl(3, F_GETFD) >= 0 && ::fcntl(4, F_GETFD) >= 0;
    if (!says) std::fprintf(stderr, "why: %s\n", why.c_str());
    // And with the address sd-listen:web, only the socket is taken.
    auto only_web = sockact::activation_config::http("sd-listen:web");
    only_web.log = cfg.log;
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "web:state", 1);
    const bool taken = sockact::activate(act, only_web, ec, &why) && act.sockets().size() == 1;
    ::_exit(says && left && taken ? 0 : 12);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(Activation, DrainClosesIdleKeepsBusyAndUnread) {
  Env env;
  sockact::activation act = make();
  Pair idle = connect_to(act), busy = connect_to(act), unread = connect_to(act);
  int closed = 0;
  auto track = [&](Pair& p) {
    return act.track(p.server.get(), [&closed, &p] { ++closed, p.server.reset(); });
  };
  sockact::connection c_idle = track(idle), c_busy = track(busy), c_unread = track(unread);
  c_idle.received(10);
  c_idle.request_received();
  c_idle.response_sent();
  c_busy.received(3);     // half a request, in the application's buffer
  c_unread.received(10);  // one request answered; the next is still in the socket
  c_unread.request_received();
  c_unread.response_sent();
  send_all(unread.client.get(), "GET / HTTP/1.1\r\n\r\n");
  std::this_thread::sleep_for(20ms);
  act.on_signal(SIGTERM);
  EXPECT_TRUE(act.draining());
  EXPECT_TRUE(server_closed(idle)) << "an idle connection is closed at once";
  EXPECT_TRUE(busy.server) << "a request in progress is not closed";
  EXPECT_TRUE(unread.server) << "a connection with unread bytes counts as busy";
  EXPECT_EQ(closed, 1);
  EXPECT_FALSE(c_busy.keep_alive()) << "draining: the response closes the connection";
  EXPECT_TRUE(c_busy.keep_alive(5)) << "unless the next request is already buffered";
  EXPECT_TRUE(c_unread.keep_alive()) << "or already in the socket";
  c_busy.response_sent();
  c_idle = sockact::connection();
  run_until(act, [&] { return !busy.server; });
  EXPECT_FALSE(busy.server) << "closed once its response was sent";
}

TEST(Activation, ResponseSentWithBufferedBytesStaysBusy) {
  Env env;
  sockact::activation act = make();
  Pair p = connect_to(act);
  sockact::connection c = track_server(act, p);
  c.received(40);
  c.request_received();
  c.response_sent(20);  // a pipelined request follows in the buffer
  act.on_signal(SIGTERM);
  act.on_timer();
  EXPECT_TRUE(p.server) << "the pipelined request must be answered before the drain closes it";
  EXPECT_EQ(act.state().tracker().active(), 1u);
  c.request_received();
  c.response_sent();
  run_until(act, [&] { return !p.server; });
  EXPECT_FALSE(p.server);
}

TEST(Activation, SilentConnectionGetsTheGracePeriod) {
  Env env;
  sockact::activation act = make_own([](auto& l) { l.new_connection_grace = 200ms; });
  Pair p = connect_to(act);
  sockact::connection c = track_server(act, p);
  const auto t0 = clock_type::now();
  act.on_signal(SIGTERM);
  EXPECT_TRUE(p.server) << "it may not have sent its request yet";
  run_until(act, [&] { return !p.server; });
  EXPECT_FALSE(p.server);
  EXPECT_GE(clock_type::now() - t0, 190ms);
}

// An activation whose request heads time out after 100 ms.
sockact::activation with_headers_timeout() {
  return make_own([](auto& l) { l.headers_timeout = 100ms; });
}

TEST(Activation, HeadersTimeoutSends408AndCloses) {
  Env env;
  sockact::activation act = with_headers_timeout();
  Pair slow = connect_to(act), done = connect_to(act);
  sockact::connection c = track_server(act, slow), d = track_server(act, done);
  c.received(1);  // one byte of a request head, then nothing
  d.received(30);
  d.headers_received();  // its head is complete; a slow handler is not a slow client
  const auto t0 = clock_type::now();
  run_until(act, [&] { return !slow.server; });
  EXPECT_FALSE(slow.server);
  EXPECT_GE(clock_type::now() - t0, 90ms);
  int err = 0;
  EXPECT_EQ(read_all(slow.client.get(), err).rfind("HTTP/1.1 408", 0), 0u);
  EXPECT_EQ(err, 0) << "FIN, not a reset";
  EXPECT_TRUE(done.server);
  EXPECT_FALSE(act.draining()) << "a timeout closes one connection, not the server";
}

// parsed(): one call at the parser stands for received(), headers_received()
// and request_received(). HEADERS_TIMEOUT 100 ms, REQUEST_TIMEOUT 300 ms.
TEST(Activation, ParsedIsReceivedHeadersReceivedOrRequestReceived) {
  Env env;
  sockact::activation act = make_own([](auto& l) {
    l.headers_timeout = 100ms;
    l.request_timeout = 300ms;
  });
  Pair slow = connect_to(act), body = connect_to(act), whole = connect_to(act);
  sockact::connection s = track_server(act, slow), b = track_server(act, body), w = track_server(act, whole);
  for (sockact::connection* c : {&s, &b, &w}) c->parsed(0, false);
  EXPECT_EQ(act.state().tracker().active(), 0u) << "nothing buffered: all stay idle";
  s.parsed(7, false);  // half a request head
  EXPECT_EQ(act.state().tracker().active(), 1u) << "a byte buffered is a request begun";
  b.parsed(10, false);
  b.parsed(40, false, true);  // the head is whole, the body still coming
  w.parsed(10, false);
  w.parsed(30, true);  // the request is whole: its clocks stop
  EXPECT_EQ(act.state().tracker().active(), 3u);
  const auto t0 = clock_type::now();
  run_until(act, [&] { return !slow.server; });
  EXPECT_FALSE(slow.server) << "HEADERS_TIMEOUT ran from the partial parse";
  int err = 0;
  EXPECT_EQ(read_all(slow.client.get(), err).rfind("HTTP/1.1 408", 0), 0u);
  EXPECT_TRUE(body.server) << "a request whose head is whole is not cut by HEADERS_TIMEOUT";
  run_until(act, [&] { return !body.server; });
  EXPECT_FALSE(body.server) << "REQUEST_TIMEOUT still bounds its body";
  EXPECT_GE(clock_type::now() - t0, 250ms);
  run_until(act, [&] { return clock_type::now() - t0 > 400ms; });
  EXPECT_TRUE(whole.server) << "a whole request is not timed out while it is answered";
  s = sockact::connection();  // the program drops what the library closed
  b = sockact::connection();
  w.response_sent();
  w.parsed(0, false);
  EXPECT_EQ(act.state().tracker().active(), 0u) << "answered, nothing buffered: idle again";
}

// The client pipelined more than the server read; the server answers one and
// closes. A plain close() resets the connection (the client may lose the
// answer); conn.close() sends FIN and reads the rest away.
TEST(Activation, GracefulCloseSendsFinNotReset) {
  Env env;
  sockact::activation act = make();
  for (const bool graceful : {false, true}) {
    Pair p = connect_to(act);
    send_all(p.client.get(), "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    std::this_thread::sleep_for(20ms);
    char head[19];
    ASSERT_EQ(::recv(p.server.get(), head, sizeof head, 0), 19);  // the first request only
    send_all(p.server.get(), "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    sockact::connection c = track_server(act, p);
    if (graceful)
      c.close();
    else
      p.server.reset();
    int err = 0;
    const std::string got = read_all(p.client.get(), err);
    if (graceful) {
      EXPECT_EQ(err, 0) << "graceful close: " << std::strerror(err);
      EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u);
    } else {
      EXPECT_EQ(err, ECONNRESET) << "without it, the unread request resets the connection";
    }
  }
  act.finish();
}

TEST(Activation, ShutdownTimeoutClosesEverything) {
  Env env;
  sockact::activation act = make_own([](auto& l) { l.shutdown_timeout = 100ms; });
  Pair p = connect_to(act);
  sockact::connection c = track_server(act, p);
  c.received(5);  // never finishes
  auto r = act.on_signal(SIGTERM);
  EXPECT_TRUE(r.stop_accepting);
  EXPECT_FALSE(r.finished);
  bool finished = false;
  run_until(act, [&] {
    finished = finished || act.on_timer().finished;
    return finished;
  });
  EXPECT_TRUE(finished);
  EXPECT_FALSE(p.server);
}

// An activation that goes idle after `idle` even though it bound its socket itself.
sockact::activation idle_after(std::chrono::milliseconds idle) {
  return make_own([idle](auto& l) {
    l.idle_timeout = idle;
    l.idle_only_when_activated = false;
    l.shutdown_timeout = 5s;
  });
}

// A connection accepted while an idle drain runs (its listeners still open)
// ends the drain: served with keep-alive, the idle timeout counting again.
TEST(Activation, ConnectionDuringTheIdleDrainResumesServing) {
  Env env;
  log_lines.clear();
  sockact::activation act = idle_after(100ms);
  Pair pooled = connect_to(act);
  sockact::connection c_pooled = track_server(act, pooled);
  c_pooled.received(10);
  c_pooled.request_received();
  c_pooled.response_sent();
  run_until(act, [&] { return act.draining(); });
  ASSERT_TRUE(act.draining());
  EXPECT_TRUE(act.state().listening()) << "an idle drain keeps its listeners";
  EXPECT_TRUE(server_closed(pooled)) << "its idle connection gets its FIN at once";
  c_pooled = sockact::connection();
  pooled.client.reset();  // the client's FIN ends the linger
  Pair fresh = connect_to(act);
  sockact::connection c_fresh = track_server(act, fresh);
  EXPECT_FALSE(act.draining()) << "a new connection: not idle any more";
  EXPECT_TRUE(c_fresh.keep_alive());
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(act.on_timer().stop_accepting);
  EXPECT_EQ(act.state().current(), sockact::lifecycle::phase::serving);
  EXPECT_TRUE(fresh.server) << "not closed as a drain's silent connection";
  EXPECT_NE(log_lines.find("a new connection during the idle drain: serving again"), std::string::npos)
      << log_lines;
  c_fresh = sockact::connection();
  fresh.server.reset();
  // Idle again, and this time nothing comes: the listeners close, then it is done.
  bool stopped = false, finished = false;
  run_until(act, [&] {
    const auto s = act.on_timer();
    EXPECT_FALSE(s.finished && !stopped) << "the listeners close before the loop ends";
    stopped = stopped || s.stop_accepting;
    finished = finished || s.finished;
    return finished;
  });
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(finished);
}

// A stop signal while an idle drain runs: the request received meanwhile is
// still answered; only a second signal cuts.
TEST(Activation, StopSignalDuringTheIdleDrainAnswersWhatWasReceived) {
  Env env;
  sockact::activation act = idle_after(100ms);
  Pair p = connect_to(act);
  sockact::connection c = track_server(act, p);
  run_until(act, [&] { return act.draining(); });
  ASSERT_TRUE(act.draining());
  c.received(20);  // a request arrives during the idle drain (the grace for a new connection)
  const auto r = act.on_signal(SIGTERM);
  EXPECT_TRUE(r.stop_accepting);
  EXPECT_FALSE(r.finished) << "the first stop signal must not cut a received request";
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(act.on_timer().finished);
  EXPECT_TRUE(p.server) << "its request is in progress";
  const auto second = act.on_signal(SIGTERM);
  EXPECT_TRUE(second.finished) << "a second stop signal cuts";
  EXPECT_FALSE(p.server);
  const auto t0 = clock_type::now();
  act.finish();
  EXPECT_LT(clock_type::now() - t0, 500ms) << "and does not linger";
}

// SEND_TIMEOUT: a client that never reads is reset once the server's unsent
// output has not moved for the timeout; one that reads slowly is not.
TEST(Activation, SendTimeoutResetsAClientThatNeverReads) {
  Env env;
  sockact::activation act = make_own([](auto& l) { l.send_timeout = 300ms; });
  Pair stuck = connect_to(act), slow = connect_to(act);
  int small = 4096;
  for (Pair* p : {&stuck, &slow}) {
    ASSERT_EQ(::setsockopt(p->client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    ASSERT_EQ(::setsockopt(p->server.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  }
  sockact::connection c_stuck = track_server(act, stuck), c_slow = track_server(act, slow);
  c_stuck.request_received();  // busy: answering, forever
  c_slow.request_received();
  const std::string chunk(65536, 'x');
  auto fill = [&](Pair& p) {
    while (p.server && ::send(p.server.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
  };
  fill(stuck);
  const auto t0 = clock_type::now();
  const auto end = t0 + 3s;
  char buf[16384];
  while (stuck.server && clock_type::now() < end) {
    fill(slow);
    (void)::recv(slow.client.get(), buf, sizeof buf, MSG_DONTWAIT);  // a slow reader makes progress
    act.on_timer();
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(stuck.server) << "the client that never reads is closed";
  EXPECT_GE(clock_type::now() - t0, 280ms) << "not before SEND_TIMEOUT";
  EXPECT_TRUE(slow.server) << "a slow reader is not";
  int err = 0;
  read_all(stuck.client.get(), err);
  EXPECT_EQ(err, ECONNRESET) << "reset: its unsent bytes are dropped, nothing lingers";
  EXPECT_EQ(act.connections(), 2u) << "the handle stays with its owner until destroyed";
  c_stuck = sockact::connection();
  EXPECT_EQ(act.state().tracker().active(), 1u) << "only the slow reader is busy";
}

// SEND_TIMEOUT looks at a connection's send queue only where output may
// wait: a request in progress, a response sent since the last look, or a
// queue not empty then. Idle keep-alive connections cost no syscall per
// walk. (Every connection used to be looked at every 250 ms.)
TEST(Activation, SendQueueIsLookedAtOnlyWhereOutputMayWait) {
  Env env;
  sockact::activation act = make_own([](auto& l) { l.send_timeout = 300ms; });
  outq_calls = 0;
  std::vector<Pair> pairs;
  std::vector<sockact::connection> conns;
  for (int i = 0; i < 11; ++i) pairs.push_back(connect_to(act));
  for (Pair& p : pairs) conns.push_back(track_server(act, p));
  for (std::size_t i = 1; i < conns.size(); ++i) {
    conns[i].request_received();
    conns[i].response_sent();  // idle between requests, nothing queued
  }
  conns[0].request_received();  // busy
  act.on_timer();
  EXPECT_EQ(outq_calls.exchange(0), 11) << "the first walk looks at every one";
  for (int i = 0; i < 5; ++i) act.on_timer();
  EXPECT_EQ(outq_calls.exchange(0), 5) << "then only at the busy one";
  conns[3].request_received();
  conns[3].response_sent();
  act.on_timer();
  EXPECT_EQ(outq_calls.exchange(0), 2) << "and once at one that sent a response since";
}

// The walk makes its syscalls outside the registry's lock: a connection
// destroyed meanwhile, on another thread, is not waited for, and its close
// function never runs, though it was due for SEND_TIMEOUT. (The lock used to
// be held across every TIOCOUTQ.)
TEST(Activation, SendQueueLookupsHoldNoLock) {
  Env env;
  sockact::activation act = make_own([](auto& l) { l.send_timeout = 100ms; });
  Pair busy = connect_to(act), stuck = connect_to(act);
  int small = 4096;
  ASSERT_EQ(::setsockopt(stuck.client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_EQ(::setsockopt(stuck.server.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  sockact::connection c_busy = track_server(act, busy);
  bool stuck_closed = false;
  sockact::connection c_stuck = act.track(stuck.server.get(), [&] { stuck_closed = true; });
  c_busy.request_received();
  c_stuck.request_received();
  const std::string chunk(65536, 'x');
  while (::send(stuck.server.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
  }
  act.on_timer();  // the stall begins
  std::this_thread::sleep_for(150ms);
  std::future<std::size_t> other;
  bool waited = false;
  during_outq = [&] {
    other = std::async(std::launch::async, [&] {
      c_stuck = sockact::connection();  // destroyed, then its fd closed, as its owner would
      stuck.server.reset();
      return act.connections();
    });
    waited = other.wait_for(2s) != std::future_status::ready;
  };
  during_outq_armed = true;
  act.on_timer();  // SEND_TIMEOUT is due for `stuck`
  ASSERT_FALSE(during_outq_armed.exchange(false)) << "no send queue was looked at";
  EXPECT_FALSE(waited) << "the registry's lock was held during the look-up";
  EXPECT_EQ(other.get(), 1u);
  EXPECT_FALSE(stuck_closed) << "closed after it was destroyed";
  EXPECT_TRUE(busy.server) << "the busy one is not stalled";
  for (int i = 0; i < 3; ++i) act.on_timer();
  EXPECT_EQ(act.connections(), 1u);
  outq_calls = 0;
}

}  // namespace
