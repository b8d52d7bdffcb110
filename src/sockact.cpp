// SPDX-License-Identifier: MIT
// The sockact::compiled library: sockact's definitions, compiled once, for
// programs built with SOCKACT_SEPARATE_COMPILATION (see <sockact/impl/src.hpp>).
#include <sockact/impl/src.hpp>
