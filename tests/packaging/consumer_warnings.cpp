// A consumer's own warnings: user code built against the installed headers
// with -Wall -Wextra -Werror at -O2 and -O3, where gcc's flow-based warnings
// (-Wmaybe-uninitialized) see through the inlined header code. Compiled, not
// run, by run_consumer.cmake (mode consumer_warnings); with libuv when
// pkg-config finds it (SOCKACT_CONSUMER_LIBUV).
// SPDX-License-Identifier: MIT
#include <sockact/activation.hpp>
#include <sockact/poll_driver.hpp>
#if SOCKACT_CONSUMER_LIBUV
#include <sockact/libuv_server.hpp>
#endif

#include <string>
#include <system_error>
#include <utility>

#if SOCKACT_CONSUMER_LIBUV
// Fresh handles, as a user declares them: adopt() initializes them.
int adopt_fresh(uv_loop_t* loop, sockact::unique_fd a, sockact::unique_fd b, sockact::unique_fd c,
                sockact::unique_fd d) {
  std::error_code ec;
  uv_udp_t udp;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
  sockact::libuv_stream stream;
  int opened = 0;
  opened += sockact::adopt(loop, &udp, std::move(a), ec) ? 1 : 0;
  opened += sockact::adopt(loop, &tcp, std::move(b), ec) ? 1 : 0;
  opened += sockact::adopt(loop, &pipe, std::move(c), ec) ? 1 : 0;
  opened += sockact::adopt(loop, &stream, std::move(d), ec) ? 1 : 0;
  return opened;
}
#endif

int serve_once() {
  sockact::activation act;
  std::error_code ec;
  std::string why;
  if (!sockact::activate(act, sockact::activation_config::http(), ec, &why)) return 1;
  sockact::poll_driver driver(act, [](sockact::unique_fd, const sockact::server_socket&) {});
  driver.on_ready();
  return driver.finished() ? 0 : 2;
}
