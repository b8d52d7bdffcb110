// SPDX-License-Identifier: MIT
#ifndef SOCKACT_HTTPLIB_HPP
#define SOCKACT_HTTPLIB_HPP

// cpp-httplib (tested with 0.11.4, Debian's libcpp-httplib-dev) on the
// sockets an activation serves, with the thread driver:
//
//   sockact::activation act = sockact::activate();
//   sockact::thread_driver driver(act);        // first: it blocks SIGTERM/SIGINT for the threads
//   sockact::httplib_server svr(driver);       // an httplib::Server
//   svr.Get("/", ...);
//   svr.serve(act.sockets()[0]);               // blocks, as listen() does
//   if (!driver.wait()) std::_Exit(0);         // the drain was cut: end without the stuck threads
//
// What it does about cpp-httplib's traps:
//  * cpp-httplib takes no listening fd (its maintainers declined a
//    set_socket API). serve() sets the protected member that bind_to_port()
//    sets (svr_sock_) and runs the accept loop with listen_after_bind().
//  * Its accept loop calls a blocking accept(): on an O_NONBLOCK socket (as
//    sockact and NonBlocking=yes pass them) it retries EAGAIN at once (20,710
//    failed accept() calls in under a second were measured), and a thread
//    blocked in accept() is not woken when the socket is closed. The server
//    sets an idle interval, so the loop polls the socket first: EAGAIN then
//    waits. At the drain the driver puts its placeholder over the socket,
//    which never becomes readable: the poll times out, and the loop's idle
//    hook (TaskQueue::on_idle, on the loop's own thread) ends the loop the
//    way stop() does, minus the shutdown(2). serve() then closes the fd.
//  * Its stop() calls shutdown(2) on the listening socket, which breaks it in
//    the service manager too: every later activation would find it dead.
//    httplib_server::stop() is deleted; never call httplib::Server::stop()
//    on it through a base reference either. The driver stops it.
//  * It shows neither a connection's fd nor a hook per connection, except the
//    task queue that runs each one: the server counts every connection, busy,
//    from accept to close (thread_driver::counted()). So an open keep-alive
//    connection keeps the server from going idle, and the drain waits for it
//    until cpp-httplib's keep-alive timeout closes it (5 s by default,
//    set_keep_alive_timeout()); responses say `Connection: close` while
//    draining. The library cannot close these connections itself: at
//    SHUTDOWN_TIMEOUT (or a second signal) driver.wait() returns false and the
//    program ends, the kernel closing what is left.
//  * Accept=yes connections are not served: cpp-httplib accepts its own.
//  * Not a sockact matter, but a trap for the tests: cpp-httplib 0.11 reads a
//    request through a stream with a read-ahead buffer of its own, made per
//    request; pipelined requests that arrived with the first one are dropped.

#include <httplib.h>
#include <sockact/thread_driver.hpp>

#include <chrono>
#include <functional>
#include <utility>

namespace sockact {

/// An httplib::Server that serves activated sockets under a thread_driver.
/// Make the driver first; one server per socket, each serve() on its own thread.
class httplib_server : public httplib::Server {
 public:
  /// @param accept_poll how often the accept loop looks at its socket when
  ///        nothing arrives: the longest it takes to notice the drain.
  explicit httplib_server(thread_driver& driver,
                          std::chrono::milliseconds accept_poll = std::chrono::milliseconds(100))
      : driver_(&driver) {
    set_idle_interval(accept_poll);
    // cpp-httplib has no deadline for a whole request head; its read timeout
    // (between two reads) set to HEADERS_TIMEOUT at least cuts a client that
    // stops sending half-way, so it cannot keep an idle server alive. It
    // closes without a 408.
    const auto head = driver.config().lifecycle.headers_timeout;
    if (head.count() > 0)
      set_read_timeout(static_cast<time_t>(head.count() / 1000),
                       static_cast<time_t>((head.count() % 1000) * 1000));
    new_task_queue = [this] { return new counted_pool(*this); };
    httplib::Server::set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (post_routing_) post_routing_(req, res);
      if (driver_->draining()) res.set_header("Connection", "close");
    });
  }

  /// Serves `l`, a listening socket (its fd moves into the server), until
  /// the drain begins and the last connection has closed. Blocks, like
  /// listen(). False at once for an Accept=yes connection or a moved-from
  /// listener, and when the accept loop failed before the drain.
  bool serve(server_socket& l) {
    if (!l.info.listening || !l.fd) return false;
    const int fd = l.fd.release();
    svr_sock_ = fd;
    listen_after_bind();
    if (svr_sock_ == INVALID_SOCKET) {  // ended by the drain (counted_pool::on_idle)
      ::close(fd);                      // the driver's placeholder by now
      return true;
    }
    driver_->listener_closed(fd);  // cpp-httplib closed it after an accept() error
    return false;
  }

  /// As httplib::Server's; the server adds `Connection: close` after yours while draining.
  httplib_server& set_post_routing_handler(Handler handler) {
    post_routing_ = std::move(handler);
    return *this;
  }

  /// shutdown(2) on the manager's socket: never. The driver stops the server.
  void stop() = delete;

 private:
  // Runs each connection as a counted() task; ends the accept loop at the drain.
  struct counted_pool : httplib::ThreadPool {
    explicit counted_pool(httplib_server& s) : ThreadPool(CPPHTTPLIB_THREAD_POOL_COUNT), server(s) {}
    void enqueue(std::function<void()> fn) override {
      ThreadPool::enqueue(server.driver_->counted(std::move(fn)));
    }
    // On the accept loop's thread, between two polls: the loop reads
    // svr_sock_ next, so this ends it without closing or shutting anything.
    void on_idle() override {
      if (server.driver_->listeners_closed()) server.svr_sock_ = INVALID_SOCKET;
    }
    httplib_server& server;
  };

  thread_driver* driver_;
  Handler post_routing_;
};

}  // namespace sockact

#endif  // SOCKACT_HTTPLIB_HPP
