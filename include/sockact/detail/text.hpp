// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_TEXT_HPP
#define SOCKACT_DETAIL_TEXT_HPP

#include <cstdio>
#include <string>
#include <string_view>

namespace sockact::detail {

/// A value as it should appear in a message: in double quotes, with
/// backslash, quote and non-printable bytes escaped, cut after `limit` bytes.
inline std::string quote(std::string_view s, std::size_t limit = 200) {
  std::string out = "\"";
  std::size_t n = 0;
  for (const char ch : s) {
    if (n++ == limit) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_TEXT_HPP
