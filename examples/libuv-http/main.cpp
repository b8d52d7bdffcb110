// example-libuv-http: a socket-activated HTTP/1.1 server on libuv.
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
// and WATCHDOG=1 when WatchdogSec= is set. sockact::libuv_lifecycle_driver
// runs the timer and the signal handles; this program carries out what it is
// told in apply().
// SPDX-License-Identifier: MIT

#include <sockact/libuv.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/sockact.hpp>

#include "../common/mini_http.hpp"

#include <uv.h>

#include <signal.h>
#include <unistd.h>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr const char* program = "example-libuv-http";
constexpr std::size_t max_queued_output = 1024 * 1024;  // stop reading while more waits to be sent

class server;

/// A listening socket, as a uv_tcp_t or uv_pipe_t.
struct listening {
  server* owner = nullptr;
  sockact::libuv_stream handle{};
  std::string name;  // FileDescriptorName= (or the address, when bound)
};

/// One client connection: its stream and a timer for /delay.
struct connection {
  server* owner = nullptr;
  sockact::libuv_stream handle{};
  uv_timer_t timer{};
  int open_handles = 0;  // freed when both handles are closed
  std::string name;      // the listener's name: which socket the client came in on
  std::string in;        // received, not yet answered
  bool reading = false;
  bool waiting = false;            // a /delay request holds back the pipelined ones behind it
  bool close_after_write = false;  // answered a request without keep-alive, or a bad one
  bool peer_closed = false;        // EOF: answer what is complete, then close
  bool closing = false;
  int pending_writes = 0;
  mini_http::request delayed;
  mini_http::route delayed_route;
  sockact::idle_tracker::activity busy;  // held from a request's first byte to its answer's last
  bool used = false;                     // has sent at least one byte
};

struct write_request {
  uv_write_t req{};
  std::string data;
  connection* conn = nullptr;
};

class server {
 public:
  server(uv_loop_t* loop, const sockact::lifecycle_config& config,
         const std::vector<sockact::listener>& listeners)
      : loop_(loop),
        lifecycle_(config, sockact::any_activated(listeners), sockact::listening_fds(listeners)) {
    lifecycle_.on_stop([](sockact::stop_reason why) {
      std::fprintf(stderr, "%s: stopping (%s)\n", program, sockact::to_string(why));
    });
  }

  /// Opens a libuv handle on every listener and starts serving. False (after
  /// saying why) when a listener cannot be served; call stop() then.
  bool start(std::vector<sockact::listener>& listeners) {
    for (const sockact::listener& l : listeners) {
      if (l.info.type != SOCK_STREAM || (!l.info.listening && !l.info.connected)) {
        std::fprintf(stderr, "%s: %s is not a stream socket (%s)\n", program, l.name.c_str(),
                     l.info.to_string().c_str());
        return false;
      }
    }
    for (sockact::listener& l : listeners) {
      std::fprintf(stderr, "%s: %s %s on %s\n", program, l.activated ? "serving activated" : "bound",
                   l.name.c_str(), l.info.local_address.c_str());
      const std::string name = l.name;
      std::error_code ec;
      if (l.info.connected) {  // Accept=yes: this fd is one client's connection
        connection* c = add_connection(name);
        if (sockact::open_stream(loop_, &c->handle, std::move(l), ec) == nullptr) {
          connections_.erase(c);
          return fail(name, ec);
        }
        ++single_connections_;
        attach_timer(c);
        update_reading(c);
      } else {
        auto s = std::make_unique<listening>();
        s->owner = this;
        s->name = name;
        uv_stream_t* stream = sockact::open_stream(loop_, &s->handle, std::move(l), ec);
        if (stream == nullptr) return fail(name, ec);
        stream->data = s.get();
        listeners_.push_back(std::move(s));
        // listen() again on an inherited listening socket only sets the
        // backlog; SOMAXCONN is systemd's default too.
        if (const int r = uv_listen(stream, SOMAXCONN, on_connection); r < 0)
          return fail(name, sockact::libuv_error(r));
      }
    }
    // The idle timer, SIGTERM/SIGINT, the shutdown timeout and the watchdog:
    // the driver tells apply() what to do.
    std::error_code ec;
    if (!driver_.start(
            loop_, lifecycle_, [this](const sockact::lifecycle_actions& a) { apply(a); }, ec))
      return fail("lifecycle", ec);
    lifecycle_.ready("serving " + std::to_string(listeners.size()) + " socket(s)");
    return true;
  }

  /// Stops accepting and closes every handle, so that uv_run() returns: after
  /// a failed start, or when an Accept=yes connection is done.
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    close_listeners();
    std::vector<connection*> all;
    for (const auto& entry : connections_) all.push_back(entry.first);
    for (connection* c : all) close_connection(c);
    driver_.stop();
  }

 private:
  // Carries out what the lifecycle decided.
  void apply(const sockact::lifecycle_actions& a) {
    if (a.stop_accepting) close_listeners();
    std::vector<connection*> to_close;
    for (const auto& [c, owned] : connections_)
      if (a.closes(static_cast<bool>(c->busy), c->used)) to_close.push_back(c);
    for (connection* c : to_close) close_connection(c);
    // None left (or none ever): the drain is over. Delivered after this returns.
    driver_.connections_changed(connections_.size());
  }

  // Closed, never shut down: systemd keeps its copies and queues new clients
  // for the next instance.
  void close_listeners() {
    for (const auto& s : listeners_) close_handle(&s->handle.handle);
  }

  static void close_handle(uv_handle_t* h) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }

  bool fail(const std::string& name, const std::error_code& ec) {
    std::fprintf(stderr, "%s: %s: %s\n", program, name.c_str(), ec.message().c_str());
    return false;
  }

  connection* add_connection(const std::string& name) {
    auto c = std::make_unique<connection>();
    c->owner = this;
    c->name = name;
    connection* raw = c.get();
    connections_.emplace(raw, std::move(c));
    return raw;
  }

  // The stream handle is initialized: add the timer; both close together.
  void attach_timer(connection* c) {
    c->handle.handle.data = c;
    uv_timer_init(loop_, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
  }

  static void on_connection(uv_stream_t* stream, int status) {
    auto* s = static_cast<listening*>(stream->data);
    server& self = *s->owner;
    if (status < 0) {  // libuv already handles EMFILE; say what else happened, go on
      std::fprintf(stderr, "%s: accept on %s: %s\n", program, s->name.c_str(), uv_strerror(status));
      return;
    }
    connection* c = self.add_connection(s->name);
    if (stream->type == UV_TCP)
      uv_tcp_init(self.loop_, &c->handle.tcp);
    else
      uv_pipe_init(self.loop_, &c->handle.pipe, 0);
    self.attach_timer(c);
    if (uv_accept(stream, &c->handle.stream) < 0) return self.close_connection(c);
    self.update_reading(c);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    server& self = *static_cast<connection*>(h->data)->owner;
    *buf = uv_buf_init(self.buffer_, sizeof self.buffer_);  // one read at a time on this thread
  }

  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<connection*>(stream->data);
    if (n > 0) {
      if (!c->busy) c->busy = c->owner->lifecycle_.tracker().begin();
      c->used = true;
      c->in.append(buf->base, static_cast<std::size_t>(n));
    } else if (n == UV_EOF) {
      c->peer_closed = true;
      c->reading = false;  // libuv stops reading at EOF
    } else if (n < 0) {
      return c->owner->close_connection(c);
    }
    c->owner->process(c);
  }

  // Answers every complete request in order, up to the first /delay.
  void process(connection* c) {
    while (!c->waiting && !c->close_after_write && !c->closing) {
      mini_http::request req;
      std::size_t used = 0;
      const mini_http::parse_status s = mini_http::parse(c->in, req, used);
      if (s == mini_http::parse_status::incomplete) break;
      if (s == mini_http::parse_status::bad) {
        c->close_after_write = true;
        send(c, mini_http::bad_request());
        break;
      }
      c->in.erase(0, used);
      const mini_http::route r = mini_http::route_for(req);
      if (r.what == mini_http::route::delay) {  // a timer, not a wait: other connections go on
        c->waiting = true;
        c->delayed = req;
        c->delayed_route = r;
        uv_timer_start(&c->timer, on_timer, r.delay_ms, 0);
        break;
      }
      if (lifecycle_.draining()) req.keep_alive = false;  // finish this one, then close
      if (!req.keep_alive) c->close_after_write = true;
      send(c, mini_http::answer(req, r, program, c->name, static_cast<long>(::getpid())));
    }
    if (c->closing) return;
    if (c->pending_writes == 0 && !c->waiting && (c->close_after_write || c->peer_closed))
      return close_connection(c);
    if (c->pending_writes == 0 && !c->waiting && c->in.empty()) {  // all answered
      if (lifecycle_.draining()) return close_connection(c);       // nothing more while stopping
      c->busy.end();  // an idle keep-alive connection is not activity
    }
    update_reading(c);
  }

  // Reads only while the answers can go out: not during a /delay, not after
  // the last request, not while much output is queued.
  void update_reading(connection* c) {
    const bool want = !c->closing && !c->waiting && !c->close_after_write && !c->peer_closed &&
                      uv_stream_get_write_queue_size(&c->handle.stream) < max_queued_output;
    if (want && !c->reading) {
      if (uv_read_start(&c->handle.stream, on_alloc, on_read) < 0) return close_connection(c);
      c->reading = true;
    } else if (!want && c->reading) {
      uv_read_stop(&c->handle.stream);
      c->reading = false;
    }
  }

  static void on_timer(uv_timer_t* t) {
    auto* c = static_cast<connection*>(t->data);
    c->waiting = false;
    if (c->owner->lifecycle_.draining()) c->delayed.keep_alive = false;
    if (!c->delayed.keep_alive) c->close_after_write = true;
    c->owner->send(
        c, mini_http::answer(c->delayed, c->delayed_route, program, c->name, static_cast<long>(::getpid())));
    c->owner->process(c);  // the pipelined requests behind it
  }

  void send(connection* c, std::string data) {
    auto* w = new write_request;
    w->data = std::move(data);
    w->conn = c;
    w->req.data = w;
    const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, &c->handle.stream, &buf, 1, on_written) < 0) {
      delete w;
      return close_connection(c);
    }
    ++c->pending_writes;
  }

  static void on_written(uv_write_t* req, int status) {
    auto* w = static_cast<write_request*>(req->data);
    connection* c = w->conn;
    delete w;
    --c->pending_writes;
    if (status < 0) return c->owner->close_connection(c);  // also UV_ECANCELED while closing
    c->owner->process(c);
  }

  void close_connection(connection* c) {
    if (c->closing) return;
    c->closing = true;
    c->reading = false;
    c->busy.end();
    uv_close(&c->handle.handle, on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_closed);
  }

  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<connection*>(h->data);
    if (--c->open_handles > 0) return;
    server& self = *c->owner;
    self.connections_.erase(c);
    self.driver_.connections_changed(self.connections_.size());
    if (self.single_connections_ > 0 && self.connections_.empty()) self.stop();  // Accept=yes: done
  }

  uv_loop_t* loop_;
  sockact::lifecycle lifecycle_;  // before connections_: their activity guards point into it
  sockact::libuv_lifecycle_driver driver_;
  std::vector<std::unique_ptr<listening>> listeners_;
  std::unordered_map<connection*, std::unique_ptr<connection>> connections_;
  bool stopping_ = false;
  int single_connections_ = 0;
  char buffer_[64 * 1024];
};

}  // namespace

int main(int argc, char** argv) {
  sockact::listen_config config;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--listen=", 0) == 0) {
      config.address = a.substr(9);
    } else {
      std::fprintf(stderr, "usage: %s [--listen=ADDRESS[,ADDRESS...]]\n", program);
      return 2;
    }
  }
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

  uv_loop_t loop;
  uv_loop_init(&loop);
  int status = 0;
  {
    server s(&loop, lifecycle, listeners);
    if (!s.start(listeners)) {
      s.stop();
      status = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  return status;
}
