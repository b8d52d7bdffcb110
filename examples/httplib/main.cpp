// example-httplib: a socket-activated cpp-httplib server (Debian's
// libcpp-httplib-dev 0.11), with sockact's thread driver.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units), one httplib::Server per socket; started by
// hand it binds HOST:PORT (default 0.0.0.0:3000) or SOCKET_PATH.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (other clients go on)
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without
// connections (an open keep-alive connection counts: cpp-httplib closes it
// after 5 s). SIGTERM/SIGINT: stop accepting, let the connections finish for
// up to SHUTDOWN_TIMEOUT (default 30 s), exit 0; a second signal stops at
// once. READY=1/STOPPING=1 (Type=notify), WATCHDOG=1 when WatchdogSec= is set.
//
// The lines that end in a "sockact" comment are what sockact adds to a cpp-httplib server
// that already works. cpp-httplib's traps (no way to pass it an fd, a spinning
// accept loop on O_NONBLOCK sockets, a stop() that calls shutdown(2) on the
// manager's socket, no connection hook) and what sockact::httplib_server does
// about them are described in <sockact/httplib.hpp> (it includes <httplib.h>).
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

int main() try {                                  // sockact
  sockact::activation act = sockact::activate();  // sockact
  // First: the driver blocks SIGTERM and SIGINT for the threads started after it.
  sockact::thread_driver driver(act);  // sockact
  std::vector<std::unique_ptr<httplib::Server>> servers;
  std::vector<std::thread> threads;
  for (sockact::server_socket& l : act.sockets()) {                                             // sockact
    if (!l.info.listening) throw std::runtime_error(l.name + ": Accept=yes is not supported");  // sockact
    auto svr = std::make_unique<sockact::httplib_server>(driver);                               // sockact
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
