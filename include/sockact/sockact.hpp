// SPDX-License-Identifier: MIT
#ifndef SOCKACT_SOCKACT_HPP
#define SOCKACT_SOCKACT_HPP

// The core of sockact: receive socket-activation fds, tell what they are, say
// why none were taken, and listen where the manager said (or bind from
// configuration). Needs only libc, POSIX and the standard library.
// Adapters (<sockact/asio.hpp>, <sockact/libuv.hpp>, ...) are separate headers.

#include <sockact/diagnose.hpp>
#include <sockact/error.hpp>
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/listen.hpp>
#include <sockact/listen_fds.hpp>
#include <sockact/notify.hpp>
#include <sockact/posix.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>
#include <sockact/version.hpp>

#endif  // SOCKACT_SOCKACT_HPP
