// SPDX-License-Identifier: MIT
// Shared by the libFuzzer targets: splitting an input into fields, setting the
// environment from them, counting open fds, and failing loudly (abort, so
// libFuzzer saves the input).
#ifndef SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP
#define SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP

#include "../support/escape.hpp"

#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sockact_fuzz {

[[noreturn]] inline void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "\n*** invariant broken: %s\n%s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

#define SOCKACT_FUZZ_CHECK(cond, detail)                \
  do {                                                  \
    if (!(cond)) ::sockact_fuzz::fail(#cond, (detail)); \
  } while (0)

/// The input cut at NUL bytes into at most `max` fields; the last field keeps
/// any further NULs out (environment values cannot hold them).
inline std::vector<std::string> split_fields(const std::uint8_t* data, std::size_t size, std::size_t max) {
  std::vector<std::string> out;
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      out.push_back(current);
      current.clear();
      if (out.size() == max) return out;
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  if (out.size() < max) out.push_back(current);
  return out;
}

/// Open fds of this process (the directory stream's own fd not counted).
inline int open_fd_count() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) fail("opendir /proc/self/fd");
  int n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;
}

/// Shows a value with control bytes escaped, for failure messages.
inline std::string show(std::string_view s) {
  return sockact_test::escape(s);
}

/// Sets the variable to v, or unsets it when v is empty.
inline void put_env(const char* name, const std::optional<std::string>& v) {
  if (v)
    ::setenv(name, v->c_str(), 1);
  else
    ::unsetenv(name);
}

/// Sets names[i] to fields[i] ("" past the last field) where bit i of `mask`
/// is set and unsets it where not; values[i] says which.
template <std::size_t N>
void put_env_fields(const char* const (&names)[N], std::optional<std::string> (&values)[N], unsigned mask,
                    const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < N; ++i) {
    values[i].reset();
    if (mask & (1u << i)) values[i] = i < fields.size() ? fields[i] : std::string();
    put_env(names[i], values[i]);
  }
}

/// "NAME=\"value\" OTHER=unset ...", for failure messages.
template <std::size_t N>
std::string show_env(const char* const (&names)[N], const std::optional<std::string> (&values)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i)
    out += std::string(i != 0 ? " " : "") + names[i] + "=" + (values[i] ? show(*values[i]) : "unset");
  return out;
}

}  // namespace sockact_fuzz

#endif  // SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP
