// sockact-run: exit statuses and the small helpers its messages use.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_MESSAGES_HPP
#define SOCKACT_RUN_MESSAGES_HPP

#include <signal.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace sockact_run {

constexpr const char* self = "sockact-run";
using clock_type = std::chrono::steady_clock;

// Exit statuses; --help lists them.
constexpr int exit_runtime = 1;
constexpr int exit_usage = 2;
constexpr int exit_listen = 3;
constexpr int exit_start_limit = 4;
constexpr int exit_cannot_exec = 126;
constexpr int exit_not_found = 127;

[[noreturn]] inline void die(int status, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", self, message.c_str());
  std::exit(status);
}

inline std::string errno_text(int err) {
  return std::strerror(err);
}

inline double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

// "1.5": seconds as the options take them.
inline std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(d.count()) / 1000);
  return buf;
}

inline std::string ms_text(clock_type::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", seconds(d) * 1000);
  return buf;
}

// Wall-clock time for the activation lines: 2026-12-01T20:14:05.500Z.
inline std::string wall_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

inline std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

}  // namespace sockact_run

#endif  // SOCKACT_RUN_MESSAGES_HPP
