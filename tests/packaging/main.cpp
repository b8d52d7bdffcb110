// The consumer program of every packaging test: it includes sockact the way a
// user would and exits non-zero if what it got is not the package it expects.
// It must run without LISTEN_* in the environment (the driver unsets them).
#include <sockact/sockact.hpp>

#include <cstdio>
#include <cstring>
#include <system_error>

// The build passes the version the package claims to be (sockact_VERSION,
// the parent's PROJECT_VERSION, or pkg-config --modversion); comparing it with
// the header catches a stale or foreign sockact on the include path.
#ifndef EXPECTED_VERSION
#error "build must define EXPECTED_VERSION as a string literal"
#endif

// The consumer builds do not ask for C++17 themselves: it has to come from
// sockact's usage requirements (or, for pkg-config, from the command line).
static_assert(__cplusplus >= 201703L, "sockact must bring C++17 to its consumers");

#if defined(SOCKACT_EXPECT_SEPARATE_COMPILATION) && !defined(SOCKACT_SEPARATE_COMPILATION)
#error "sockact::compiled did not pass SOCKACT_SEPARATE_COMPILATION to its consumer"
#endif

#ifdef SOCKACT_EXPECT_LIBSYSTEMD
#ifndef SOCKACT_USE_LIBSYSTEMD
#error "package built with SOCKACT_USE_LIBSYSTEMD=ON did not pass SOCKACT_USE_LIBSYSTEMD to its consumer"
#endif
#include <systemd/sd-daemon.h>  // reachable only through sockact's libsystemd dependency
#endif

int main() {
  int failures = 0;

  if (std::strcmp(SOCKACT_VERSION_STRING, EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "consumer: version mismatch: header says %s, build expected %s\n",
                 SOCKACT_VERSION_STRING, EXPECTED_VERSION);
    ++failures;
  }

  std::error_code ec;
  auto fds = sockact::listen_fds({false}, ec);
  if (ec) {
    std::fprintf(stderr, "consumer: listen_fds failed: %s\n", ec.message().c_str());
    ++failures;
  }
  if (!fds.empty()) {
    std::fprintf(stderr, "consumer: listen_fds returned %zu fds without LISTEN_* set\n",
                 static_cast<std::size_t>(fds.size()));
    ++failures;
  }

#ifdef SOCKACT_EXPECT_LIBSYSTEMD
  // Proves the link line carries -lsystemd, not just the include path.
  if (sd_listen_fds(0) != 0) {
    std::fprintf(stderr, "consumer: sd_listen_fds(0) != 0 without LISTEN_* set\n");
    ++failures;
  }
#endif

  if (failures != 0) return 1;
  std::printf("consumer: ok (sockact %s)\n", SOCKACT_VERSION_STRING);
  return 0;
}
