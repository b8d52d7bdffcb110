// SPDX-License-Identifier: MIT
// The definitions of <sockact/socket_info.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_SOCKET_INFO_IPP
#define SOCKACT_IMPL_SOCKET_INFO_IPP

#include <sockact/socket_info.hpp>

#endif  // SOCKACT_IMPL_SOCKET_INFO_IPP
