// example-libuv-http: a socket-activated HTTP/1.1 server on libuv.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// IDLE_TIMEOUT, SHUTDOWN_TIMEOUT, HEADERS_TIMEOUT, REQUEST_TIMEOUT: see
// docs/idle-and-drain.md. Lines marked `// sockact` are all that sockact adds to a plain
// libuv server (bench/ counts them). sockact::libuv_driver accepts the
// connections (from a uv_poll_t, pausing on EMFILE instead of dropping the
// queued clients), runs the timers and signals, and closes the connections
// the drain or a request deadline closes.
// SPDX-License-Identifier: MIT

#include <sockact/libuv_server.hpp>  // sockact

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"

#include <uv.h>

#include <signal.h>
#include <unistd.h>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace {

constexpr const char* program = "example-libuv-http";
constexpr std::size_t max_unsent = 1024 * 1024;  // stop reading while more waits to be sent
constexpr std::size_t max_buffered =
    mini_http::limits{}.max_request_bytes();  // the parser always decides then
char read_buffer[64 * 1024];                  // one read at a time: one thread

/// One client connection: its stream and a timer for /delay.
struct client {
  explicit client(std::string socket_name) : name(std::move(socket_name)) {}
  uv_timer_t timer{};
  std::string name;            // the socket the client came in on
  mini_http::input_buffer in;  // received, not yet parsed (linear on pipelined input)
  mini_http::request_parser parser;
  bool reading = false;
  bool waiting = false;            // a /delay answer is due; the requests behind it wait
  bool close_after_write = false;  // answered without keep-alive, or a bad request
  bool peer_closed = false;        // EOF: answer what is complete, then close
  bool answered = false;           // a final response is being written (not only a 100 Continue)
  int pending_writes = 0;
  mini_http::request delayed;
  mini_http::route delayed_route;
  // The stream handle (TCP or unix, as the socket is) and sockact's tracking of it.
  sockact::libuv_connection conn;  // sockact

  std::size_t buffered() const { return in.size(); }
  bool closing() const { return uv_is_closing(conn.handle()) != 0; }
  std::size_t unsent() const { return uv_stream_get_write_queue_size(conn.stream()); }
};

struct write_request {
  uv_write_t req{};
  std::string data;
  client* c = nullptr;
};

void process(client* c);

// The stream is closed (by close() below, or by sockact at the drain or on a
// request deadline): close the timer too, then free the client.
void on_closed(uv_handle_t* h) {
  auto* c = static_cast<client*>(h->data);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer),
           [](uv_handle_t* t) { delete static_cast<client*>(t->data); });
}

// After the last response: FIN, then sockact lingers until the client closes.
void close_client(client* c) {
  if (!c->closing()) c->conn.close();  // sockact
}

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<client*>(stream->data);
  if (n > 0) {
    c->in.append(std::string_view(buf->base, static_cast<std::size_t>(n)));
  } else if (n == UV_EOF) {
    c->peer_closed = true;
    c->reading = false;  // libuv stops reading at EOF
  } else if (n < 0) {
    return close_client(c);
  }
  process(c);
}

// Reads only while the answers can go out: not during a /delay, not after
// the last request, not while much output is queued (backpressure), not
// beyond one request's worth of input.
void update_reading(client* c) {
  const bool want = !c->closing() && !c->waiting && !c->close_after_write && !c->peer_closed &&
                    c->unsent() < max_unsent && c->buffered() < max_buffered;
  if (want && !c->reading) {
    if (uv_read_start(c->conn.stream(), on_alloc, on_read) < 0) return close_client(c);
    c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop(c->conn.stream());
    c->reading = false;
  }
}

void on_written(uv_write_t* req, int status) {
  auto* w = static_cast<write_request*>(req->data);
  client* c = w->c;
  delete w;
  --c->pending_writes;
  if (status < 0 || c->closing()) return close_client(c);  // also UV_ECANCELED while closing
  if (c->pending_writes == 0 && !c->waiting && c->answered) {
    c->answered = false;
    c->conn.response_sent(c->buffered());  // sockact
  }
  process(c);
}

void send(client* c, std::string data) {
  auto* w = new write_request;
  w->data = std::move(data);
  w->c = c;
  w->req.data = w;
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, c->conn.stream(), &buf, 1, on_written) < 0) {
    delete w;
    return close_client(c);
  }
  ++c->pending_writes;
}

void respond(client* c, const mini_http::request& req, const mini_http::route& r) {
  const bool closing = !c->conn.keep_alive(c->buffered());  // sockact
  if (mini_http::connection_for(req, closing) == mini_http::connection_header::close)
    c->close_after_write = true;
  c->answered = true;
  send(c, mini_http::answer(req, r, program, c->name, static_cast<long>(::getpid()), closing));
}

void on_delay(uv_timer_t* t) {
  auto* c = static_cast<client*>(t->data);
  c->waiting = false;
  respond(c, c->delayed, c->delayed_route);
  process(c);  // the pipelined requests behind it
}

// Answers every complete request in order, up to the first /delay, while
// the output can go out.
void process(client* c) {
  while (!c->closing() && !c->waiting && !c->close_after_write && c->unsent() < max_unsent) {
    mini_http::request req;
    const mini_http::result n = c->parser.parse(c->in.unread(), req);
    c->conn.parsed(c->buffered(), n.complete(), n.head_complete());  // sockact
    if (n.failed()) {  // 400, 413, 431, 501, 505: answer and close
      c->close_after_write = c->answered = true;
      send(c, mini_http::error_response(n.status));
      break;
    }
    if (n.send_continue) send(c, std::string(mini_http::continue_response()));  // the client waits for it
    if (!n.complete()) break;  // the request deadlines run meanwhile
    c->in.consume(n.consumed);
    const mini_http::route r = mini_http::route_for(req);
    if (r.what == mini_http::route::delay) {  // a timer, not a wait: other connections go on
      c->waiting = true;
      c->delayed = req;
      c->delayed_route = r;
      uv_timer_start(&c->timer, on_delay, r.delay_ms, 0);
      break;
    }
    respond(c, req, r);
  }
  if (c->closing()) return;
  if (c->pending_writes == 0 && !c->waiting && (c->close_after_write || c->peer_closed))
    return close_client(c);
  update_reading(c);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  std::error_code ec;
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  ::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    sockact::libuv_driver driver(&loop, act, [&](sockact::libuv_accepted& a) {  // sockact
      auto* c = new client(a.from().name);                                      // sockact
      if (!a.open(c->conn, on_closed, ec)) return delete c;                     // sockact
      c->conn.handle()->data = c;
      uv_timer_init(&loop, &c->timer);
      c->timer.data = c;
      update_reading(c);
    });
    uv_run(&loop, UV_RUN_DEFAULT);  // returns when the drain is over
  }
  uv_run(&loop, UV_RUN_NOWAIT);  // the driver's last close callbacks
  uv_loop_close(&loop);
  return 0;
}
