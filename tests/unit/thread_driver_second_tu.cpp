// A second translation unit with the thread driver (and, when built with
// cpp-httplib, its adapter): a definition that is not inline becomes a
// duplicate-symbol link error. SPDX-License-Identifier: MIT
#include <sockact/thread_driver.hpp>
#ifdef SOCKACT_TEST_WITH_HTTPLIB
#include <sockact/httplib.hpp>
#endif

bool sockact_thread_driver_second_tu(sockact::thread_driver& driver) {
  sockact::thread_connection c = driver.track(-1);
  return static_cast<bool>(c);
}
