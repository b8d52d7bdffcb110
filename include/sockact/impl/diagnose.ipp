// SPDX-License-Identifier: MIT
// The definitions of <sockact/diagnose.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_DIAGNOSE_IPP
#define SOCKACT_IMPL_DIAGNOSE_IPP

#include <sockact/diagnose.hpp>

#endif  // SOCKACT_IMPL_DIAGNOSE_IPP
