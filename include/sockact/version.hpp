// sockact: systemd-style socket activation for C++17.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_VERSION_HPP
#define SOCKACT_VERSION_HPP

// The one source of the version: CMakeLists.txt parses these three lines.
#define SOCKACT_VERSION_MAJOR 0
#define SOCKACT_VERSION_MINOR 1
#define SOCKACT_VERSION_PATCH 0

#define SOCKACT_VERSION (SOCKACT_VERSION_MAJOR * 10000 + SOCKACT_VERSION_MINOR * 100 + SOCKACT_VERSION_PATCH)

#define SOCKACT_DETAIL_STR2(x) #x
#define SOCKACT_DETAIL_STR(x) SOCKACT_DETAIL_STR2(x)
#define SOCKACT_VERSION_STRING                                                                     \
  SOCKACT_DETAIL_STR(SOCKACT_VERSION_MAJOR)                                                        \
  "." SOCKACT_DETAIL_STR(SOCKACT_VERSION_MINOR) "." SOCKACT_DETAIL_STR(SOCKACT_VERSION_PATCH)

#endif  // SOCKACT_VERSION_HPP
