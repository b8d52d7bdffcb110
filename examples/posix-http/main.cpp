// example-posix-http: a socket-activated HTTP/1.1 server on plain epoll.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// IDLE_TIMEOUT, SHUTDOWN_TIMEOUT, HEADERS_TIMEOUT, REQUEST_TIMEOUT: see
// docs/idle-and-drain.md. Lines marked `// sockact` are all that sockact adds to a plain
// epoll server (bench/integration_lines.sh counts them).
// SOCKACT_ALLOW_PARENT_PID=1 (read by sockact::activate()): also take fds
// whose LISTEN_PID is our parent's, for `podman run --init` with tini.
// SPDX-License-Identifier: MIT

#include <sockact/poll_driver.hpp>  // sockact

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace {

using clock_type = std::chrono::steady_clock;
constexpr const char* program = "example-posix-http";
constexpr std::size_t max_pending_output = 1024 * 1024;  // stop reading above this (backpressure)

struct connection {
  std::uint64_t id = 0;  // unique for the server's life: fd numbers are reused at once
  sockact::unique_fd fd;
  std::string name;            // the socket the client came in on
  mini_http::input_buffer in;  // received, not yet parsed
  mini_http::request_parser parser;
  std::string out;  // to send
  bool close_after_write = false;
  bool peer_closed = false;
  bool waiting = false;   // a /delay answer is due; the requests behind it wait
  bool answered = false;  // `out` holds a whole response
  std::uint32_t events = 0;
  mini_http::request delayed;
  mini_http::route delayed_route;
  sockact::connection conn;  // sockact

  std::size_t buffered() const { return in.size(); }
};

class server {
 public:
  explicit server(sockact::activation& act) : act_(act) {}  // sockact

  int run() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return fail("epoll_create1");
    sockact::poll_driver driver(act_, [&](auto fd, auto& l) { add(std::move(fd), l.name); });  // sockact
    if (!watch(driver.fd(), EPOLLIN)) return fail("epoll_ctl");                                // sockact
    epoll_event events[64];
    while (!driver.finished()) {  // sockact
      const int n = ::epoll_wait(epoll_.get(), events, 64, next_timeout_ms());
      if (n < 0 && errno != EINTR) return fail("epoll_wait");
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == driver.fd()) driver.on_ready();  // sockact
        dispatch(events[i]);                                      // a connection's, else nothing
      }
      fire_timers();
    }
    return 0;
  }

 private:
  static int fail(const char* what) {
    std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(errno));
    return 1;
  }

  bool watch(int fd, std::uint32_t events, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
  }

  void dispatch(const epoll_event& ev) {
    const auto it = connections_.find(ev.data.fd);
    if (it == connections_.end()) return;
    connection& c = *it->second;
    const bool ok = (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 ? read_from(c) : flush(c);
    if (!ok) close(c, false);
  }

  void add(sockact::unique_fd fd, const std::string& name) {
    const int raw = fd.get();
    auto c = std::make_unique<connection>();
    c->id = ++last_id_;
    c->fd = std::move(fd);
    c->name = name;
    c->events = EPOLLIN | EPOLLRDHUP;
    if (!watch(raw, c->events)) return;
    c->conn = act_.track(raw, [this, raw] { erase(raw); });  // sockact
    connections_.emplace(raw, std::move(c));
  }

  // graceful: after a response that said `Connection: close` (FIN, then linger).
  void close(connection& c, bool graceful) {
    if (graceful)
      c.conn.close();  // sockact
    else
      erase(c.fd.get());
  }

  void erase(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    connections_.erase(fd);  // unique_fd closes it
  }

  // Reads what is there (unless enough output waits) and answers every
  // complete request. False: close it.
  bool read_from(connection& c) {
    // Reading stops at one maximal request buffered: the parser then always
    // decides (a request, or an error), so a connection cannot stall.
    while (c.out.size() < max_pending_output && c.in.size() < mini_http::limits{}.max_request_bytes()) {
      const ssize_t n = ::read(c.fd.get(), c.in.prepare(16384), 16384);
      if (n > 0) {
        c.in.commit(static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        c.peer_closed = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return false;
    }
    return process(c);
  }

  bool process(connection& c) {
    while (!c.waiting && !c.close_after_write && c.out.size() < max_pending_output) {
      mini_http::request req;
      const mini_http::result r = c.parser.parse(c.in.unread(), req);
      c.conn.parsed(c.buffered(), r.complete(), r.head_complete());  // sockact
      if (r.failed()) {  // 400, 413, 431, 501, 505: answer and close
        c.out += mini_http::error_response(r.status);
        c.answered = c.close_after_write = true;
        break;
      }
      if (r.send_continue)
        c.out += mini_http::continue_response();  // the client waits for it to send the body
      if (!r.complete()) break;                   // the request deadlines run meanwhile
      c.in.consume(r.consumed);
      const mini_http::route route = mini_http::route_for(req);
      if (route.what == mini_http::route::delay) {
        c.waiting = true;
        c.delayed = req;
        c.delayed_route = route;
        timers_.emplace(clock_type::now() + std::chrono::milliseconds(route.delay_ms), due{c.fd.get(), c.id});
        break;
      }
      respond(c, req, route);
    }
    return flush(c);
  }

  void respond(connection& c, const mini_http::request& req, const mini_http::route& r) {
    const bool closing = !c.conn.keep_alive(c.buffered());  // sockact
    c.out += mini_http::answer(req, r, program, c.name, static_cast<long>(::getpid()), closing);
    c.answered = true;
    if (mini_http::connection_for(req, closing) == mini_http::connection_header::close)
      c.close_after_write = true;
  }

  // Writes what is pending and sets what to wait for. False: close it.
  bool flush(connection& c) {
    const bool was_full = c.out.size() >= max_pending_output;
    std::size_t sent = 0;
    while (sent < c.out.size()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + sent, c.out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        return false;
      }
    }
    c.out.erase(0, sent);
    if (c.out.empty() && c.answered && !c.waiting) {
      c.answered = false;
      c.conn.response_sent(c.buffered());  // sockact
    }
    if (c.out.empty() && !c.waiting) {
      if (c.close_after_write) {
        close(c, true);
        return true;  // `c` is gone
      }
      if (c.peer_closed) return false;
    }
    // Not reading while output piles up or a /delay is pending (backpressure),
    // or after the peer closed (level-triggered EPOLLIN would fire for ever).
    const bool read_more =
        !c.peer_closed && !c.waiting && !c.close_after_write && c.out.size() < max_pending_output;
    const std::uint32_t want =
        (read_more ? EPOLLIN | EPOLLRDHUP : 0u) | (c.out.empty() ? 0u : static_cast<std::uint32_t>(EPOLLOUT));
    if (want != c.events) {
      if (!watch(c.fd.get(), want, EPOLL_CTL_MOD)) return false;
      c.events = want;
    }
    // Room again after a flush: go on with the requests already buffered.
    if (was_full && read_more && c.buffered() > 0) return process(c);
    return true;
  }

  int next_timeout_ms() const {
    if (timers_.empty()) return -1;
    const auto ms =
        std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first - clock_type::now()).count();
    return ms < 0 ? 0 : static_cast<int>(ms);
  }

  void fire_timers() {
    const clock_type::time_point now = clock_type::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      const due d = timers_.begin()->second;
      timers_.erase(timers_.begin());
      // The connection may be gone, and its fd number another client's by now.
      const auto it = connections_.find(d.fd);
      if (it == connections_.end() || it->second->id != d.id) continue;
      connection& c = *it->second;
      c.waiting = false;
      respond(c, c.delayed, c.delayed_route);
      if (!process(c) && connections_.count(d.fd) != 0) close(c, false);
    }
  }

  // A /delay answer due: the connection's fd finds it, its id tells whether it is still the same one.
  struct due {
    int fd;
    std::uint64_t id;
  };

  sockact::activation& act_;  // sockact
  sockact::unique_fd epoll_;
  std::unordered_map<int, std::unique_ptr<connection>> connections_;  // by fd
  std::multimap<clock_type::time_point, due> timers_;                 // /delay answers due
  std::uint64_t last_id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  ::signal(SIGPIPE, SIG_IGN);
  return server(act).run();
}
