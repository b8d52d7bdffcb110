// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_PARSE_HPP
#define SOCKACT_DETAIL_PARSE_HPP

// Number and list parsing with exactly libsystemd's acceptance rules, so that
// an environment libsystemd takes is taken here, and one it refuses is refused
// with the same errno. Each function returns 0 (or a count) or -errno.

#include <sys/types.h>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sockact::detail {

// systemd skips only these before a number; strtol() itself may skip more
// (\v, \f), which systemd then also accepts.
/// What separates the entries of an address list (parse_endpoints(), and
/// SOCKACT_ADOPT's NAME=ADDRESS entries): commas or white space.
inline bool is_list_separator(char c) noexcept {
  return c == ',' || c == ' ' || c == '\t' || c == '\n';
}

inline const char* skip_systemd_whitespace(const char* s) noexcept {
  return s + std::strspn(s, " \t\n\r");
}

// systemd accepts Python-style 0b/0o prefixes on top of strtol's base 0.
inline const char* apply_base_prefix(const char* s, int& base) noexcept {
  if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
    base = 2;
    return s + 2;
  }
  if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
    base = 8;
    return s + 2;
  }
  return s;
}

/// An unsigned 64-bit number as systemd's safe_atou64 reads it.
inline int parse_u64(const char* s, std::uint64_t& out) noexcept {
  int base = 0;
  s = apply_base_prefix(skip_systemd_whitespace(s), base);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, base);
  if (errno > 0) return -errno;
  if (end == nullptr || end == s || *end != '\0') return -EINVAL;
  if (v != 0 && s[0] == '-') return -ERANGE;  // strtoull wraps negatives; refuse them
  out = static_cast<std::uint64_t>(v);
  return 0;
}

/// A process id as systemd's parse_pid reads it: a valid pid is 1..INT_MAX.
inline int parse_pid(const char* s, pid_t& out) noexcept {
  std::uint64_t v = 0;
  if (const int r = parse_u64(s, v); r < 0) return r;
  if (v == 0 || v > static_cast<std::uint64_t>(INT_MAX)) return -ERANGE;
  out = static_cast<pid_t>(v);
  return 0;
}

/// A signed int as systemd's safe_atoi reads it.
inline int parse_int(const char* s, int& out) noexcept {
  int base = 0;
  s = apply_base_prefix(skip_systemd_whitespace(s), base);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, base);
  if (errno > 0) return -errno;
  if (end == nullptr || end == s || *end != '\0') return -EINVAL;
  if (v < INT_MIN || v > INT_MAX) return -ERANGE;
  out = static_cast<int>(v);
  return 0;
}

/// Splits LISTEN_FDNAMES on ':' the way systemd does: empty fields are kept
/// (so "" is one empty name), a backslash takes the next byte literally
/// ("a\:b" is one name "a:b"), and a trailing lone backslash is -EINVAL.
/// Returns the number of names or -EINVAL.
inline int split_names(const char* s, std::vector<std::string>& out) {
  out.clear();
  std::string current;
  for (;;) {
    const char c = *s++;
    if (c == '\0') break;
    if (c == ':') {
      out.push_back(std::move(current));
      current.clear();
    } else if (c == '\\') {
      if (*s == '\0') {
        out.clear();
        return -EINVAL;
      }
      current.push_back(*s++);
    } else {
      current.push_back(c);
    }
  }
  out.push_back(std::move(current));
  if (out.size() > static_cast<std::size_t>(INT_MAX)) return -EINVAL;  // cannot happen in practice
  return static_cast<int>(out.size());
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_PARSE_HPP
