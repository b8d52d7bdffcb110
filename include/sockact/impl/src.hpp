// SPDX-License-Identifier: MIT
#ifndef SOCKACT_IMPL_SRC_HPP
#define SOCKACT_IMPL_SRC_HPP

// The definitions of sockact's functions, for a program built with
// SOCKACT_SEPARATE_COMPILATION: include this header in exactly one .cpp file
// of the program (CMake's sockact::compiled target does it for you).
//
//   // sockact.cpp, compiled with -DSOCKACT_SEPARATE_COMPILATION like the rest
//   #include <sockact/impl/src.hpp>
//
// The adapters (<sockact/asio.hpp>, <sockact/libuv.hpp>) and the drivers stay
// in their headers: they are templates over your types or small.

#include <sockact/detail/config.hpp>

#if !defined(SOCKACT_SEPARATE_COMPILATION)
#error \
    "<sockact/impl/src.hpp> is for SOCKACT_SEPARATE_COMPILATION builds: define it in every translation unit"
#endif

#include <sockact/impl/activation.ipp>
#include <sockact/impl/diagnose.ipp>
#include <sockact/impl/error.ipp>
#include <sockact/impl/idle.ipp>
#include <sockact/impl/lifecycle.ipp>
#include <sockact/impl/listen.ipp>
#include <sockact/impl/listen_fds.ipp>
#include <sockact/impl/notify.ipp>
#include <sockact/impl/posix.ipp>
#include <sockact/impl/socket_info.ipp>

#endif  // SOCKACT_IMPL_SRC_HPP
