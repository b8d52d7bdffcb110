// SPDX-License-Identifier: MIT
#ifndef SOCKACT_SOCKACT_HPP
#define SOCKACT_SOCKACT_HPP

// The core of sockact: receive socket-activation fds, tell what they are, say
// why none were taken, and listen where the manager said (or bind from
// configuration). Needs only libc, POSIX and the standard library.
// What not every server needs has its own header, kept out of this one to keep
// its compile cost down: <sockact/notify.hpp> (READY=1, the watchdog, the fd
// store), <sockact/idle.hpp> (the idle timeout), <sockact/lifecycle.hpp> (idle
// exit and graceful shutdown for a loop of your own), <sockact/activation.hpp>
// (connection tracking), and the adapters (<sockact/asio.hpp>,
// <sockact/libuv.hpp>, ...).

#include <sockact/diagnose.hpp>
#include <sockact/error.hpp>
#include <sockact/listen.hpp>
#include <sockact/listen_fds.hpp>
#include <sockact/posix.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>
#include <sockact/version.hpp>

#endif  // SOCKACT_SOCKACT_HPP
