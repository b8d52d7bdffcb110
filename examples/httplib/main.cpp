// example-httplib: a socket-activated cpp-httplib server (Debian's
// libcpp-httplib-dev 0.11), with sockact's thread driver.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units), one httplib::Server per socket; started by
// hand it binds HOST:PORT (default 0.0.0.0:3000) or SOCKET_PATH.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other clients go on)
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without a
// request in progress (idle keep-alive connections do not count; they are
// closed). SIGTERM/SIGINT: stop accepting, close idle connections, let the
// requests in progress finish for up to SHUTDOWN_TIMEOUT (default 30 s), exit
// 0; a second signal stops at once. HEADERS_TIMEOUT/REQUEST_TIMEOUT: 408.
// READY=1/STOPPING=1 (Type=notify), WATCHDOG=1 when WatchdogSec= is set.
//
// The lines that end in a "sockact" comment are what sockact adds to a cpp-httplib server
// that already works. cpp-httplib's traps (no way to pass it an fd, a spinning
// accept loop on O_NONBLOCK sockets, a stop() that calls shutdown(2) on the
// manager's socket, no connection hook, a keep-alive loop that drops pipelined
// requests and answers to half-closed clients, 8 threads that idle clients
// hold, no body limit) and what sockact::httplib_server does about them are
// described in <sockact/httplib.hpp> (it includes <httplib.h>), with its
// limits (cpp-httplib's setters, set below to their defaults).
// Not supported: Accept=yes. One server per socket (web, admin), as cpp-httplib
// serves one socket per server.
// SPDX-License-Identifier: MIT

#include <sockact/httplib.hpp>  // sockact

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* program = "example-httplib";
constexpr const char* text = "text/plain; charset=utf-8";

// The application: its routes, on one server.
void add_routes(httplib::Server& svr, const std::string& socket_name) {
  svr.Get("/", [socket_name](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                        " socket=" + socket_name + "\n",
                    text);
  });
  svr.Get(R"(/delay/(\d{1,7}))", [](const httplib::Request& req, httplib::Response& res) {
    const long ms = std::stol(req.matches[1]);
    if (ms > 600000) {
      res.status = 400;
      return res.set_content("bad request\n", text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    res.set_content("delayed " + std::to_string(ms) + " ms\n", text);
  });
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("not found\n", text);
    if (res.status == 400 && res.body.empty()) res.set_content("bad request\n", text);
  });
}

}  // namespace

int main() try {                                                                    // sockact
  sockact::activation act = sockact::activate(sockact::activation_config::http());  // sockact
  // First: the driver blocks SIGTERM and SIGINT for the threads started after it.
  sockact::thread_driver driver(act);  // sockact
  std::vector<std::unique_ptr<httplib::Server>> servers;
  std::vector<std::thread> threads;
  for (sockact::server_socket& l : act.sockets()) {                                             // sockact
    if (!l.info.listening) throw std::runtime_error(l.name + ": Accept=yes is not supported");  // sockact
    auto svr = std::make_unique<sockact::httplib_server>(driver);                               // sockact
    // cpp-httplib's limits, as httplib_server sets them by default (64 threads: set_thread_count()).
    svr->set_payload_max_length(std::size_t{1} << 20);  // a larger body: 413
    svr->set_keep_alive_max_count(1000);                // requests per connection, then Connection: close
    svr->set_keep_alive_timeout(5);                     // seconds between two requests
    svr->set_read_timeout(5, 0);                        // a request that stalls this long: 408
    svr->set_write_timeout(5, 0);                       // a client that stops taking the response
    add_routes(*svr, l.name);
    threads.emplace_back([s = svr.get(), &l] { s->serve(l); });  // sockact
    servers.push_back(std::move(svr));
  }
  // The drain is over; false: SHUTDOWN_TIMEOUT cut it, and the kernel closes what is left.
  if (!driver.wait()) std::_Exit(0);        // sockact
  for (std::thread& t : threads) t.join();  // each returns once its last connection closed
  return 0;
} catch (const std::exception& e) {                               // sockact
  return std::fprintf(stderr, "%s: %s\n", program, e.what()), 1;  // sockact
}
