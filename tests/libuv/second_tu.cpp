// A second translation unit that includes the adapter again: a definition
// that is not inline becomes a duplicate-symbol link error. It includes
// nothing else, so it also shows that the header is self-contained.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>

int sockact_libuv_second_tu(uv_loop_t* loop) {
  uv_udp_t udp;
  std::error_code ec;
  sockact::unique_fd none;
  sockact::adopt(loop, &udp, std::move(none), ec);
  // The driver's members too: a driver that never started.
  sockact::libuv_driver driver;
  driver.stop();
  if (!driver.finished()) return -1;
  return ec.value();
}
