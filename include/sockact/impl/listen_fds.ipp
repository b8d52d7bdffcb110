// SPDX-License-Identifier: MIT
// The definitions of <sockact/listen_fds.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_LISTEN_FDS_IPP
#define SOCKACT_IMPL_LISTEN_FDS_IPP

#include <sockact/listen_fds.hpp>

#endif  // SOCKACT_IMPL_LISTEN_FDS_IPP
