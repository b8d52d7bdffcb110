// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_HTTP_BODY_HPP
#define SOCKACT_DETAIL_HTTP_BODY_HPP

// An HTTP/1.1 request body checked byte by byte as a server takes it, for
// httplib_server (<sockact/httplib.hpp>): where it ends, and whether its
// framing is broken or its size over the limit. No HTTP library needed.

#include <cstddef>
#include <cstdint>
#include <limits>

namespace sockact::detail {

// A request body checked as it is taken: Content-Length, or chunked (RFC 9112
// §7.1, strictly: CRLF only, no trailer fields, which cpp-httplib 0.11 refuses
// too) within a limit on the sum of the chunk sizes.
class http_body {
 public:
  enum class state { reading, done, invalid, too_large };

  void none() noexcept { set(false, state::done); }
  void length(std::uint64_t n) noexcept {
    set(false, n == 0 ? state::done : state::reading);
    left_ = n;
  }
  void chunked(std::uint64_t max) noexcept {
    set(true, state::reading);
    max_ = max;
  }
  void refuse(state why) noexcept { set(false, why); }

  /// Takes the body's bytes at the front of [p, p + n): all n, or fewer where
  /// the body ends or breaks (the offending byte is not taken).
  std::size_t take(const char* p, std::size_t n) noexcept;

  state current() const noexcept { return state_; }
  bool done() const noexcept { return state_ == state::done; }
  bool failed() const noexcept { return state_ == state::invalid || state_ == state::too_large; }

 private:
  enum class step { size_first, size, ext_space, ext, size_lf, data, data_cr, data_lf, end_cr, end_lf };
  static constexpr std::size_t max_line = 4096;  // a chunk-size line, extensions included

  void set(bool chunked, state s) noexcept {
    chunked_ = chunked;
    state_ = s;
    step_ = step::size_first;
    left_ = size_ = total_ = 0;
    line_ = 0;
  }
  bool next(unsigned char c) noexcept;
  bool fail(state why) noexcept {
    state_ = why;
    return false;
  }

  bool chunked_ = false;
  state state_ = state::done;
  step step_ = step::size_first;
  std::uint64_t left_ = 0, size_ = 0, total_ = 0, max_ = 0;
  std::size_t line_ = 0;
};

inline std::size_t http_body::take(const char* p, std::size_t n) noexcept {
  if (state_ != state::reading) return 0;
  if (!chunked_) {
    const std::size_t k = left_ < n ? static_cast<std::size_t>(left_) : n;
    left_ -= k;
    if (left_ == 0) state_ = state::done;
    return k;
  }
  std::size_t i = 0;
  while (i < n && state_ == state::reading) {
    if (step_ == step::data) {
      const std::size_t k = left_ < n - i ? static_cast<std::size_t>(left_) : n - i;
      left_ -= k;
      i += k;
      if (left_ == 0) step_ = step::data_cr;
      continue;
    }
    if (!next(static_cast<unsigned char>(p[i]))) break;
    ++i;
  }
  return i;
}

inline bool http_body::next(unsigned char c) noexcept {
  if (step_ <= step::size_lf && ++line_ > max_line) return fail(state::invalid);
  const int hex = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
  switch (step_) {
    case step::size_first:
    case step::size:
      if (hex >= 0) {
        if (size_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail(state::too_large);
        size_ = size_ * 16 + static_cast<std::uint64_t>(hex);
        if (size_ > max_ - total_) return fail(state::too_large);
        step_ = step::size;
        return true;
      }
      if (step_ == step::size_first) return fail(state::invalid);
      if (c == ';')
        step_ = step::ext;
      else if (c == ' ' || c == '\t')
        step_ = step::ext_space;
      else if (c == '\r')
        step_ = step::size_lf;
      else
        return fail(state::invalid);
      return true;
    case step::ext_space:
      if (c == ';')
        step_ = step::ext;
      else if (c != ' ' && c != '\t')
        return fail(state::invalid);
      return true;
    case step::ext:
      if (c == '\r')
        step_ = step::size_lf;
      else if (c != '\t' && (c < 0x20 || c == 0x7f))
        return fail(state::invalid);
      return true;
    case step::size_lf:
      if (c != '\n') return fail(state::invalid);
      line_ = 0;
      if (size_ == 0) {
        step_ = step::end_cr;
      } else {
        total_ += size_;
        left_ = size_;
        size_ = 0;
        step_ = step::data;
      }
      return true;
    case step::data_cr:
      if (c != '\r') return fail(state::invalid);
      step_ = step::data_lf;
      return true;
    case step::data_lf:
      if (c != '\n') return fail(state::invalid);
      step_ = step::size_first;
      return true;
    case step::end_cr:
      if (c != '\r') return fail(state::invalid);  // a trailer field: cpp-httplib 0.11 refuses it as well
      step_ = step::end_lf;
      return true;
    case step::end_lf:
      if (c != '\n') return fail(state::invalid);
      state_ = state::done;
      return true;
    case step::data:
      break;
  }
  return fail(state::invalid);
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_HTTP_BODY_HPP
