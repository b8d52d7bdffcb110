// SPDX-License-Identifier: MIT
// The definitions of <sockact/notify.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_NOTIFY_IPP
#define SOCKACT_IMPL_NOTIFY_IPP

#include <sockact/notify.hpp>

#endif  // SOCKACT_IMPL_NOTIFY_IPP
