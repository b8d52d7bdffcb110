// The adapter's error_code overloads compile and work with -fno-exceptions.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>

#include <sockact/activation.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
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

  sockact::unique_fd udp_fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const int n = udp_fd.get();
  uv_tcp_t tcp;
  std::error_code ec;
  std::string why;
  expect(!sockact::adopt(&loop, &tcp, std::move(udp_fd), ec, &why),
         "adopt into a uv_tcp_t on a UDP socket fails");
  expect(ec == sockact::errc::wrong_type, "wrong_type");
  expect(why.find("wanted a TCP socket (inet or inet6 stream) for a uv_tcp_t") != std::string::npos,
         "why says what is wrong");

  uv_udp_t udp;
  expect(sockact::adopt(&loop, &udp, std::move(udp_fd), ec), "adopt into a uv_udp_t on a UDP socket");
  expect(!ec && !udp_fd && n >= 0, "no error, the handle owns it");
  uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr);

  // The driver on a bound socket: started, and finished by the SIGINT it gets.
  for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"}) ::unsetenv(v);
  sockact::activation_config config;
  config.listen.address = "127.0.0.1:0";
  config.read_environment = false;
  config.log = [](const std::string&) {};
  sockact::activation act;
  expect(sockact::activate(act, config, ec), "activate");
  int connections = 0;
  sockact::libuv_driver driver(
      &loop, act, [&](sockact::libuv_accepted&) { ++connections; }, ec);
  expect(!ec, "driver starts");
  ::raise(SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  expect(driver.finished(), "SIGINT drains, then finished");
  expect(act.state().current() == sockact::lifecycle::phase::done, "the lifecycle is done");
  expect(connections == 0, "no connection");
  expect(uv_loop_close(&loop) == 0, "loop closes");
  if (failures == 0) std::puts("ok");
  return failures == 0 ? 0 : 1;
}
