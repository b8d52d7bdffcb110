// mini_http: the small piece of HTTP/1.1 the sockact examples share: parse a
// request head (pipelining and keep-alive aware), route it, format a response.
// Not a general HTTP library; it is here so that each example shows its event
// loop and the sockact calls, not a parser. SPDX-License-Identifier: MIT
#ifndef SOCKACT_EXAMPLES_MINI_HTTP_HPP
#define SOCKACT_EXAMPLES_MINI_HTTP_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace mini_http {

inline constexpr std::size_t max_head = 16 * 1024;
inline constexpr std::size_t max_body = 1024 * 1024;
inline constexpr unsigned max_delay_ms = 600000;

struct request {
  std::string method;
  std::string target;
  bool keep_alive = true;
  std::size_t content_length = 0;
};

enum class parse_status { incomplete, complete, bad };

namespace detail {
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
inline bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}
}  // namespace detail

/// Parses the request at the start of `buf`. On complete, `consumed` is the
/// length of head plus body, which the caller drops before parsing the next
/// (pipelined) request. A head over max_head bytes, or a malformed one, is bad.
inline parse_status parse(std::string_view buf, request& req, std::size_t& consumed) {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos)
    return buf.size() > max_head ? parse_status::bad : parse_status::incomplete;
  if (end > max_head) return parse_status::bad;
  std::string_view head = buf.substr(0, end + 2);
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return parse_status::bad;
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return parse_status::bad;
  req = request{};
  req.method = std::string(line.substr(0, sp1));
  req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (req.method.empty() || req.target.empty()) return parse_status::bad;
  req.keep_alive = version == "HTTP/1.1";
  head.remove_prefix(line_end + 2);
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view field = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return parse_status::bad;
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = detail::trim(field.substr(colon + 1));
    if (detail::iequals(name, "connection")) {
      if (detail::has_token(value, "close")) req.keep_alive = false;
      if (detail::has_token(value, "keep-alive")) req.keep_alive = true;
    } else if (detail::iequals(name, "content-length")) {
      if (value.empty() || value.size() > 9) return parse_status::bad;
      std::size_t n = 0;
      for (const char c : value) {
        if (c < '0' || c > '9') return parse_status::bad;
        n = n * 10 + static_cast<std::size_t>(c - '0');
      }
      if (n > max_body) return parse_status::bad;
      req.content_length = n;
    } else if (detail::iequals(name, "transfer-encoding")) {
      return parse_status::bad;  // chunked request bodies are not needed by the examples
    }
  }
  if (buf.size() < end + 4 + req.content_length) return parse_status::incomplete;
  consumed = end + 4 + req.content_length;
  return parse_status::complete;
}

/// What the examples answer.
struct route {
  enum kind { hello, delay, not_found, bad_request } what = not_found;
  unsigned delay_ms = 0;
};

/// GET / -> hello; GET /delay/<ms> -> answer after ms milliseconds (0..600000).
inline route route_for(const request& req) {
  route r;
  if (req.method != "GET" && req.method != "HEAD") return r;
  if (req.target == "/") {
    r.what = route::hello;
    return r;
  }
  const std::string_view prefix = "/delay/";
  if (req.target.compare(0, prefix.size(), prefix) == 0) {
    const std::string_view digits = std::string_view(req.target).substr(prefix.size());
    unsigned long ms = 0;
    if (digits.empty() || digits.size() > 7) return route{route::bad_request, 0};
    for (const char c : digits) {
      if (c < '0' || c > '9') return route{route::bad_request, 0};
      ms = ms * 10 + static_cast<unsigned long>(c - '0');
    }
    if (ms > max_delay_ms) return route{route::bad_request, 0};
    r.what = route::delay;
    r.delay_ms = static_cast<unsigned>(ms);
  }
  return r;
}

/// A complete response with Content-Length; `keep_alive` decides the
/// Connection header.
inline std::string response(int status, std::string_view body, bool keep_alive, bool head_only = false) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
      (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  if (!head_only) out.append(body.data(), body.size());
  return out;
}

/// The response to a routed request, except for the wait of a delay route:
/// the caller's event loop waits, then sends this.
inline std::string answer(const request& req, const route& r, std::string_view program,
                          std::string_view socket_name, long pid) {
  const bool head = req.method == "HEAD";
  switch (r.what) {
    case route::hello:
      return response(200,
                      std::string("hello from ") + std::string(program) + " pid=" + std::to_string(pid) +
                          " socket=" + std::string(socket_name) + "\n",
                      req.keep_alive, head);
    case route::delay:
      return response(200, "delayed " + std::to_string(r.delay_ms) + " ms\n", req.keep_alive, head);
    case route::bad_request:
      return response(400, "bad request\n", req.keep_alive, head);
    case route::not_found:
      break;
  }
  return response(404, "not found\n", req.keep_alive, head);
}

/// For a request that could not be parsed: answer and close.
inline std::string bad_request() {
  return response(400, "bad request\n", false);
}

}  // namespace mini_http

#endif  // SOCKACT_EXAMPLES_MINI_HTTP_HPP
