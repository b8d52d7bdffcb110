// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_HPP
#define SOCKACT_ASIO_HPP

// The Asio adapter, on a sockact::activation:
//   - asio_driver runs the activation on an io_context (any number of
//     threads): it accepts on every socket the activation serves and hands
//     each new connection, on a strand of its own, to the application; runs
//     the idle, request and drain deadlines on a timer; catches SIGTERM and
//     SIGINT; closes its acceptors when the drain begins (close, never
//     shutdown(2)); sends READY=1, STOPPING=1 and watchdog pings
//     (<sockact/asio_driver.hpp>).
//   - tracked_stream<> is the session's socket (or beast::tcp_stream) as a
//     tracked connection: it registers itself, reports every read, and the
//     activation closes it on its strand (<sockact/asio_stream.hpp>).
//   - adopt<T>() makes one Asio object from one fd, after checking what it is
//     (<sockact/asio_adopt.hpp>).
//
//   sockact::activation act = sockact::activate();
//   asio::io_context io;
//   sockact::asio_driver driver(io, act, [&](asio::ip::tcp::socket s, const sockact::server_socket&) {
//     std::make_shared<session>(std::move(s))->start();  // session: sockact::tracked_stream<tcp::socket>
//   });
//   io.run();  // returns after the idle exit or the drain
//
// Works with Boost.Asio and with standalone asio; <sockact/asio_flavour.hpp>
// says how the flavour is chosen (SOCKACT_ASIO_BOOST, SOCKACT_ASIO_STANDALONE).

#include <sockact/asio_adopt.hpp>
#include <sockact/asio_driver.hpp>
#include <sockact/asio_flavour.hpp>
#include <sockact/asio_stream.hpp>

#endif  // SOCKACT_ASIO_HPP
