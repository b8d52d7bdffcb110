// A second translation unit that includes the adapter again: a definition
// that is not inline becomes a duplicate-symbol link error. It includes
// nothing else, so it also shows that the header is self-contained.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>

int sockact_libuv_second_tu(uv_loop_t* loop) {
  uv_udp_t udp;
  std::error_code ec;
  sockact::open_udp(loop, &udp, -1, ec);
  return ec.value();
}
