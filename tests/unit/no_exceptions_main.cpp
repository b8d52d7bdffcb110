// Built with -fno-exceptions: the error_code overloads compile and work.
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/notify.hpp>
#include <sockact/sockact.hpp>

#include <cstdio>
#include <cstdlib>

#if SOCKACT_HAS_EXCEPTIONS
#error "this file must be built with -fno-exceptions"
#endif

int main() {
  ::setenv("LISTEN_PID", "not-a-pid", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  std::error_code ec;
  const auto fds = sockact::listen_fds({true}, ec);
  if (!fds.empty() || ec != std::errc::invalid_argument || std::getenv("LISTEN_PID") != nullptr) {
    std::puts("FAIL: listen_fds");
    return 1;
  }
  if (sockact::listen_fds_count({false}, ec) != 0 || ec) {
    std::puts("FAIL: listen_fds_count");
    return 1;
  }
  (void)sockact::is_socket(-1, 0, 0, sockact::socket_state::any, ec);
  if (ec != std::errc::bad_file_descriptor) {
    std::puts("FAIL: is_socket");
    return 1;
  }
  (void)sockact::describe_fd(-1, ec);
  const sockact::diagnosis d = sockact::diagnose();
  if (d.status != sockact::activation_status::not_activated || !ec) {
    std::puts("FAIL: diagnose");
    return 1;
  }
  std::puts("no-exceptions build: ok");
  return 0;
}
