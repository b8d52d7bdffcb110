// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_CONFIG_HPP
#define SOCKACT_DETAIL_CONFIG_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error \
    "sockact needs C++17 or later: compile with -std=c++17 (or CMake's cxx_std_17, which sockact::sockact sets)"
// A missing header is a fatal error: the compiler stops here instead of
// following the message with screens of errors about std::string_view.
#include <sockact_needs_cxx17>
#endif

// Configuration macros a user may define before including any sockact header
// (or through CMake: option SOCKACT_USE_LIBSYSTEMD).

// SOCKACT_USE_LIBSYSTEMD=1: receive fds through the installed libsystemd
// (sd_listen_fds_with_names) instead of sockact's own implementation; link
// with -lsystemd. Off by default: sockact needs nothing but libc.
#ifndef SOCKACT_USE_LIBSYSTEMD
#define SOCKACT_USE_LIBSYSTEMD 0
#endif

// SOCKACT_NO_EXCEPTIONS: only the std::error_code overloads are declared.
// Detected from -fno-exceptions; may also be defined by hand.
#ifndef SOCKACT_NO_EXCEPTIONS
#if !defined(__cpp_exceptions) && !defined(__EXCEPTIONS)
#define SOCKACT_NO_EXCEPTIONS 1
#endif
#endif

#if defined(SOCKACT_NO_EXCEPTIONS)
#define SOCKACT_HAS_EXCEPTIONS 0
#else
#define SOCKACT_HAS_EXCEPTIONS 1
#endif

// SOCKACT_SEPARATE_COMPILATION: the headers declare the library's functions
// and leave out their definitions, which one translation unit of the program
// compiles by including <sockact/impl/src.hpp> (CMake: link sockact::compiled
// instead of sockact::sockact). Every other translation unit then parses
// declarations only, which is most of sockact's compile cost. Define it the
// same way in every translation unit of the program. Off by default: sockact is
// header-only.
#if defined(SOCKACT_SEPARATE_COMPILATION)
#define SOCKACT_DECL
#else
#define SOCKACT_DECL inline
#define SOCKACT_HEADER_ONLY 1
#endif

#endif  // SOCKACT_DETAIL_CONFIG_HPP
