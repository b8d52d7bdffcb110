// SPDX-License-Identifier: MIT
// The definitions of <sockact/idle.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_IDLE_IPP
#define SOCKACT_IMPL_IDLE_IPP

#include <sockact/idle.hpp>

#endif  // SOCKACT_IMPL_IDLE_IPP
