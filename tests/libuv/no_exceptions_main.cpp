// The adapter's error_code overloads compile and work with -fno-exceptions.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>

int main() {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return 1;
  int failures = 0;
  const auto expect = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAIL: %s\n", what);
      ++failures;
    }
  };

  const int udp_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  uv_tcp_t tcp;
  std::error_code ec;
  expect(!sockact::open_tcp(&loop, &tcp, udp_fd, ec), "open_tcp on a UDP socket fails");
  expect(ec == sockact::errc::wrong_type, "wrong_type");

  uv_udp_t udp;
  expect(sockact::open_udp(&loop, &udp, udp_fd, ec), "open_udp on a UDP socket");
  expect(!ec, "no error");
  uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr);

  // The lifecycle driver: started, and closed by the SIGINT it gets.
  sockact::lifecycle lc(sockact::lifecycle_config{}, false, {});
  sockact::libuv_lifecycle_driver driver;
  int calls = 0;
  expect(driver.start(
             &loop, lc,
             [&](const sockact::lifecycle_actions& a) {
               ++calls;
               if (a.stop_accepting) driver.connections_changed(0);
             },
             ec),
         "driver starts");
  expect(!driver.start(
             &loop, lc, [](const sockact::lifecycle_actions&) {}, ec),
         "a second start fails");
  expect(ec == std::errc::device_or_resource_busy, "EBUSY");
  ::raise(SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  expect(calls == 2 && lc.current() == sockact::lifecycle::phase::done, "SIGINT drains, then done");
  expect(uv_loop_close(&loop) == 0, "loop closes");
  if (failures == 0) std::puts("ok");
  return failures == 0 ? 0 : 1;
}
