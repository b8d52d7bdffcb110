// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBEVENT_HPP
#define SOCKACT_LIBEVENT_HPP

// The lifecycle on a libevent 2.1 event_base, for evhttp servers and for
// servers of their own on evconnlistener. The driver owns a timer event (the
// activation's deadlines), signal events for SIGTERM and SIGINT, and an
// evconnlistener on each listening socket; it closes them when the drain
// begins (close, never shutdown(2)), and when the drain is over it lingers on
// the connections it closed and ends the loop (event_base_loopexit).
//
//   sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http());
//   event_base* base = event_base_new();
//   evhttp* http = evhttp_new(base);               // routes as usual (evhttp_set_gencb ...)
//   {
//     sockact::libevent_driver driver(base, act);
//     driver.serve(http);                          // every listening socket, on this evhttp
//     event_base_dispatch(base);                   // returns when the drain is over
//   }                                              // before evhttp_free() and event_base_free()
//   // in a handler, before evhttp_send_reply(), with `headers` its output headers:
//   if (!driver.keep_alive(req)) evhttp_add_header(headers, "Connection", "close");
//
// evhttp. evhttp accepts for itself, and libevent 2.1 has no call that hands
// it a connection, nor one that reports a new connection or request. So the
// driver accepts through an evconnlistener it owns, bound to the evhttp
// (evhttp_bind_listener), and makes each connection's bufferevent itself
// (evhttp_set_bevcb): every connection is registered with the activation
// before anything else can happen on the loop, in particular before any of
// the driver's decisions, so a connection accepted at the idle deadline is
// never lost. What evhttp does with a connection is read from its bufferevent
// (public calls only): the bytes that reach its input buffer (a request has
// begun; its head is whole at its empty line), its output buffer (a response
// is being written), and its callbacks and enabled events, which evhttp sets
// in a fixed pattern in each phase (reading a request; handed to the
// application, which may hold it; writing the response). evhttp's own closes
// (after `Connection: close`, on EOF, on errors) come through
// evhttp_connection_set_closecb(): the driver then sends FIN and lingers on a
// duplicate, so that the client reads the whole last response. The closes the
// library decides (idle at the drain, HEADERS_TIMEOUT, REQUEST_TIMEOUT) free
// a connection that is reading a request (evhttp_connection_free()); one whose
// request the application holds is shut down instead, and evhttp frees it when
// the reply fails, so the application never replies on a freed request.
// Tested with libevent 2.1.12 (the phases are evhttp's behaviour, not its
// documented API): another version must be tested again.
//
// evconnlistener servers (a protocol of one's own on bufferevents): listen()
// accepts on every listening socket, and Accept=yes connections too, and
// hands each fd to on_connection(unique_fd, const server_socket&), which
// registers it (act.track(fd, close)) and reports its requests, as with
// <sockact/poll_driver.hpp>.
//
// One event_base per process may catch signals with libevent; the driver's
// SIGTERM and SIGINT events are that. Ignore SIGPIPE (libevent writes with
// writev(2)). Single-threaded: every call on the loop's thread.
//
// The parts: <sockact/libevent_driver.hpp> (the driver, its timer, signals
// and decisions), <sockact/detail/libevent_listeners.hpp> (the
// evconnlisteners and their accept back-off) and
// <sockact/detail/libevent_evhttp.hpp> (evhttp's connections and phases).

#include <sockact/libevent_driver.hpp>

#endif  // SOCKACT_LIBEVENT_HPP
