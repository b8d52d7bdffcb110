// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_HPP
#define SOCKACT_LIBUV_HPP

// The libuv adapter.
//
//   sockact::activation act = sockact::activate(config);  // <sockact/activation.hpp>
//   sockact::libuv_driver driver(loop, act, [&](sockact::libuv_accepted& a) {
//     auto* c = new client;                                  // holds a sockact::libuv_connection conn
//     if (!a.open(c->conn, on_closed, ec)) return delete c;  // uv_tcp_t or uv_pipe_t, tracked
//     c->conn.handle()->data = c;
//     uv_read_start(c->conn.stream(), on_alloc, on_read);
//   });
//   uv_run(loop, UV_RUN_DEFAULT);                            // returns when the drain is over
//
// - libuv_driver accepts connections itself, from a uv_poll_t on each
//   listening socket: on EMFILE/ENFILE it stops watching that socket for
//   100 ms and the clients wait in the kernel's queue (uv_listen() would
//   accept and close them). It runs the activation's deadlines on a
//   uv_timer_t, catches SIGTERM and SIGINT, closes the listeners when the
//   drain begins (close, never shutdown(2)) and its own handles when it ends.
//   libuv_accepted::open() opens a handle on each connection and registers
//   it; the activation closes it with uv_close() when the drain or a request
//   deadline says so (<sockact/libuv_driver.hpp>).
// - adopt() opens a uv_tcp_t, uv_pipe_t or uv_udp_t on an fd it takes over,
//   after checking that the socket is of that kind; libuv_error() makes a
//   libuv status a std::error_code (<sockact/libuv_adopt.hpp>).
//
// This header needs only <uv.h> and the fd helpers of the core; it does not
// include <sockact/activation.hpp>: its templates use the activation the
// program includes anyway (<sockact/libuv_server.hpp> includes both, and
// libuv_connection).

#include <sockact/libuv_adopt.hpp>
#include <sockact/libuv_driver.hpp>

#endif  // SOCKACT_LIBUV_HPP
