// SPDX-License-Identifier: MIT
#ifndef SOCKACT_SOCKACT_HPP
#define SOCKACT_SOCKACT_HPP

// The core of sockact: receive socket-activation fds, tell what they are, and
// say why none were taken. Needs only libc, POSIX and the standard library.
// Adapters (<sockact/asio.hpp>, <sockact/libuv.hpp>, ...) are separate headers.

#include <sockact/diagnose.hpp>
#include <sockact/error.hpp>
#include <sockact/listen_fds.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/version.hpp>

#endif  // SOCKACT_SOCKACT_HPP
