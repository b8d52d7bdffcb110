// One set of cases, run against every driver (GoogleTest typed tests): each
// case starts a small line server on the driver in a forked child, with the
// socket at fd 3 and real LISTEN_* and *_TIMEOUT variables, as a manager
// starts it, and talks to it with real loopback clients. The protocol: a line
// is a request, answered "done\n"; the connection is kept unless the server
// drains. Cases: idle exit, a request in progress holds it off, the drain
// waits for a request in flight, a second signal cuts, Accept=yes, EMFILE
// back-off (without spinning), and HEADERS_TIMEOUT. Waits are bounded, and
// the assertions are on events (log lines, replies, exits), not on timings.
// SPDX-License-Identifier: MIT
#include <sockact/poll_driver.hpp>  // first: the header is self-contained

#include <sockact/activation.hpp>
#include <sockact/thread_driver.hpp>
#if SOCKACT_CONFORMANCE_ASIO
#include <sockact/asio.hpp>
#endif
#if SOCKACT_CONFORMANCE_LIBUV
#include <sockact/libuv_server.hpp>
#endif
#if SOCKACT_CONFORMANCE_LIBEVENT
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <sockact/libevent.hpp>
#endif

#include "driver_child.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sockact_test::driver_child;
using sockact_test::owned_fd;

// The server's side of the protocol, the same on every driver: each whole
// line is a request, answered at once. False: close the connection (drain).
template <class Conn, class Write>
bool serve_lines(Conn& conn, std::string& in, Write write) {
  for (std::size_t eol; (eol = in.find('\n')) != std::string::npos;) {
    in.erase(0, eol + 1);
    conn.request_received();
    const bool keep = conn.keep_alive(in.size());
    write("done\n");
    conn.response_sent(in.size());
    if (!keep) return false;
  }
  if (!in.empty()) sockact_test::log_to_parent("child: partial request");  // the parent waits for it
  return true;
}

void send_text(int fd, const char* s) {
  (void)!::send(fd, s, std::strlen(s), MSG_NOSIGNAL);
}

// ---------------------------------------------------------------------------
// The bindings: a line server on each driver. run() serves until the driver
// is done; `before_loop` runs once the driver is set up.
// ---------------------------------------------------------------------------

// A binding whose library this build did not find: its cases are skipped.
struct missing_binding {
  static int run(sockact::activation&, const std::function<void()>&) { return 5; }
};

struct poll_binding {
  static constexpr const char* skip = nullptr;
  static int run(sockact::activation& act, const std::function<void()>& before_loop) {
    struct client {
      sockact::unique_fd fd;
      sockact::connection conn;
      std::string in;
    };
    sockact::unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    std::map<int, std::unique_ptr<client>> clients;
    const auto watch = [&](int fd) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
    };
    const auto drop = [&](int fd) {
      ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, fd, nullptr);
      clients.erase(fd);
    };
    sockact::poll_driver driver(act, [&](sockact::unique_fd c, const sockact::server_socket&) {
      const int fd = c.get();
      auto cl = std::make_unique<client>();
      cl->fd = std::move(c);
      cl->conn = act.track(fd, [&drop, fd] { drop(fd); });
      watch(fd);
      clients[fd] = std::move(cl);
    });
    watch(driver.fd());
    before_loop();
    while (!driver.finished()) {
      epoll_event events[16];
      const int n = ::epoll_wait(ep.get(), events, 16, 1000);
      for (int i = 0; i < n && !driver.finished(); ++i) {
        const int fd = events[i].data.fd;
        if (fd == driver.fd()) {
          driver.on_ready();
          continue;
        }
        const auto it = clients.find(fd);
        if (it == clients.end()) continue;
        client& c = *it->second;
        char buf[512];
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          c.conn.close();  // the close function drops it
          continue;
        }
        c.conn.received(static_cast<std::size_t>(r));
        c.in.append(buf, static_cast<std::size_t>(r));
        if (!serve_lines(c.conn, c.in, [fd](const char* s) { send_text(fd, s); })) c.conn.close();
      }
    }
    return 0;
  }
};

struct thread_binding {
  static constexpr const char* skip = nullptr;
  static int run(sockact::activation& act, const std::function<void()>& before_loop) {
    sockact::thread_driver driver(act);
    before_loop();
    const bool ok = driver.serve([](sockact::thread_socket s) {
      std::string in;
      char buf[512];
      for (;;) {
        const ssize_t r = s.read(buf, sizeof buf);  // reports what it read
        if (r <= 0) return;
        in.append(buf, static_cast<std::size_t>(r));
        if (!serve_lines(s.connection().get(), in, [&s](const char* t) { (void)s.write(t, std::strlen(t)); }))
          return s.close();
      }
    });
    // false: requests were cut (a second signal, SHUTDOWN_TIMEOUT), which
    // the other drivers say only in the log. Their threads may still run, so
    // the program ends without destroying what they use, as serve() says.
    if (!ok) {
      sockact_test::log_to_parent("child: serve() says requests were cut");
      std::_Exit(0);
    }
    return 0;
  }
};

#if SOCKACT_CONFORMANCE_ASIO
struct asio_binding {
  static constexpr const char* skip = nullptr;

  class session : public std::enable_shared_from_this<session> {
   public:
    explicit session(asio::ip::tcp::socket s) : stream_(std::move(s)) {}
    void read() {
      stream_.async_read_some(
          asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec == asio::error::operation_aborted) return;
            if (ec) return self->stream_.connection().close();
            self->in_.append(self->buf_.data(), n);
            const bool keep = serve_lines(self->stream_.connection(), self->in_, [&](const char* t) {
              std::error_code wec;
              asio::write(self->stream_.next_layer(), asio::buffer(t, std::strlen(t)), wec);
            });
            if (!keep) return self->stream_.connection().close();
            self->read();
          });
    }

   private:
    sockact::tracked_stream<asio::ip::tcp::socket> stream_;
    std::array<char, 512> buf_{};
    std::string in_;
  };

  static int run(sockact::activation& act, const std::function<void()>& before_loop) {
    asio::io_context io;
    sockact::asio_driver driver(
        io, act, [](asio::ip::tcp::socket s) { std::make_shared<session>(std::move(s))->read(); });
    before_loop();
    driver.run();
    return 0;
  }
};
#else
struct asio_binding : missing_binding {
  static constexpr const char* skip = "standalone asio.hpp not found (apt-get install libasio-dev)";
};
#endif

#if SOCKACT_CONFORMANCE_LIBUV
struct libuv_binding {
  static constexpr const char* skip = nullptr;

  struct client {
    sockact::libuv_connection conn;
    std::string in;
    char buf[512];
  };

  static void on_closed(uv_handle_t* h) { delete static_cast<client*>(h->data); }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
    auto* c = static_cast<client*>(s->data);
    if (n < 0) return c->conn.close();
    if (n == 0) return;
    c->conn.received(static_cast<std::size_t>(n));
    c->in.append(b->base, static_cast<std::size_t>(n));
    const int fd = c->conn.fd();
    if (!serve_lines(c->conn, c->in, [fd](const char* t) { send_text(fd, t); })) c->conn.close();
  }

  static int run(sockact::activation& act, const std::function<void()>& before_loop) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
      sockact::libuv_driver driver(&loop, act, [](sockact::libuv_accepted& a) {
        auto* c = new client;
        std::error_code ec;
        if (!a.open(c->conn, on_closed, ec)) {
          delete c;
          return;
        }
        c->conn.handle()->data = c;
        uv_read_start(
            c->conn.stream(),
            [](uv_handle_t* h, size_t, uv_buf_t* buf) {
              auto* cl = static_cast<client*>(h->data);
              *buf = uv_buf_init(cl->buf, sizeof cl->buf);
            },
            on_read);
      });
      before_loop();
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks
    return uv_loop_close(&loop) == 0 ? 0 : 6;
  }
};
#else
struct libuv_binding : missing_binding {
  static constexpr const char* skip = "libuv not found by pkg-config (apt-get install libuv1-dev)";
};
#endif

#if SOCKACT_CONFORMANCE_LIBEVENT
struct libevent_binding {
  static constexpr const char* skip = nullptr;

  struct client {
    bufferevent* bev = nullptr;
    sockact::connection conn;
    std::string in;
  };

  static void free_client(client* c) {
    bufferevent_free(c->bev);
    delete c;
  }

  static void on_read(bufferevent* bev, void* arg) {
    auto* c = static_cast<client*>(arg);
    evbuffer* input = bufferevent_get_input(bev);
    const std::size_t n = evbuffer_get_length(input);
    c->conn.received(n);
    std::string bytes(n, '\0');
    evbuffer_remove(input, bytes.data(), n);
    c->in += bytes;
    const int fd = bufferevent_getfd(bev);
    if (!serve_lines(c->conn, c->in, [fd](const char* t) { send_text(fd, t); })) c->conn.close();
  }

  static int run(sockact::activation& act, const std::function<void()>& before_loop) {
    event_base* base = event_base_new();
    {
      sockact::libevent_driver driver(base, act);
      driver.listen([&](sockact::unique_fd fd, const sockact::server_socket&) {
        auto* c = new client;
        c->bev = bufferevent_socket_new(base, fd.release(), BEV_OPT_CLOSE_ON_FREE);
        c->conn = act.track(bufferevent_getfd(c->bev), [c] { free_client(c); });
        bufferevent_setcb(
            c->bev, on_read, nullptr,
            [](bufferevent*, short, void* arg) { static_cast<client*>(arg)->conn.close(); }, c);
        bufferevent_enable(c->bev, EV_READ);
      });
      before_loop();
      event_base_dispatch(base);
    }
    event_base_free(base);
    return 0;
  }
};
#else
struct libevent_binding : missing_binding {
  static constexpr const char* skip = "libevent not found by pkg-config (apt-get install libevent-dev)";
};
#endif

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

using env_map = std::map<std::string, std::string>;

env_map timeouts(const char* idle, const char* shutdown = "8", const char* headers = "30") {
  return {{"IDLE_TIMEOUT", idle},
          {"SHUTDOWN_TIMEOUT", shutdown},
          {"HEADERS_TIMEOUT", headers},
          {"REQUEST_TIMEOUT", "30"}};
}

// Out of fds: the child's fd limit is lowered and every free fd taken, so
// that each accept() fails with EMFILE; after a while (CPU time measured
// meanwhile) they are given back.
class fd_starvation {
 public:
  void start() {
    // The thread first, and running, before the fds are gone: a thread
    // started out of fds trips the sanitizers' own runtime (UBSan's vptr
    // check on std::thread's state reported "invalid vptr" under ASan).
    std::promise<void> running, taken;
    std::future<void> is_running = running.get_future();
    thread_ = std::thread([this, running = std::move(running), were_taken = taken.get_future()]() mutable {
      running.set_value();
      were_taken.wait();
      const auto cpu0 = sockact_test::cpu_time();
      std::this_thread::sleep_for(600ms);  // the fault's length, not a wait for an event
      const auto used =
          std::chrono::duration_cast<std::chrono::milliseconds>(sockact_test::cpu_time() - cpu0);
      sockact_test::log_to_parent("child: cpu while out of fds: " + std::to_string(used.count()) + " ms");
      for (const int fd : taken_) ::close(fd);
      ::setrlimit(RLIMIT_NOFILE, &saved_);
      sockact_test::log_to_parent("child: fds given back");
    });
    is_running.wait();
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    r = saved_;
    r.rlim_cur = 200;
    ::setrlimit(RLIMIT_NOFILE, &r);
    for (;;) {
      const int fd = ::dup(0);
      if (fd < 0) break;
      taken_.push_back(fd);
    }
    taken.set_value();
  }
  ~fd_starvation() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  rlimit saved_{};
  std::vector<int> taken_;
  std::thread thread_;
};

template <class Binding>
class DriverConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Binding::skip != nullptr) GTEST_SKIP() << Binding::skip;
    ::signal(SIGPIPE, SIG_IGN);
    listener_ = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
    port_ = sockact_test::local_port(listener_.get());
  }

  // Starts the server in a child, given `passed` (default: the listener).
  std::unique_ptr<driver_child> start(const env_map& env, int passed = -1, bool starve = false) {
    return std::make_unique<driver_child>(passed < 0 ? listener_.get() : passed, env, [starve] {
      sockact::activation_config c;
      c.log = sockact_test::log_to_parent;
      c.timeout_reply = "timeout\n";
      sockact::activation act = sockact::activate(c);
      fd_starvation starvation;
      return Binding::run(act, [&] {
        if (starve) starvation.start();
      });
    });
  }

  owned_fd client() {
    owned_fd c(sockact_test::connect_loopback(port_));
    EXPECT_GE(c.get(), 0) << "connect";
    return c;
  }

  // Reads `want` bytes, or to EOF or the 10 s receive timeout.
  static std::string read_n(int fd, std::size_t want) {
    std::string got;
    char buf[256];
    while (got.size() < want) {
      const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - got.size()), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  // True when the server closed the connection (EOF or reset), within 10 s.
  static bool closed_by_server(int fd) {
    char c = 0;
    const ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  static void expect_clean_exit(driver_child& child) {
    const int status = child.wait_exit();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "; log:\n"
                                                               << child.log();
  }

  owned_fd listener_;
  int port_ = 0;
};

using drivers = ::testing::Types<poll_binding, thread_binding, asio_binding, libuv_binding, libevent_binding>;

struct driver_names {
  template <class T>
  static std::string GetName(int) {
    if (std::is_same<T, poll_binding>::value) return "poll";
    if (std::is_same<T, thread_binding>::value) return "thread";
    if (std::is_same<T, asio_binding>::value) return "asio";
    if (std::is_same<T, libuv_binding>::value) return "libuv";
    return "libevent";
  }
};
TYPED_TEST_SUITE(DriverConformance, drivers, driver_names);

// No connection within IDLE_TIMEOUT: it exits, and leaves the listener open
// for the manager (a client connecting now waits in the queue).
TYPED_TEST(DriverConformance, ExitsWhenIdle) {
  auto child = this->start(timeouts("0.3"));
  this->expect_clean_exit(*child);
  EXPECT_NE(child->log().find("idle"), std::string::npos) << child->log();
  owned_fd c = this->client();
  EXPECT_GE(c.get(), 0) << "the listener was shut down, not only closed";
}

// A request in progress holds off the idle exit; once answered and idle,
// the connection is closed and the server exits.
TYPED_TEST(DriverConformance, ARequestInProgressHoldsOffTheIdleExit) {
  auto child = this->start(timeouts("0.3"));
  owned_fd c = this->client();
  send_text(c.get(), "wor");
  ASSERT_TRUE(child->wait_for_log("child: partial request")) << child->log();
  EXPECT_EQ(child->wait_exit(1500ms), -1) << "exited with a request in progress; log:\n" << child->log();
  send_text(c.get(), "k\n");
  EXPECT_EQ(this->read_n(c.get(), 5), "done\n");
  EXPECT_TRUE(this->closed_by_server(c.get()));
  this->expect_clean_exit(*child);
}

// SIGTERM: the drain answers the request whose first bytes are in, then closes.
TYPED_TEST(DriverConformance, TheDrainWaitsForARequestInFlight) {
  auto child = this->start(timeouts("60"));
  owned_fd c = this->client();
  send_text(c.get(), "a\n");
  ASSERT_EQ(this->read_n(c.get(), 5), "done\n");  // accepted and served
  send_text(c.get(), "wor");
  ASSERT_TRUE(child->wait_for_log("child: partial request")) << child->log();
  child->signal(SIGTERM);
  ASSERT_TRUE(child->wait_for_log("stopping (")) << child->log();
  owned_fd late = this->client();  // queued for the next start, never accepted by this one
  send_text(c.get(), "k\n");
  EXPECT_EQ(this->read_n(c.get(), 5), "done\n");
  EXPECT_TRUE(this->closed_by_server(c.get()));
  this->expect_clean_exit(*child);
}

// A second signal closes what is left at once (SHUTDOWN_TIMEOUT is 30 s).
TYPED_TEST(DriverConformance, ASecondSignalCuts) {
  auto child = this->start(timeouts("60", "30"));
  owned_fd c = this->client();
  send_text(c.get(), "wor");
  ASSERT_TRUE(child->wait_for_log("child: partial request")) << child->log();
  child->signal(SIGTERM);
  ASSERT_TRUE(child->wait_for_log("stopping (")) << child->log();
  EXPECT_EQ(child->wait_exit(300ms), -1) << "the first signal cut the request; log:\n" << child->log();
  child->signal(SIGTERM);
  EXPECT_TRUE(this->closed_by_server(c.get()));
  this->expect_clean_exit(*child);
}

// Accept=yes: the connection the manager accepted is fd 3; served, then the
// driver exits when it closes.
TYPED_TEST(DriverConformance, ServesAnAcceptYesConnectionAndExits) {
  owned_fd c = this->client();
  owned_fd accepted(::accept4(this->listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(accepted.get(), 0);
  auto child = this->start(timeouts("60"), accepted.get());
  accepted.reset();  // the child's copy is the only one
  send_text(c.get(), "a\nb\n");
  EXPECT_EQ(this->read_n(c.get(), 10), "done\ndone\n");
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_TRUE(this->closed_by_server(c.get()));
  this->expect_clean_exit(*child);
}

// Out of fds: accepts fail with EMFILE; the driver pauses the listener (said
// once) instead of spinning, and serves the queued client once fds are back.
TYPED_TEST(DriverConformance, BacksOffWhenOutOfFds) {
  owned_fd c = this->client();  // queued before the start
  send_text(c.get(), "a\n");
  auto child = this->start(timeouts("60"), -1, true);
  ASSERT_TRUE(child->wait_for_log("fds given back")) << child->log();
  EXPECT_NE(child->log().find("pausing accepts for 100 ms"), std::string::npos) << child->log();
  EXPECT_EQ(this->read_n(c.get(), 5), "done\n") << child->log();
  // 600 ms out of fds: a spinning loop burns most of it; backing off, a few ms.
  const std::string::size_type at = child->log().find("cpu while out of fds: ");
  ASSERT_NE(at, std::string::npos);
  const long cpu_ms = std::stol(child->log().substr(at + 22));
  EXPECT_LT(cpu_ms, 150) << child->log();
  std::size_t said = 0;
  for (std::size_t p = 0; (p = child->log().find("pausing accepts", p)) != std::string::npos; ++p) ++said;
  EXPECT_EQ(said, 1u) << child->log();
  child->signal(SIGTERM);
  this->expect_clean_exit(*child);
}

// HEADERS_TIMEOUT: a request whose head does not arrive in time gets the
// timeout reply and is closed; then the server exits when idle.
TYPED_TEST(DriverConformance, ClosesARequestPastItsDeadline) {
  auto child = this->start(timeouts("0.5", "8", "0.5"));
  owned_fd c = this->client();
  send_text(c.get(), "wor");
  EXPECT_EQ(this->read_n(c.get(), 8), "timeout\n") << child->log();
  EXPECT_TRUE(this->closed_by_server(c.get()));
  this->expect_clean_exit(*child);
}

}  // namespace
