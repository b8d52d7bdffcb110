// lifecycle: the decisions an event loop carries out, with time passed in.
#include <sockact/lifecycle.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>

namespace {

using namespace std::chrono_literals;
using sockact::lifecycle;
using tp = lifecycle::clock::time_point;

sockact::lifecycle_config config(std::chrono::milliseconds idle, std::chrono::milliseconds drain = 30s) {
  sockact::lifecycle_config c;
  c.idle_timeout = idle;
  c.shutdown_timeout = drain;
  return c;
}

// A stand-in for the manager's notify socket.
class Manager {
 public:
  Manager() {
    fd_ = sockact_test::owned_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string name = "sockact-lifecycle-" + std::to_string(::getpid());
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
    ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  }
  ~Manager() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
  }
  std::string next() {
    char buf[512];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n < 0 ? "(nothing)" : std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  sockact_test::owned_fd fd_;
};

TEST(LifecycleActions, AnyAndWhichConnectionsTheyClose) {
  sockact::lifecycle_actions a;
  EXPECT_FALSE(a.any());
  for (bool busy : {false, true})
    for (bool sent : {false, true}) EXPECT_FALSE(a.closes(busy, sent));
  a.close_new = true;
  EXPECT_TRUE(a.any());
  EXPECT_TRUE(a.closes(false, false)) << "a connection that sent nothing";
  EXPECT_FALSE(a.closes(false, true)) << "one waiting for its next request is not new";
  EXPECT_FALSE(a.closes(true, false));
  a = {};
  a.close_idle = true;
  EXPECT_TRUE(a.closes(false, true));
  EXPECT_FALSE(a.closes(false, false)) << "a new connection keeps its grace";
  EXPECT_FALSE(a.closes(true, true)) << "a request in progress is never idle";
  a = {};
  a.close_all = true;
  for (bool busy : {false, true})
    for (bool sent : {false, true}) EXPECT_TRUE(a.closes(busy, sent));
  for (bool sockact::lifecycle_actions::*flag :
       {&sockact::lifecycle_actions::stop_accepting, &sockact::lifecycle_actions::finished}) {
    sockact::lifecycle_actions one;
    one.*flag = true;
    EXPECT_TRUE(one.any());
    EXPECT_FALSE(one.closes(false, true));
  }
}

TEST(Lifecycle, IdleStopsAndDrains) {
  Manager m;
  const tp t0{};
  lifecycle lc(config(2s), true, {}, t0);
  int hooks = 0;
  lc.on_stop([&](sockact::stop_reason r) {
    ++hooks;
    EXPECT_EQ(r, sockact::stop_reason::idle);
  });
  lc.ready("serving");
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=serving");
  EXPECT_EQ(lc.next_deadline(t0), t0 + 2s) << "armed at start";
  EXPECT_FALSE(lc.on_timer(t0 + 1s).close_idle);
  const sockact::lifecycle_actions a = lc.on_timer(t0 + 2s);
  EXPECT_TRUE(a.close_idle);
  EXPECT_FALSE(a.stop_accepting) << "an idle drain keeps the listeners: a new connection ends it";
  EXPECT_FALSE(a.close_new) << "a client that just connected gets time to send its request";
  EXPECT_FALSE(a.close_all);
  EXPECT_TRUE(lc.listening());
  EXPECT_EQ(lc.next_deadline(t0 + 2s), t0 + 4s) << "the new-connection grace";
  EXPECT_TRUE(lc.on_timer(t0 + 4s).close_new);
  EXPECT_TRUE(lc.draining());
  EXPECT_EQ(lc.reason(), sockact::stop_reason::idle);
  EXPECT_EQ(m.next(), "(nothing)") << "no STOPPING=1 while it may still serve again";
  EXPECT_EQ(hooks, 0);
  EXPECT_FALSE(lc.on_connections(1).any());
  const sockact::lifecycle_actions last = lc.on_connections(0);
  EXPECT_TRUE(last.stop_accepting) << "nothing open: the listeners close first";
  EXPECT_FALSE(last.finished) << "a connection accepted just before they closed is still served";
  EXPECT_FALSE(lc.listening());
  EXPECT_EQ(m.next(), "STOPPING=1\nSTATUS=stopping: IDLE");
  EXPECT_EQ(hooks, 1);
  EXPECT_FALSE(lc.resume(t0 + 5s)) << "too late: the listeners are closed";
  EXPECT_TRUE(lc.on_connections(0).finished);
  EXPECT_EQ(lc.current(), lifecycle::phase::done);
}

TEST(Lifecycle, NewConnectionEndsTheIdleDrain) {
  Manager m;
  const tp t0{};
  lifecycle lc(config(2s), true, {}, t0);
  int hooks = 0;
  lc.on_stop([&](sockact::stop_reason) { ++hooks; });
  EXPECT_TRUE(lc.on_timer(t0 + 2s).close_idle);
  ASSERT_TRUE(lc.draining());
  EXPECT_TRUE(lc.resume(t0 + 2500ms));
  EXPECT_EQ(lc.current(), lifecycle::phase::serving);
  EXPECT_FALSE(lc.reason().has_value());
  EXPECT_EQ(lc.next_deadline(t0 + 2500ms), t0 + 4500ms) << "the idle timeout counts from the connection";
  EXPECT_FALSE(lc.on_timer(t0 + 4s).any()) << "no drain deadline left over";
  EXPECT_EQ(hooks, 0);
  EXPECT_EQ(m.next(), "(nothing)");
  EXPECT_FALSE(lc.resume(t0 + 4s)) << "serving: nothing to resume";
  EXPECT_TRUE(lc.on_timer(t0 + 4500ms).close_idle) << "idle again";
}

TEST(Lifecycle, ConnectionInTheBacklogWhenTheIdleDrainEndsIsServed) {
  const sockact_test::owned_fd l = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  const tp t0{};
  lifecycle lc(config(1s), true, {l.get()}, t0);
  EXPECT_TRUE(lc.on_timer(t0 + 1s).close_idle);
  const sockact_test::owned_fd c(sockact_test::connect_loopback(sockact_test::local_port(l.get())));
  ASSERT_GE(c.get(), 0);
  EXPECT_FALSE(lc.on_connections(0).stop_accepting) << "a client waits: serve it";
  EXPECT_EQ(lc.current(), lifecycle::phase::serving);
}

TEST(Lifecycle, StopSignalDuringTheIdleDrainContinuesIt) {
  Manager m;
  const tp t0{};
  lifecycle lc(config(1s, 5s), true, {}, t0);
  std::vector<sockact::stop_reason> seen;
  lc.on_stop([&](sockact::stop_reason r) { seen.push_back(r); });
  EXPECT_TRUE(lc.on_timer(t0 + 1s).close_idle);
  const sockact::lifecycle_actions a = lc.on_signal(SIGTERM, t0 + 2s);
  EXPECT_TRUE(a.stop_accepting) << "a stop signal: no new connection ends this drain";
  EXPECT_FALSE(a.close_all) << "the first stop signal must not cut what was received";
  EXPECT_FALSE(a.finished);
  EXPECT_TRUE(lc.draining());
  EXPECT_FALSE(lc.listening());
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigterm);
  EXPECT_EQ(seen, std::vector<sockact::stop_reason>{sockact::stop_reason::sigterm});
  EXPECT_EQ(m.next(), "STOPPING=1\nSTATUS=stopping: SIGTERM");
  EXPECT_FALSE(lc.resume(t0 + 2s));
  EXPECT_FALSE(lc.on_timer(t0 + 5s).close_all)
      << "the drain's deadline stays SHUTDOWN_TIMEOUT from its start";
  EXPECT_TRUE(lc.on_timer(t0 + 6s).close_all);
  EXPECT_EQ(lc.current(), lifecycle::phase::done);
}

TEST(Lifecycle, SecondStopSignalDuringTheIdleDrainCuts) {
  const tp t0{};
  lifecycle lc(config(1s, 5s), true, {}, t0);
  EXPECT_TRUE(lc.on_timer(t0 + 1s).close_idle);
  EXPECT_TRUE(lc.on_connections(0).stop_accepting) << "the listeners closed, the drain still lingers";
  const sockact::lifecycle_actions first = lc.on_signal(SIGTERM, t0 + 2s);
  EXPECT_FALSE(first.close_all) << "still the first stop signal";
  EXPECT_FALSE(first.stop_accepting) << "already closed";
  const sockact::lifecycle_actions second = lc.on_signal(SIGINT, t0 + 2100ms);
  EXPECT_TRUE(second.close_all);
  EXPECT_TRUE(second.finished);
}

TEST(Lifecycle, IdleOnlyWhenActivatedByDefault) {
  const tp t0{};
  lifecycle lc(config(1s), false, {}, t0);
  EXPECT_EQ(lc.next_deadline(t0), tp::max());
  EXPECT_FALSE(lc.on_timer(t0 + 1h).any());
  auto c = config(1s);
  c.idle_only_when_activated = false;
  lifecycle always(c, false, {}, t0);
  EXPECT_TRUE(always.on_timer(t0 + 1s).close_idle);
}

TEST(Lifecycle, ActivityKeepsItServing) {
  const tp t0{};
  lifecycle lc(config(1s), true, {}, t0);
  auto busy = lc.tracker().begin();
  EXPECT_FALSE(lc.on_timer(t0 + 5s).any());
  busy.end();
  EXPECT_FALSE(lc.on_timer(t0 + 5100ms).any());
  EXPECT_TRUE(lc.on_timer(t0 + 6100ms).close_idle);
}

TEST(Lifecycle, ConnectionInTheBacklogAtTheDeadlineIsServed) {
  const sockact_test::owned_fd l = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  const tp t0{};
  lifecycle lc(config(1s), true, {l.get()}, t0);
  const sockact_test::owned_fd c(sockact_test::connect_loopback(sockact_test::local_port(l.get())));
  ASSERT_GE(c.get(), 0);
  EXPECT_FALSE(lc.on_timer(t0 + 1s).any()) << "a client is waiting: no exit";
  EXPECT_EQ(lc.current(), lifecycle::phase::serving);
  EXPECT_EQ(lc.next_deadline(t0 + 1s), t0 + 2s) << "the idle period starts again";
}

TEST(Lifecycle, SignalsAndTheShutdownTimeout) {
  const tp t0{};
  lifecycle lc(config(0ms, 5s), true, {}, t0);
  sockact::stop_reason seen = sockact::stop_reason::idle;
  lc.on_stop([&](sockact::stop_reason r) { seen = r; });
  EXPECT_EQ(lc.next_deadline(t0), tp::max()) << "no idle timeout, no watchdog";
  const auto a = lc.on_signal(SIGTERM, t0);
  EXPECT_TRUE(a.stop_accepting);
  EXPECT_TRUE(a.close_idle);
  EXPECT_EQ(seen, sockact::stop_reason::sigterm);
  EXPECT_EQ(lc.next_deadline(t0), t0 + 2s) << "first the grace for silent new connections";
  EXPECT_TRUE(lc.on_timer(t0 + 2s).close_new);
  EXPECT_EQ(lc.next_deadline(t0 + 2s), t0 + 5s);
  EXPECT_FALSE(lc.on_timer(t0 + 4s).close_all);
  const auto b = lc.on_timer(t0 + 5s);
  EXPECT_TRUE(b.close_all) << "SHUTDOWN_TIMEOUT: the rest is closed";
  EXPECT_TRUE(b.finished);
}

TEST(Lifecycle, SecondSignalClosesEverythingNow) {
  const tp t0{};
  lifecycle lc(config(0ms), true, {}, t0);
  lc.on_signal(SIGINT, t0);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigint);
  const auto a = lc.on_signal(SIGINT, t0 + 1s);
  EXPECT_TRUE(a.close_all);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(lc.reason(), sockact::stop_reason::sigint) << "the first reason stays";
}

TEST(Lifecycle, WatchdogPingsAtHalfTheInterval) {
  Manager m;
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  const tp t0{};
  lifecycle lc(config(0ms), true, {}, t0);
  EXPECT_EQ(lc.next_deadline(t0), t0);
  lc.on_timer(t0);
  EXPECT_EQ(m.next(), "WATCHDOG=1");
  EXPECT_EQ(lc.next_deadline(t0), t0 + 1s);
  lc.on_timer(t0 + 500ms);
  EXPECT_EQ(m.next(), "(nothing)");
  lc.on_timer(t0 + 1s);
  EXPECT_EQ(m.next(), "WATCHDOG=1");
}

}  // namespace
