// A second translation unit that includes the adapter again: a definition
// that is not inline becomes a duplicate-symbol link error. It includes
// nothing else, so it also shows that the header is self-contained.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>

int sockact_libuv_second_tu(uv_loop_t* loop) {
  uv_udp_t udp;
  std::error_code ec;
  sockact::open_udp(loop, &udp, -1, ec);
  // The driver's members too; a null loop is refused before anything opens.
  sockact::lifecycle lc(sockact::lifecycle_config{}, false, {});
  sockact::libuv_lifecycle_driver driver;
  std::error_code driver_ec;
  if (driver.start(
          nullptr, lc, [](const sockact::lifecycle_actions&) {}, driver_ec) ||
      driver_ec != std::errc::invalid_argument)
    return -1;
  return ec.value();
}
