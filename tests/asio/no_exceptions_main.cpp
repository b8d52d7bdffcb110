// The error_code overloads of the adapter with -fno-exceptions, in both
// flavours: the throwing overloads are gone, the rest works.
// SPDX-License-Identifier: MIT
#include <sockact/asio.hpp>

#include <sys/socket.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

static_assert(!SOCKACT_HAS_EXCEPTIONS, "built with -fno-exceptions");

// Asio without exceptions (BOOST_NO_EXCEPTIONS, ASIO_NO_EXCEPTIONS) calls these on errors of its throwing
// calls; the adapter uses only the error_code ones, so they are never reached.
#if defined(SOCKACT_ASIO_BOOST)
namespace boost {
void throw_exception(const std::exception&) {
  std::abort();
}
void throw_exception(const std::exception&, const source_location&) {
  std::abort();
}
}  // namespace boost
#else
namespace asio::detail {
template <typename Exception>
void throw_exception(const Exception&) {
  std::abort();
}
}  // namespace asio::detail
#endif

int main() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 1;
  sockact::asio_ns::io_context io;
  std::error_code ec;
  std::string why;
  sockact::unique_fd owner(sv[0]);
  {
    const auto wrong = sockact::adopt<sockact::asio_ns::ip::tcp::socket>(io, std::move(owner), ec, &why);
    if (ec != sockact::errc::wrong_family || wrong.is_open() || owner.get() != sv[0])
      return std::printf("FAIL: %s\n", why.c_str()), 1;
  }
  auto s = sockact::adopt<sockact::asio_ns::local::stream_protocol::socket>(io, std::move(owner), ec, &why);
  if (ec || !s.is_open()) return std::printf("FAIL: %s\n", why.c_str()), 1;
  if (::write(sv[1], "x", 1) != 1) return 1;
  char c = 0;
  sockact::asio_error_code aec;
  const std::size_t n = s.read_some(sockact::asio_ns::buffer(&c, 1), aec);
  if (aec || n != 1 || c != 'x') return std::printf("FAIL: read %s\n", aec.message().c_str()), 1;
  ::close(sv[1]);

  // The driver: activate(ec), asio_driver(ec), an idle exit, run() returns.
  for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "SHUTDOWN_TIMEOUT"})
    ::unsetenv(name);
  ::setenv("IDLE_TIMEOUT", "0.05", 1);
  ::setenv("HOST", "127.0.0.1", 1);
  ::setenv("PORT", "0", 1);
  sockact::activation_config config;
  config.lifecycle.idle_only_when_activated = false;
  sockact::activation act;
  if (!sockact::activate(act, config, ec, &why)) return std::printf("FAIL: activate: %s\n", why.c_str()), 1;
  sockact::asio_ns::io_context loop;
  sockact::asio_driver driver(
      loop, act, [](sockact::asio_ns::ip::tcp::socket, const sockact::server_socket&) {}, ec, &why);
  if (ec) return std::printf("FAIL: asio_driver: %s\n", why.c_str()), 1;
  loop.run();
  if (!driver.finished() || act.state().reason() != sockact::stop_reason::idle)
    return std::printf("FAIL: no idle exit\n"), 1;
  std::printf("ok\n");
  return 0;
}
