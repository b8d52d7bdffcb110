// example-libevent-http: a socket-activated HTTP/1.1 server on libevent's
// evhttp (Debian's libevent-dev 2.1).
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// IDLE_TIMEOUT, SHUTDOWN_TIMEOUT, HEADERS_TIMEOUT, REQUEST_TIMEOUT: see
// docs/idle-and-drain.md. Lines marked `// sockact` are all that sockact adds to a plain
// evhttp server (bench/integration_lines.sh counts them).
// sockact::libevent_driver accepts for evhttp (through evconnlisteners it
// binds to it) and tracks every connection from its accept, runs the
// deadlines and the signals, and ends the loop when the drain is over.
// evhttp's own limits are set below; what it cannot do (Accept=yes, 431, some
// framing checks) is listed in docs/adapters.md.
// SPDX-License-Identifier: MIT

#include <sockact/libevent.hpp>  // sockact

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <signal.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <string>
#include <string_view>

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"

namespace {

constexpr const char* program = "example-libevent-http";

struct app;

// A /delay answer due later: a timer event, kept in a list so that the ones
// still pending when the loop ends are freed.
struct delayed {
  app* owner = nullptr;
  evhttp_request* req = nullptr;
  event* timer = nullptr;
  unsigned ms = 0;
  std::list<delayed>::iterator self;
};

struct app {
  event_base* base = nullptr;
  sockact::libevent_driver* driver = nullptr;  // sockact
  std::list<delayed> delays;
};

void reply(app& a, evhttp_request* req, int status, const std::string& body) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
  if (!a.driver->keep_alive(req)) evhttp_add_header(headers, "Connection", "close");  // sockact
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(req, status, nullptr, out);
  evbuffer_free(out);
}

void on_delay(evutil_socket_t, short, void* arg) {
  delayed& d = *static_cast<delayed*>(arg);
  app& a = *d.owner;
  reply(a, d.req, 200, "delayed " + std::to_string(d.ms) + " ms\n");
  event_free(d.timer);
  a.delays.erase(d.self);
}

// The routes of every example: / and /delay/<ms>; anything else is 404.
void handle(evhttp_request* req, void* arg) {
  app& a = *static_cast<app*>(arg);
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  const std::string path = raw_path != nullptr ? raw_path : "";
  const evhttp_cmd_type method = evhttp_request_get_command(req);
  if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) return reply(a, req, 404, "not found\n");
  if (path.empty() || path == "/") {
    const sockact::server_socket* from = a.driver->from(req);  // sockact
    const std::string name = from != nullptr ? from->name : "?";
    return reply(a, req, 200,
                 std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                     " socket=" + name + "\n");
  }
  if (path.rfind("/delay/", 0) != 0) return reply(a, req, 404, "not found\n");
  unsigned ms = 0;
  if (!mini_http::parse_delay_ms(std::string_view(path).substr(7), ms))
    return reply(a, req, 400, "bad request\n");
  // A timer, not a wait: other connections go on meanwhile.
  a.delays.emplace_front();
  delayed& d = a.delays.front();
  d.owner = &a;
  d.self = a.delays.begin();
  d.req = req;
  d.ms = ms;
  d.timer = evtimer_new(a.base, on_delay, &d);
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  evtimer_add(d.timer, &tv);
}

int fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;  // sockact
  std::string why;     // sockact
  app a;
  a.base = event_base_new();
  evhttp* http = a.base != nullptr ? evhttp_new(a.base) : nullptr;
  if (http == nullptr) return fail("event_base_new() or evhttp_new() failed");
  evhttp_set_max_headers_size(http, 8 * 1024);  // a larger head: 413 (evhttp has no 431)
  evhttp_set_max_body_size(http, 1024 * 1024);  // a larger body: 413
  evhttp_set_gencb(http, handle, &a);
  {
    sockact::libevent_driver driver(a.base, act);         // sockact
    a.driver = &driver;                                   // sockact
    if (!driver.serve(http, ec, &why)) return fail(why);  // sockact
    event_base_dispatch(a.base);                          // returns when the drain is over
  }
  // Answers still due when SHUTDOWN_TIMEOUT cut the drain: never sent.
  for (delayed& d : a.delays) event_free(d.timer);
  evhttp_free(http);
  event_base_free(a.base);
  return 0;
}
