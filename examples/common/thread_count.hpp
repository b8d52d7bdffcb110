// thread_count: the THREADS variable of the examples that run one event loop
// on several threads (example-asio-http, example-beast-http). Parsed as
// strictly as the request timeouts: a decimal number from 1 to max_threads,
// digits only (no sign, no space, no suffix); anything else is an error that
// names the variable and its value, not a silent default.
// SPDX-License-Identifier: MIT
#ifndef EXAMPLES_COMMON_THREAD_COUNT_HPP
#define EXAMPLES_COMMON_THREAD_COUNT_HPP

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace thread_count {

/// More threads than this is a typo, not a configuration.
inline constexpr unsigned max_threads = 256;

/// `text` as a number of threads: decimal digits only, 1 to max_threads.
/// False (and `out` unchanged) for anything else.
inline bool parse(std::string_view text, unsigned& out) noexcept {
  if (text.empty()) return false;
  unsigned n = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
    if (n > max_threads) return false;  // also keeps `n` from overflowing
  }
  if (n == 0) return false;
  out = n;
  return true;
}

/// THREADS from the environment, or `fallback` when it is unset. A bad value
/// prints e.g. `example-asio-http: THREADS="abc" is not a number of threads
/// (1 to 256)` and exits with status 1.
inline unsigned from_environment_or_exit(const char* program, unsigned fallback) {
  const char* value = std::getenv("THREADS");
  if (value == nullptr) return fallback;
  unsigned n = 0;
  if (parse(value, n)) return n;
  std::string shown;  // control bytes escaped, so that the message stays one line
  for (const char c : std::string_view(value)) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b != 0x7f && c != '"' && c != '\\') {
      shown += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      shown += hex;
    }
  }
  std::fprintf(stderr, "%s: THREADS=\"%s\" is not a number of threads (1 to %u)\n", program, shown.c_str(),
               max_threads);
  std::exit(1);
}

}  // namespace thread_count

#endif  // EXAMPLES_COMMON_THREAD_COUNT_HPP
