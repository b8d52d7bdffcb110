// example-microhttpd: a socket-activated HTTP/1.1 server on libmicrohttpd
// (Debian's libmicrohttpd-dev 0.9.75), a thread per connection.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other connections go on)
// IDLE_TIMEOUT, SHUTDOWN_TIMEOUT, HEADERS_TIMEOUT, REQUEST_TIMEOUT: see
// docs/idle-and-drain.md. Lines marked `// sockact` are all that sockact adds to a plain
// libmicrohttpd server (bench/integration_lines.sh counts them).
// sockact::microhttpd_driver accepts the connections and hands them to the
// daemon (MHD_add_connection), so that none accepted is lost at the idle
// deadline, runs the deadlines and the signals, and stops the daemon. What
// MHD cannot do is listed in docs/adapters.md.
// SPDX-License-Identifier: MIT

#include <sockact/microhttpd.hpp>  // sockact

#include <microhttpd.h>

#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "../common/listen_option.hpp"
#include "../common/mini_http.hpp"

namespace {

constexpr const char* program = "example-microhttpd";

struct app {
  sockact::microhttpd_driver* driver = nullptr;  // sockact
};

MHD_Result reply(app& a, MHD_Connection* c, unsigned status, const std::string& body) {
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (!a.driver->keep_alive(c)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");  // sockact
  const MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

// The routes of every example: / and /delay/<ms>; anything else is 404.
// MHD calls this with the head, with each piece of the body, then once more.
MHD_Result answer(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                  const char*, size_t* upload_data_size, void** con_cls) {
  app& a = *static_cast<app*>(cls);
  if (*con_cls == nullptr) {  // the head: wait for the whole request
    *con_cls = &a;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {  // a body: not used by these routes
    *upload_data_size = 0;
    return MHD_YES;
  }
  const std::string m = method, path = url;
  if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD) return reply(a, connection, 404, "not found\n");
  if (path == "/") {
    const sockact::server_socket* from = a.driver->from(connection);  // sockact
    const std::string name = from != nullptr ? from->name : "?";
    return reply(a, connection, 200,
                 std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                     " socket=" + name + "\n");
  }
  if (path.rfind("/delay/", 0) != 0) return reply(a, connection, 404, "not found\n");
  unsigned ms = 0;
  if (!mini_http::parse_delay_ms(std::string_view(path).substr(7), ms))
    return reply(a, connection, 400, "bad request\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // this connection's thread only
  return reply(a, connection, 200, "delayed " + std::to_string(ms) + " ms\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = listen_option::from_arguments_or_exit(argc, argv, program);
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  ::signal(SIGPIPE, SIG_IGN);
  // First: it blocks SIGTERM and SIGINT for the threads MHD starts.
  sockact::microhttpd_driver driver(act);  // sockact
  app a;
  a.driver = &driver;  // sockact
  const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
  std::error_code ec;                                                                       // sockact
  if (driver.start(ec, flags, &answer, &a, MHD_OPTION_CONNECTION_TIMEOUT, 60u) == nullptr)  // sockact
    return std::fprintf(stderr, "%s: cannot start the daemon: %s\n", program, ec.message().c_str()), 1;
  // The drain is over; false: SHUTDOWN_TIMEOUT cut it, and the kernel closes what is left.
  if (!driver.run()) std::_Exit(0);  // sockact
  return 0;                          // the driver stops the daemon
}
