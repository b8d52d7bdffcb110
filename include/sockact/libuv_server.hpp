// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBUV_SERVER_HPP
#define SOCKACT_LIBUV_SERVER_HPP

// Everything a libuv server on sockact's driver includes: the activation
// (<sockact/activation.hpp>) and the libuv adapter (<sockact/libuv.hpp>),
// which alone stays lean for programs that only adopt passed fds.

#include <sockact/activation.hpp>
#include <sockact/libuv.hpp>

#endif  // SOCKACT_LIBUV_SERVER_HPP
