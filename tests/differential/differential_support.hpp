// SPDX-License-Identifier: MIT
// Shared by the differential tests (sockact against libsystemd in one
// process): aborting on broken set-up, sockact's ec convention, and the
// environment as a value that may be unset.
#ifndef SOCKACT_TESTS_DIFFERENTIAL_DIFFERENTIAL_SUPPORT_HPP
#define SOCKACT_TESTS_DIFFERENTIAL_DIFFERENTIAL_SUPPORT_HPP

#include "../support/escape.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#if defined(SOCKACT_USE_LIBSYSTEMD) && SOCKACT_USE_LIBSYSTEMD
#error "comparing libsystemd with itself proves nothing: build with SOCKACT_USE_LIBSYSTEMD=0"
#endif

namespace sockact_test {

/// A set-up step failed: no comparison is meaningful after it.
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, std::strerror(errno));
  std::abort();
}

/// A call must clear an ec that comes in set: this is what we pass in.
inline std::error_code sentinel_error() {
  return {ENOTRECOVERABLE, std::system_category()};
}

/// Violations of sockact's ec convention, "" when none.
inline std::string ec_anomaly(const std::error_code& ec) {
  if (ec == sentinel_error()) return "ec not cleared (still the value passed in)";
  if (ec && ec.category() != std::generic_category())
    return std::string("ec in category ") + ec.category().name() + " (" + ec.message() + ")";
  return {};
}

/// An environment variable's value, or that it is unset.
struct env_value {
  bool set = false;
  std::string value;
  friend bool operator==(const env_value& a, const env_value& b) {
    return a.set == b.set && (!a.set || a.value == b.value);
  }
};

inline env_value read_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? env_value{true, v} : env_value{};
}

inline void write_env(const char* name, const env_value& v) {
  const int r = v.set ? ::setenv(name, v.value.c_str(), 1) : ::unsetenv(name);
  if (r < 0) die("setenv");
}

}  // namespace sockact_test

#endif  // SOCKACT_TESTS_DIFFERENTIAL_DIFFERENTIAL_SUPPORT_HPP
