// sockact::libevent_driver with a real event_base, a real evhttp, a real
// listening TCP socket on 127.0.0.1 (bound by activate()) and real clients in
// a thread: the idle exit ends the loop and closes the listener and the idle
// keep-alive connection; a connection accepted before the idle deadline that
// sends its request during the drain is answered (evhttp alone loses it);
// SIGTERM lets a request the handler holds finish, with `Connection: close`;
// a partial head is cut at HEADERS_TIMEOUT with the 408, a slow body is not;
// SHUTDOWN_TIMEOUT leaves a held request to evhttp, which frees it when the
// late reply fails (ASan: no use after free); from() names the socket;
// listen() serves a protocol of one's own on evconnlistener and is handed an
// Accept=yes connection, which serve() refuses. Times are checked as order
// and lower bounds; upper bounds are loose. SPDX-License-Identifier: MIT
#include <sockact/libevent.hpp>  // first: the header is self-contained

#include "driver_test_support.hpp"

#include <gtest/gtest.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

using sockact_test::http_client;
using sockact_test::http_get;
using sockact_test::logged;
using sockact_test::read_responses;
using sockact_test::send_all;

sockact::activation_config config(ms idle, ms shutdown = 5000ms, const char* address = "127.0.0.1:0") {
  ::signal(SIGPIPE, SIG_IGN);  // libevent writes with writev(2), as a server must
  return sockact_test::test_config(sockact::activation_config::http(address), idle, shutdown);
}

// An evhttp server like the example's: "/" says which socket, "/hold/<ms>"
// answers after a timer (the handler holds the request meanwhile).
struct server {
  event_base* base = event_base_new();
  evhttp* http = evhttp_new(base);
  sockact::libevent_driver* driver = nullptr;
  struct hold {
    server* owner;
    evhttp_request* req;
    event* timer;
  };
  std::vector<std::unique_ptr<hold>> holds;

  server() { evhttp_set_gencb(http, &server::handle, this); }
  ~server() {
    for (auto& h : holds)
      if (h->timer != nullptr) event_free(h->timer);
    evhttp_free(http);
    event_base_free(base);
  }

  void reply(evhttp_request* req, int status, const std::string& body) {
    if (!driver->keep_alive(req))
      evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, body.data(), body.size());
    evhttp_send_reply(req, status, nullptr, out);
    evbuffer_free(out);
  }

  static void handle(evhttp_request* req, void* arg) {
    auto* self = static_cast<server*>(arg);
    const std::string uri = evhttp_request_get_uri(req);
    if (uri == "/") {
      const sockact::server_socket* from = self->driver->from(req);
      return self->reply(req, 200, "hello " + (from != nullptr ? from->name : std::string("?")));
    }
    if (uri.rfind("/hold/", 0) == 0) {
      const long n = std::strtol(uri.c_str() + 6, nullptr, 10);
      auto h = std::make_unique<hold>(hold{self, req, nullptr});
      h->timer = evtimer_new(self->base, &server::release, h.get());
      const timeval tv{static_cast<time_t>(n / 1000), static_cast<suseconds_t>(n % 1000 * 1000)};
      evtimer_add(h->timer, &tv);
      self->holds.push_back(std::move(h));
      return;
    }
    self->reply(req, 404, "not found");
  }

  static void release(evutil_socket_t, short, void* arg) {
    auto* h = static_cast<hold*>(arg);
    h->owner->reply(h->req, 200, "held");
    event_free(h->timer);
    h->timer = nullptr;
  }

  // Runs the loop, bounded; returns how long it ran.
  ms run(ms bound = 10000ms) {
    const timeval tv{static_cast<time_t>(bound.count() / 1000), 0};
    event_base_loopexit(base, &tv);
    const auto t0 = steady::now();
    event_base_dispatch(base);
    return std::chrono::duration_cast<ms>(steady::now() - t0);
  }
};

int port_of(sockact::activation& act, std::size_t i = 0) {
  return sockact_test::local_port(act.sockets().at(i).fd.get());
}

// The server with its evhttp served by a libevent_driver over act (the
// driver goes before the event_base it runs on).
struct served_server : server {
  sockact::libevent_driver events;
  explicit served_server(sockact::activation& act) : events(base, act) {
    driver = &events;
    events.serve(http);
  }
};

// What a client saw that asked for `path` and sent this process SIGTERM
// `after` that, and how long the loop ran.
struct sigterm_run {
  ms took{};
  std::string answer;
  bool eof = false;
};
sigterm_run run_get_then_sigterm(served_server& s, int port, const std::string& path, ms after) {
  sigterm_run r;
  std::thread c([&] {
    sockact_test::owned_fd fd = http_client(port);
    send_all(fd.get(), http_get(path));
    std::this_thread::sleep_for(after);
    ::kill(::getpid(), SIGTERM);
    r.answer = read_responses(fd.get(), 1, &r.eof);
  });
  r.took = s.run();
  c.join();
  return r;
}

TEST(LibeventDriver, IdleExitEndsTheLoopAndClosesTheListenerAndIdleConnections) {
  sockact::activation act = sockact::activate(config(300ms));
  served_server s(act);
  const int port = port_of(act);
  std::string answer;
  bool eof = false;
  std::thread c([&] {
    sockact_test::owned_fd fd = http_client(port);
    send_all(fd.get(), http_get("/"));
    answer = read_responses(fd.get(), 1, &eof);  // keep-alive: then the drain's FIN
  });
  const ms took = s.run();
  c.join();
  EXPECT_TRUE(s.events.finished());
  EXPECT_GE(took, 300ms);
  EXPECT_NE(answer.find("hello 127.0.0.1:"), std::string::npos) << answer;
  EXPECT_TRUE(eof) << "the idle keep-alive connection gets a FIN";
  EXPECT_FALSE(act.sockets().at(0).fd) << "the listener is closed";
  EXPECT_TRUE(logged("stopping (IDLE)"));
  EXPECT_EQ(act.connections(), 0u);
}

// The issue: evhttp accepts for itself; a connection accepted but not yet
// parsed when the idle deadline comes must not be lost.
TEST(LibeventDriver, AConnectionAcceptedBeforeTheIdleDeadlineIsServedDuringTheDrain) {
  sockact::activation act = sockact::activate(config(200ms));
  served_server s(act);
  const int port = port_of(act);
  std::string answer;
  std::thread c([&] {
    sockact_test::owned_fd fd = http_client(port);
    std::this_thread::sleep_for(320ms);  // past the deadline, within the grace for new connections
    send_all(fd.get(), http_get("/"));
    bool eof = false;
    answer = read_responses(fd.get(), 1, &eof);
  });
  s.run();
  c.join();
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_TRUE(logged("stopping (IDLE), 1 connection(s) open"));
}

TEST(LibeventDriver, SigtermLetsAHeldRequestFinishWithConnectionClose) {
  sockact::activation act = sockact::activate(config(0ms));
  served_server s(act);
  const sigterm_run r = run_get_then_sigterm(s, port_of(act), "/hold/400", 100ms);
  EXPECT_GE(r.took, 400ms);
  EXPECT_NE(r.answer.find("HTTP/1.1 200"), std::string::npos) << r.answer;
  EXPECT_NE(r.answer.find("Connection: close"), std::string::npos) << r.answer;
  EXPECT_TRUE(r.eof);
  EXPECT_TRUE(logged("stopping (SIGTERM)"));
  EXPECT_FALSE(act.sockets().at(0).fd);
}

TEST(LibeventDriver, APartialHeadIsCutAtHeadersTimeoutButASlowBodyIsNot) {
  sockact::activation_config cfg = config(0ms);
  cfg.lifecycle.headers_timeout = 300ms;
  sockact::activation act = sockact::activate(cfg);
  served_server s(act);
  const int port = port_of(act);
  std::string partial, slow;
  bool partial_eof = false;
  ms partial_took{};
  std::thread c([&] {
    sockact_test::owned_fd head = http_client(port);
    sockact_test::owned_fd body = http_client(port);
    const auto t0 = steady::now();
    send_all(head.get(), "GET / HTTP/1.1\r\nHost: t\r\n");
    send_all(body.get(), "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n");
    std::thread dribble([&] {
      for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(150ms);
        send_all(body.get(), "x");
      }
    });
    partial = read_responses(head.get(), 1, &partial_eof);
    partial_took = std::chrono::duration_cast<ms>(steady::now() - t0);
    slow = read_responses(body.get(), 1);
    dribble.join();
    ::kill(::getpid(), SIGTERM);
  });
  s.run();
  c.join();
  EXPECT_NE(partial.find("408"), std::string::npos) << partial;
  EXPECT_TRUE(partial_eof);
  EXPECT_GE(partial_took, 300ms);
  EXPECT_NE(slow.find("HTTP/1.1 404"), std::string::npos) << "a body over 600 ms after its head: " << slow;
}

// SHUTDOWN_TIMEOUT with a request the handler still holds: the driver shuts
// the socket instead of freeing the connection under the request; the late
// reply fails and evhttp frees the connection (and the driver forgets it).
TEST(LibeventDriver, TheShutdownTimeoutLeavesAHeldRequestToEvhttp) {
  sockact::activation act = sockact::activate(config(0ms, 200ms));
  served_server s(act);
  const sigterm_run r = run_get_then_sigterm(s, port_of(act), "/hold/700", 50ms);
  EXPECT_GE(r.took, 200ms);
  EXPECT_LT(r.took, 700ms) << "cut at SHUTDOWN_TIMEOUT, not after the handler";
  EXPECT_EQ(r.answer.find("HTTP/1.1"), std::string::npos) << r.answer;
  EXPECT_EQ(act.connections(), 1u) << "the held connection stays registered until evhttp frees it";
  // The hold's timer replies on the shut socket; the write fails.
  const auto until = steady::now() + 3s;
  while (act.connections() > 0 && steady::now() < until) event_base_loop(s.base, EVLOOP_ONCE);
  EXPECT_EQ(act.connections(), 0u);
}

TEST(LibeventDriver, FromNamesTheSocketOfEachConnection) {
  sockact::activation act = sockact::activate(config(0ms, 5000ms, "127.0.0.1:0,127.0.0.1:0"));
  ASSERT_EQ(act.sockets().size(), 2u);
  served_server s(act);
  const int p0 = port_of(act, 0), p1 = port_of(act, 1);
  const std::string n0 = act.sockets()[0].name, n1 = act.sockets()[1].name;
  std::string a0, a1;
  std::thread c([&] {
    sockact_test::owned_fd f0 = http_client(p0), f1 = http_client(p1);
    send_all(f1.get(), http_get("/", true));
    send_all(f0.get(), http_get("/", true));
    a1 = read_responses(f1.get(), 1);
    a0 = read_responses(f0.get(), 1);
    ::kill(::getpid(), SIGINT);
  });
  s.run();
  c.join();
  EXPECT_NE(a0.find("hello " + n0), std::string::npos) << a0;
  EXPECT_NE(a1.find("hello " + n1), std::string::npos) << a1;
  EXPECT_TRUE(logged("stopping (SIGINT)"));
}

// listen(): a line protocol of one's own on bufferevents, tracked by the server.
struct line_client {
  bufferevent* bev = nullptr;
  sockact::connection conn;
};

void on_line(bufferevent* bev, void* arg) {
  auto* c = static_cast<line_client*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  c->conn.received(evbuffer_get_length(in));
  size_t n = 0;
  while (char* line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) {
    std::free(line);
    c->conn.request_received();
    bufferevent_write(bev, "ok\n", 3);
    c->conn.response_sent(evbuffer_get_length(in));
  }
}

void on_line_event(bufferevent*, short, void* arg) {
  auto* c = static_cast<line_client*>(arg);
  bufferevent_free(c->bev);
  delete c;
}

// A line_client on its own bufferevent, tracked by act; it frees itself.
void start_line_client(event_base* base, sockact::activation& act, sockact::unique_fd fd) {
  auto* c = new line_client;
  c->bev = bufferevent_socket_new(base, fd.release(), BEV_OPT_CLOSE_ON_FREE);
  c->conn = act.track(bufferevent_getfd(c->bev), [c] { on_line_event(c->bev, 0, c); });
  bufferevent_setcb(c->bev, on_line, nullptr, on_line_event, c);
  bufferevent_enable(c->bev, EV_READ);
}

TEST(LibeventDriver, ListenServesAProtocolOfItsOwnAndExitsWhenIdle) {
  sockact::activation act = sockact::activate(config(300ms));
  event_base* base = event_base_new();
  int served = 0;
  {
    sockact::libevent_driver driver(base, act);
    driver.listen([&](sockact::unique_fd fd, const sockact::server_socket&) {
      start_line_client(base, act, std::move(fd));
      ++served;
    });
    const int port = port_of(act);
    std::string answer;
    bool eof = false;
    std::thread t([&] {
      sockact_test::owned_fd fd = http_client(port);
      send_all(fd.get(), "a\nb\n");
      answer = read_responses(fd.get(), 0, &eof);
    });
    const timeval bound{10, 0};
    event_base_loopexit(base, &bound);
    event_base_dispatch(base);
    t.join();
    EXPECT_TRUE(driver.finished());
    EXPECT_EQ(answer, "ok\nok\n");
    EXPECT_TRUE(eof);
  }
  event_base_free(base);
  EXPECT_EQ(served, 1);
  EXPECT_EQ(act.connections(), 0u);
}

// Accept=yes: a connected socket passed at fd 3.
TEST(LibeventDriver, AnAcceptYesConnectionGoesToListenAndServeRefusesIt) {
  sockact_test::clear_slots_once();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  sockact_test::owned_fd peer(pair[1]);
  if (pair[0] != 3) {
    ASSERT_EQ(::dup2(pair[0], 3), 3);
    ::close(pair[0]);
  }
  sockact::activation_config cfg = config(0ms);
  cfg.listen.address = "";
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  sockact::activation act = sockact::activate(cfg);
  ASSERT_TRUE(act.sockets().at(0).info.connected);
  {
    event_base* base = event_base_new();
    evhttp* http = evhttp_new(base);
    {
      sockact::libevent_driver driver(base, act);
      std::error_code ec;
      std::string why;
      EXPECT_FALSE(driver.serve(http, ec, &why));
      EXPECT_EQ(ec, std::errc::not_supported);
      EXPECT_NE(why.find("Accept=yes"), std::string::npos) << why;
    }
    evhttp_free(http);
    event_base_free(base);
  }
  event_base* base = event_base_new();
  {
    sockact::libevent_driver driver(base, act);
    int handed = 0;
    driver.listen([&](sockact::unique_fd fd, const sockact::server_socket& from) {
      ++handed;
      EXPECT_TRUE(from.info.connected);
      start_line_client(base, act, std::move(fd));
    });
    std::string answer;
    std::thread t([&] {
      const timeval tv{3, 0};
      ::setsockopt(peer.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      send_all(peer.get(), "one\n");
      char buf[16] = {};
      if (::recv(peer.get(), buf, sizeof buf - 1, 0) > 0) answer = buf;
      ::shutdown(peer.get(), SHUT_WR);  // one request, then the client is done: so is the server
    });
    const timeval bound{10, 0};
    event_base_loopexit(base, &bound);
    event_base_dispatch(base);
    t.join();
    EXPECT_EQ(handed, 1);
    EXPECT_TRUE(driver.finished());
    EXPECT_EQ(answer, "ok\n");
  }
  event_base_free(base);
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
}

}  // namespace
