// SPDX-License-Identifier: MIT
// The definitions of <sockact/activation.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_ACTIVATION_IPP
#define SOCKACT_IMPL_ACTIVATION_IPP

#include <sockact/activation.hpp>

#endif  // SOCKACT_IMPL_ACTIVATION_IPP
