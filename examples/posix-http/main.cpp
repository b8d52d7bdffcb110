// example-posix-http: a socket-activated HTTP/1.1 server on plain epoll.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without
// requests (systemd starts it again on the next connection).
// SIGTERM/SIGINT: stop accepting, close idle connections, let requests in
// progress finish for up to SHUTDOWN_TIMEOUT (default 30 s), exit 0; a second
// signal closes everything at once. Sends READY=1/STOPPING=1 (Type=notify)
// and WATCHDOG=1 when WatchdogSec= is set.
// --allow-parent-pid (or SOCKACT_ALLOW_PARENT_PID=1): also take fds whose
// LISTEN_PID is our parent's, for `podman run --init` with tini or dumb-init
// (listen_pid_check::allow_parent); off by default.
// SPDX-License-Identifier: MIT

#include <sockact/lifecycle.hpp>
#include <sockact/sockact.hpp>

#include "../common/mini_http.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
constexpr const char* program = "example-posix-http";

struct connection {
  sockact::unique_fd fd;
  std::string name;  // the listener's name: which socket the client came in on
  std::string in, out;
  bool close_after_write = false;  // answered a request without keep-alive
  bool peer_closed = false;        // read() returned 0
  bool waiting = false;            // a /delay request holds back the pipelined ones behind it
  std::uint32_t events = 0;        // what epoll watches for now
  mini_http::request delayed;
  mini_http::route delayed_route;
  sockact::idle_tracker::activity busy;  // held from a request's first byte to its answer's last
  bool used = false;                     // has sent at least one byte
};

class server {
 public:
  server(std::vector<sockact::listener> listeners, const sockact::lifecycle_config& config)
      : listeners_(std::move(listeners)),
        lifecycle_(config, sockact::any_activated(listeners_), sockact::listening_fds(listeners_)) {
    lifecycle_.on_stop([](sockact::stop_reason why) {
      std::fprintf(stderr, "%s: stopping (%s)\n", program, sockact::to_string(why));
    });
  }

  int run() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return fail("epoll_create1");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_ || !watch(signals_.get(), EPOLLIN)) return fail("signalfd");

    for (sockact::listener& l : listeners_) {
      std::fprintf(stderr, "%s: %s %s on %s\n", program, l.activated ? "serving activated" : "bound",
                   l.name.c_str(), l.info.local_address.c_str());
      if (l.info.connected) {  // Accept=yes: this fd is one client's connection
        add_connection(sockact::unique_fd(l.fd.release()), l.name);
        ++single_connections_;
      } else if (l.info.listening) {
        if (!watch(l.fd.get(), EPOLLIN)) return fail("epoll_ctl");
      } else {
        std::fprintf(stderr, "%s: %s is not a stream socket (%s)\n", program, l.name.c_str(),
                     l.info.to_string().c_str());
        return 1;
      }
    }

    lifecycle_.ready("serving " + std::to_string(listeners_.size()) + " socket(s)");
    epoll_event events[64];
    while (!finished_) {
      if (single_connections_ > 0 && connections_.empty()) break;  // Accept=yes: served our one client
      const int n = ::epoll_wait(epoll_.get(), events, 64, next_timeout_ms());
      if (n < 0 && errno != EINTR) return fail("epoll_wait");
      for (int i = 0; i < n; ++i) dispatch(events[i]);
      fire_timers();
      const auto now = clock_type::now();
      if (now >= lifecycle_.next_deadline(now)) apply(lifecycle_.on_timer(now));
      apply(lifecycle_.on_connections(connections_.size()));
    }
    connections_.clear();
    listeners_.clear();  // closed, never shut down: systemd keeps its copies
    return 0;
  }

 private:
  // Carries out what the lifecycle decided.
  void apply(const sockact::lifecycle_actions& a) {
    if (a.stop_accepting) {
      for (sockact::listener& l : listeners_) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
      paused_.clear();
      listeners_.clear();  // close, not shutdown(2)
    }
    if (a.close_all) {
      connections_.clear();
    } else if (a.close_idle || a.close_new) {
      std::vector<int> idle;
      for (const auto& [fd, c] : connections_)
        if (a.closes(static_cast<bool>(c->busy), c->used)) idle.push_back(fd);
      for (const int fd : idle) close(fd);
    }
    if (a.finished) finished_ = true;
  }

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

  const sockact::listener* listener_for(int fd) const {
    for (const sockact::listener& l : listeners_)
      if (l.fd.get() == fd) return &l;
    return nullptr;
  }

  void dispatch(const epoll_event& ev) {
    const int fd = ev.data.fd;
    if (fd == signals_.get()) {
      signalfd_siginfo info;
      while (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
        apply(lifecycle_.on_signal(static_cast<int>(info.ssi_signo)));
      return;
    }
    if (const sockact::listener* l = listener_for(fd)) return accept_all(*l);
    const auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    connection& c = *it->second;
    const bool ok = (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 ? read_from(c) : flush(c);
    if (!ok) close(fd);
  }

  void accept_all(const sockact::listener& l) {
    for (;;) {
      sockact::accept_result r = sockact::accept_connection(l.fd.get());
      switch (r.status) {
        case sockact::accept_status::accepted:
          add_connection(std::move(r.fd), l.name);
          continue;
        case sockact::accept_status::retry:
          continue;
        case sockact::accept_status::fd_limit:
          // Out of fds: stop watching this listener for a while instead of spinning on it.
          std::fprintf(stderr, "%s: accept: %s; pausing accepts for 100 ms\n", program,
                       r.error.message().c_str());
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
          paused_.emplace(clock_type::now() + std::chrono::milliseconds(100), l.fd.get());
          return;
        case sockact::accept_status::would_block:
          return;
        case sockact::accept_status::error:
          std::fprintf(stderr, "%s: accept on %s: %s\n", program, l.name.c_str(), r.error.message().c_str());
          return;
      }
    }
  }

  void add_connection(sockact::unique_fd fd, const std::string& name) {
    std::error_code ec;
    sockact::set_nonblocking(fd.get(), true, ec);
    const int raw = fd.get();
    auto c = std::make_unique<connection>();
    c->fd = std::move(fd);
    c->name = name;
    c->events = EPOLLIN | EPOLLRDHUP;
    if (!watch(raw, c->events)) return;
    connections_.emplace(raw, std::move(c));
  }

  void close(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    connections_.erase(fd);  // unique_fd closes it
  }

  // Reads what is there and answers every complete request. False: close it.
  bool read_from(connection& c) {
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
      if (n > 0) {
        if (!c.busy) c.busy = lifecycle_.tracker().begin();
        c.used = true;
        c.in.append(buf, static_cast<std::size_t>(n));
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
    while (!c.waiting && !c.close_after_write) {
      mini_http::request req;
      std::size_t used = 0;
      const mini_http::parse_status s = mini_http::parse(c.in, req, used);
      if (s == mini_http::parse_status::incomplete) break;
      if (s == mini_http::parse_status::bad) {
        c.out += mini_http::bad_request();
        c.close_after_write = true;
        break;
      }
      c.in.erase(0, used);
      const mini_http::route r = mini_http::route_for(req);
      if (r.what == mini_http::route::delay) {
        c.waiting = true;
        c.delayed = req;
        c.delayed_route = r;
        timers_.emplace(clock_type::now() + std::chrono::milliseconds(r.delay_ms), c.fd.get());
        break;
      }
      if (lifecycle_.draining()) req.keep_alive = false;  // finish this one, then close
      c.out += mini_http::answer(req, r, program, c.name, static_cast<long>(::getpid()));
      if (!req.keep_alive) c.close_after_write = true;
    }
    return flush(c);
  }

  // Writes what is pending and sets what to wait for. False: close it.
  bool flush(connection& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        return false;
      }
    }
    if (c.out.empty() && !c.waiting && (c.close_after_write || c.peer_closed)) return false;
    if (c.out.empty() && !c.waiting && c.in.empty()) {
      if (lifecycle_.draining()) return false;  // answered; nothing more while stopping
      c.busy.end();                             // an idle keep-alive connection is not activity
    }
    // Not reading while a /delay is pending (backpressure) or after the peer closed
    // (level-triggered EPOLLIN would fire for ever).
    const std::uint32_t want =
        (c.peer_closed || c.waiting || c.close_after_write ? 0u : EPOLLIN | EPOLLRDHUP) |
        (c.out.empty() ? 0u : static_cast<std::uint32_t>(EPOLLOUT));
    if (want != c.events) {
      if (!watch(c.fd.get(), want, EPOLL_CTL_MOD)) return false;
      c.events = want;
    }
    return true;
  }

  int next_timeout_ms() const {
    clock_type::time_point next = lifecycle_.next_deadline();
    if (!timers_.empty() && timers_.begin()->first < next) next = timers_.begin()->first;
    if (!paused_.empty() && paused_.begin()->first < next) next = paused_.begin()->first;
    if (next == clock_type::time_point::max()) return -1;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - clock_type::now()).count();
    return ms < 0 ? 0 : static_cast<int>(ms);
  }

  void fire_timers() {
    const clock_type::time_point now = clock_type::now();
    while (!paused_.empty() && paused_.begin()->first <= now) {
      watch(paused_.begin()->second, EPOLLIN);
      paused_.erase(paused_.begin());
    }
    while (!timers_.empty() && timers_.begin()->first <= now) {
      const int fd = timers_.begin()->second;
      timers_.erase(timers_.begin());
      const auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      connection& c = *it->second;
      c.waiting = false;
      if (lifecycle_.draining()) c.delayed.keep_alive = false;
      c.out += mini_http::answer(c.delayed, c.delayed_route, program, c.name, static_cast<long>(::getpid()));
      if (!c.delayed.keep_alive) c.close_after_write = true;
      if (!process(c)) close(fd);
    }
  }

  std::vector<sockact::listener> listeners_;
  sockact::lifecycle lifecycle_;
  sockact::unique_fd epoll_, signals_;
  std::unordered_map<int, std::unique_ptr<connection>> connections_;
  std::multimap<clock_type::time_point, int> timers_;  // /delay answers due, by connection fd
  std::multimap<clock_type::time_point, int> paused_;  // listeners paused after EMFILE
  int single_connections_ = 0;
  bool finished_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  sockact::listen_config config;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--listen=", 0) == 0) {
      config.address = a.substr(9);
    } else if (a == "--allow-parent-pid") {
      config.activation.pid_check = sockact::listen_pid_check::allow_parent;
    } else {
      std::fprintf(stderr, "usage: %s [--listen=ADDRESS[,ADDRESS...]] [--allow-parent-pid]\n", program);
      return 2;
    }
  }
  if (const char* v = std::getenv("SOCKACT_ALLOW_PARENT_PID"); v != nullptr && std::strcmp(v, "1") == 0)
    config.activation.pid_check = sockact::listen_pid_check::allow_parent;
  std::error_code ec;
  std::string why;
  sockact::lifecycle_config lifecycle;  // IDLE_TIMEOUT, SHUTDOWN_TIMEOUT
  if (!sockact::lifecycle_from_environment(lifecycle, ec, &why)) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    return 1;
  }
  std::vector<sockact::listener> listeners = sockact::listen_or_bind(config, ec, &why);
  if (ec) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  return server(std::move(listeners), lifecycle).run();
}
