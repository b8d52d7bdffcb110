// SPDX-License-Identifier: MIT
// Bytes and errno values spelled out for failure reports: shared by the
// differential tests and the fuzz targets.
#ifndef SOCKACT_TESTS_SUPPORT_ESCAPE_HPP
#define SOCKACT_TESTS_SUPPORT_ESCAPE_HPP

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace sockact_test {

/// Bytes in C-string syntax (so NULs, whitespace and high bytes show), cut
/// after `limit` bytes with the full length added.
inline std::string escape(std::string_view s, std::size_t limit = std::string_view::npos) {
  std::string out = "\"";
  const std::size_t shown = std::min(s.size(), limit);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\v':
        out += "\\v";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (shown < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

/// EINVAL, not "Invalid argument": the name a reader greps the man page for.
inline std::string errno_name(int e) {
  const char* n = ::strerrorname_np(e);
  return n != nullptr ? n : "errno " + std::to_string(e);
}

/// 1, 0 or -errno, spelled out.
inline std::string show_rc(int r) {
  return r < 0 ? "-" + errno_name(-r) : std::to_string(r);
}

}  // namespace sockact_test

#endif  // SOCKACT_TESTS_SUPPORT_ESCAPE_HPP
