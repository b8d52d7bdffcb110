// SPDX-License-Identifier: MIT
// Shared by the libFuzzer targets: splitting an input into fields, counting
// open fds, and failing loudly (abort, so libFuzzer saves the input).
#ifndef SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP
#define SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP

#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace sockact_fuzz

#endif  // SOCKACT_TESTS_FUZZ_FUZZ_SUPPORT_HPP
